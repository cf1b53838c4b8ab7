"""Where a run's time went: each notebook's time split into training, greedy evaluation, sampling, and scoring and
selection, from what the run folders already record (``run.md``'s second table).

The work is read from the ledgers and training reports the stages write anyway, never timed twice:
- training: each trained model's report (``sft.json``, ``dpo.json``, ``grpo.json``: the trainer's own seconds,
  ending at its ``finished`` time, or the file's time in reports written before it had one; a GRPO's rollouts are
  inside it; loading and saving the model are not; a training resumed from a checkpoint reports only its last
  attempt's seconds, so a killed attempt's training shows under other);
- evaluation and sampling: the generation entries of the ledgers (``hsir.sampling`` logs one per artifact, with its
  ``backend``): ``eval_*`` is greedy evaluation, the rest sampling (D_u samples, the histograms' samples, VeriExit's
  probes, the samples that measure a baseline's own reward). The loop's ``iter_k/sample`` and ``iter_k/eval``
  stages wrap these, so they are not counted again;
- scoring and selection: the loop's ``iter_k/select`` stages (InDiv's attention pass and the embedder, with their
  model loads, and the filters).

An entry belongs to the notebook attempt whose window (its end time less its seconds, to its end time) holds the
entry's end, so work left in the folders by earlier runs is not counted, nor work of a model that a seed root only
links to (links are not followed). What a notebook spent outside these (starting a kernel, loading the models that
generate or train, starting vLLM engines, figures) is the last column, its time less the rest. An unreadable file
or ledger line is skipped and named, never a reason to lose run.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from hsir.progress import clock
from hsir.runs import REPORTS, iter_jsonl

PARTS = ("training", "evaluation", "sampling", "scoring and selection")
SLACK = timedelta(seconds=2)  # ledger and attempt times are whole seconds


def _time(text) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


def _seconds(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def work_entries(roots: Iterable[Path]) -> tuple[list[dict], list[str]]:
    """Every timed piece of work under ``roots``, ``{"part", "seconds", "end", "path"}`` (``end`` a datetime), and
    the files or lines skipped as unreadable (named, so that a reader of run.md knows what is missing)."""
    out, skipped = [], []
    for root in roots:
        for folder, _, files in os.walk(root):  # followlinks=False: a seed root's shared M0 is not its work
            for name in files:
                path = Path(folder) / name
                try:
                    if name in REPORTS:
                        out += _report_entry(path)
                    elif name == "ledger.jsonl":
                        for line, entry in iter_jsonl(path):
                            e = _ledger_entry(entry, path)
                            if e is None and _counted(entry):
                                skipped.append(f"{path}:{line}")
                            out += [e] if e else []
                except (OSError, ValueError) as err:
                    skipped.append(f"{path} ({err})")
    return out, skipped


def _report_entry(path: Path) -> list[dict]:
    report = json.loads(path.read_text(encoding="utf-8"))
    seconds = _seconds(report.get("seconds")) if isinstance(report, dict) else None
    if seconds is None:
        return []
    end = _time(report.get("finished")) or datetime.fromtimestamp(path.stat().st_mtime).replace(microsecond=0)
    return [{"part": "training", "seconds": seconds, "end": end, "path": path}]


def _counted(entry: dict) -> bool:
    """Whether a ledger entry is one of the parts (whether or not it can be read)."""
    return isinstance(entry, dict) and ("backend" in entry or str(entry.get("stage", "")).endswith("/select"))


def _ledger_entry(entry: dict, path: Path) -> dict | None:
    if not _counted(entry):
        return None
    seconds, end = _seconds(entry.get("seconds")), _time(entry.get("time"))
    if seconds is None or end is None:
        return None
    stage = str(entry.get("stage", ""))
    part = ("evaluation" if stage.startswith("eval_") else "sampling") if "backend" in entry else "scoring and selection"
    return {"part": part, "seconds": seconds, "end": end, "path": path}


def breakdown(attempts: Sequence[dict], roots: Iterable[Path], killed: str | None = None,
              heartbeat: float = 0.0) -> tuple[list[dict], list[str]]:
    """One row per notebook of ``attempts`` (``hsir.reproduce``'s, the ones its total counts): its seconds, the
    seconds of each part of ``PARTS`` whose entries ended inside one of its attempts' windows (from its end time
    less its seconds to its end time; an attempt whose outcome is ``killed``, timed to its last heartbeat, ends up
    to ``heartbeat`` seconds later; where two windows meet, the earlier attempt in ``attempts`` takes the entry), and
    ``other``, the rest; ``timed`` is False for a notebook no attempt of which has a readable time. Also returns
    what was skipped (``work_entries``)."""
    rows, windows = {}, []
    for a in attempts:
        row = rows.setdefault(a["notebook"], {"notebook": a["notebook"], "seconds": 0.0, "timed": False}
                              | dict.fromkeys(PARTS, 0.0))
        row["seconds"] += a["seconds"]
        end = _time(a.get("time"))
        if end is None:  # not the kit's own timestamp: its work stays under "other"
            continue
        row["timed"] = True
        late = timedelta(seconds=heartbeat if killed is not None and a.get("outcome") == killed else 0.0)
        windows.append((a["notebook"], end - timedelta(seconds=a["seconds"]) - SLACK, end + late + SLACK))
    entries, skipped = work_entries(roots)
    for e in entries:
        nb = next((nb for nb, start, end in windows if start <= e["end"] <= end), None)
        if nb is not None:
            rows[nb][e["part"]] += e["seconds"]
    for r in rows.values():
        r["other"] = r["seconds"] - sum(r[p] for p in PARTS)
    return sorted(rows.values(), key=lambda r: r["notebook"]), skipped


def _clock(seconds: float) -> str:
    """``clock`` with a sign: "other" is below 0 when something outside the run wrote into its folders meanwhile."""
    return clock(seconds) if seconds >= 0 else "-" + clock(-seconds)


def breakdown_table(rows: Sequence[dict], skipped: Sequence[str] = ()) -> str:
    """``breakdown``'s rows as a markdown table with a total row and each part's share of the total, and a line on
    what could not be counted."""
    cols = [*PARTS, "other"]
    head = ["| notebook | " + " | ".join(cols) + " | total |", "|---" * (len(cols) + 2) + "|"]
    body = [f"| {r['notebook']} | " + " | ".join(_clock(r[c]) if r["timed"] else "n/a" for c in cols)
            + f" | {clock(r['seconds'])} |" for r in rows]
    total = {c: sum(r[c] for r in rows) for c in [*cols, "seconds"]}
    share = {c: total[c] / total["seconds"] if total["seconds"] else 0.0 for c in cols}
    body.append("| **all** | " + " | ".join(f"{_clock(total[c])} ({share[c]:.0%})" for c in cols)
                + f" | {clock(total['seconds'])} |")
    notes = []
    if rows and not any(r[p] for r in rows for p in PARTS):
        notes.append("No ledger entry or training report in the folders ended inside the attempts' times (a run "
                     "folder cleaned since, or another one's): everything is under other.")
    if skipped:
        notes.append(f"Unreadable, not counted ({len(skipped)}): " + ", ".join(f"`{s}`" for s in skipped[:5])
                     + (", …" if len(skipped) > 5 else "") + ".")
    return "\n".join(head + body) + "".join(f"\n\n{n}" for n in notes)
