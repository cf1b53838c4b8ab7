"""Where a run's time went: each notebook's time split into training, greedy evaluation, sampling, and scoring and
selection, from what the run folders already record (``run.md``'s second table).

The work is read from the ledgers and training reports the stages write anyway, never timed twice:
- training: each trained model's report (``sft.json``, ``dpo.json``, ``grpo.json``: the trainer's own seconds; a
  GRPO's rollouts are inside it; loading and saving the model are not);
- evaluation and sampling: the generation entries of the ledgers (``hsir.sampling`` logs one per artifact, with its
  ``backend``): ``eval_*`` is greedy evaluation, the rest sampling (D_u samples, the histograms' samples, VeriExit's
  probes). The loop's ``iter_k/sample`` and ``iter_k/eval`` stages wrap these, so they are not counted again;
- scoring and selection: the loop's ``iter_k/select`` stages (InDiv's attention pass, the embedder, the filters).

An entry belongs to the notebook attempt whose window (its end time less its seconds, to its end time) holds the
entry's end, so work left in the folders by earlier runs is not counted, nor work of a model that a seed root only
links to (links are not followed). What a notebook spent outside these (starting a kernel, loading models, starting
vLLM engines, embedding, figures) is the last column, its time less the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from hsir.progress import clock
from hsir.runs import read_jsonl

PARTS = ("training", "evaluation", "sampling", "scoring and selection")
REPORTS = ("sft.json", "dpo.json", "grpo.json")
SLACK = timedelta(seconds=2)  # ledger and attempt times are whole seconds


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")


def work_entries(roots: Iterable[Path]) -> list[dict]:
    """Every timed piece of work under ``roots``: ``{"part", "seconds", "end", "path"}`` (``end`` a datetime)."""
    out = []
    for root in roots:
        for folder, dirs, files in os.walk(root):  # followlinks=False: a seed root's shared M0 is not its work
            dirs[:] = [d for d in dirs if not d.startswith("checkpoint-")]
            for name in files:
                path = Path(folder) / name
                if name in REPORTS:
                    report = json.loads(path.read_text(encoding="utf-8"))
                    if isinstance(report.get("seconds"), int | float):
                        end = datetime.fromtimestamp(path.stat().st_mtime).replace(microsecond=0)
                        out.append({"part": "training", "seconds": float(report["seconds"]), "end": end,
                                    "path": path})
                elif name == "ledger.jsonl":
                    out += [e for e in (_ledger_part(entry, path) for entry in read_jsonl(path)) if e]
    return out


def _ledger_part(entry: dict, path: Path) -> dict | None:
    stage = str(entry.get("stage", ""))
    if "backend" in entry:
        part = "evaluation" if stage.startswith("eval_") else "sampling"
    elif stage.endswith("/select"):
        part = "scoring and selection"
    else:
        return None
    return {"part": part, "seconds": float(entry["seconds"]), "end": _time(entry["time"]), "path": path}


def breakdown(attempts: Sequence[dict], roots: Iterable[Path]) -> list[dict]:
    """One row per notebook of ``attempts`` (``hsir.reproduce``'s, the ones its total counts): its seconds, the
    seconds of each part of ``PARTS`` whose entries ended inside one of its attempts, and ``other``, the rest."""
    rows, windows = {}, []
    for a in attempts:
        row = rows.setdefault(a["notebook"], {"notebook": a["notebook"], "seconds": 0.0} | dict.fromkeys(PARTS, 0.0))
        row["seconds"] += a["seconds"]
        try:
            end = _time(a["time"])
        except (TypeError, ValueError):  # not the kit's own timestamp: its work stays under "other"
            continue
        windows.append((a["notebook"], end - timedelta(seconds=a["seconds"]) - SLACK, end + SLACK))
    for e in work_entries(roots):
        nb = next((nb for nb, start, end in windows if start <= e["end"] <= end), None)
        if nb is not None:
            rows[nb][e["part"]] += e["seconds"]
    for r in rows.values():
        r["other"] = r["seconds"] - sum(r[p] for p in PARTS)
    return sorted(rows.values(), key=lambda r: r["notebook"])


def breakdown_table(rows: Sequence[dict]) -> str:
    """``breakdown``'s rows as a markdown table with a total row and each part's share of the total."""
    cols = [*PARTS, "other"]
    head = ["| notebook | " + " | ".join(cols) + " | total |", "|---" * (len(cols) + 2) + "|"]
    body = [f"| {r['notebook']} | " + " | ".join(clock(r[c]) for c in cols) + f" | {clock(r['seconds'])} |"
            for r in rows]
    total = {c: sum(r[c] for r in rows) for c in [*cols, "seconds"]}
    share = {c: total[c] / total["seconds"] if total["seconds"] else 0.0 for c in cols}
    body.append("| **all** | " + " | ".join(f"{clock(total[c])} ({share[c]:.0%})" for c in cols)
                + f" | {clock(total['seconds'])} |")
    return "\n".join(head + body)
