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
RATE_STAGE = {"evaluation": "eval", "sampling": "generate"}  # a generation entry's stage in a bench JSON (hsir.plan)


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
    return [{"part": "training", "seconds": seconds, "end": end, "path": path} | _trained(path.stem, report)]


def _trained(stage: str, report: dict) -> dict:
    """What a training report says it trained, for ``measured_rates``: SFT's and DPO's tokens (TRL's last logged
    ``num_tokens``: prompt + completion, a DPO pair's two answers with their prompts), GRPO's steps and rollout
    tokens (the mean logged completion length × prompts_per_step × G a step). A resumed training reports only its
    last attempt's seconds against all of its tokens: ``resumed`` keeps it out of the rates."""
    log = [e for e in report.get("log") or [] if isinstance(e, dict)]
    out = {"stage": stage, "resumed": bool(report.get("resumed_from"))}
    if stage in ("sft", "dpo"):
        out["tokens"] = next((_seconds(e.get("num_tokens")) for e in reversed(log) if "num_tokens" in e), None)
    elif stage == "grpo":
        settings, lengths = report.get("settings") or {}, [e["completions/mean_length"] for e in log
                                                           if _seconds(e.get("completions/mean_length")) is not None]
        steps, per = _seconds(report.get("steps")), settings.get("prompts_per_step", 0) * settings.get("num_generations", 0)
        if steps and lengths and per:
            out |= {"steps": steps, "tokens": steps * per * sum(lengths) / len(lengths)}
    return out


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
    return {"part": part, "seconds": seconds, "end": end, "path": path, "stage": RATE_STAGE.get(part),
            "tokens": _seconds(entry.get("tokens"))}


def breakdown(attempts: Sequence[dict], work: tuple[list[dict], list[str]], killed: str | None = None,
              heartbeat: float = 0.0) -> tuple[list[dict], list[str]]:
    """One row per notebook of ``attempts`` (``hsir.reproduce``'s, the ones its total counts): its seconds, the
    seconds of each part of ``PARTS`` whose entries ended inside one of its attempts' windows (from its end time
    less its seconds to its end time; an attempt whose outcome is ``killed``, timed to its last heartbeat, ends up
    to ``heartbeat`` seconds later; where two windows meet, the earlier attempt in ``attempts`` takes the entry), and
    ``other``, the rest; ``timed`` is False for a notebook no attempt of which has a readable time. ``work``: what
    ``work_entries`` read from the run folders; what it skipped is returned beside the rows."""
    rows = {}
    for a in attempts:
        row = rows.setdefault(a["notebook"], {"notebook": a["notebook"], "seconds": 0.0, "timed": False}
                              | dict.fromkeys(PARTS, 0.0))
        row["seconds"] += a["seconds"]
        row["timed"] |= _time(a.get("time")) is not None  # else not the kit's own timestamp: all under "other"
    entries, skipped = work
    for nb, e in attempt_work(entries, attempts, killed, heartbeat):
        rows[nb][e["part"]] += e["seconds"]
    for r in rows.values():
        r["other"] = r["seconds"] - sum(r[p] for p in PARTS)
    return sorted(rows.values(), key=lambda r: r["notebook"]), skipped


def attempt_work(entries: Iterable[dict], attempts: Sequence[dict], killed: str | None = None,
                 heartbeat: float = 0.0) -> list[tuple[str, dict]]:
    """``(notebook, entry)`` for each entry that ended inside one of ``attempts``' windows (``breakdown``'s rule)."""
    windows = []
    for a in attempts:
        if (end := _time(a.get("time"))) is not None:
            late = timedelta(seconds=heartbeat if killed is not None and a.get("outcome") == killed else 0.0)
            windows.append((a["notebook"], end - timedelta(seconds=a["seconds"]) - SLACK, end + late + SLACK))
    out = []
    for e in entries:
        if (nb := next((nb for nb, start, end in windows if start <= e["end"] <= end), None)) is not None:
            out.append((nb, e))
    return out


def measured_rates(attempts: Sequence[dict], work: tuple[list[dict], list[str]], box: dict,
                   killed: str | None = None, heartbeat: float = 0.0) -> dict:
    """The rates a run measured, as the bench JSON ``hsir.plan --bench`` reads (its docstring's fields): each stage's
    tokens over its seconds, summed over the work of ``attempts`` (``breakdown``'s rule), so that a finished run
    prices the next plan on the same kind of box. Greedy evaluation and sampling are the ledgers' generation
    entries (their seconds include each vLLM engine's start, as a run pays it), SFT, DPO and GRPO the trainers' own
    seconds (``_trained``; a resumed training is left out). Scoring is left out (no ledger counts its tokens): the
    plan then prices it at 3 × SFT's rate. ``counted`` says what each rate rests on. ``work``: what
    ``work_entries`` read from the run folders."""
    from hsir.bench.common import describe  # torch: only where rates are written

    entries, skipped = work
    sums: dict[str, dict] = {}
    for _, e in attempt_work(entries, attempts, killed, heartbeat):
        if e.get("stage") and e.get("tokens") and not e.get("resumed"):
            s = sums.setdefault(e["stage"], {"entries": 0, "tokens": 0.0, "seconds": 0.0, "steps": 0.0})
            s["entries"] += 1
            for f in ("tokens", "seconds", "steps"):
                s[f] += e.get(f, 0.0)
    stages = {k: {"tokens_per_s": round(s["tokens"] / s["seconds"], 1)} for k, s in sums.items()
              if k != "grpo" and s["seconds"]}
    if (g := sums.get("grpo")) and g["steps"]:
        stages["grpo"] = {"seconds_per_step": round(g["seconds"] / g["steps"], 2),
                          "tokens_per_step": round(g["tokens"] / g["steps"], 1)}
    return {"device": box["gpu"] if box.get("gpu") else describe(box), "box": box, "stages": stages,
            "counted": {k: {f: round(v, 1) for f, v in s.items() if v} for k, s in sorted(sums.items())},
            "skipped": skipped,
            "source": "measured by a whole run (python -m hsir.reproduce --record ATTEMPTS --rates FILE): each stage's "
                      "tokens over its seconds, over the work that ended inside the run's counted attempts"}


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
    total = {c: sum(r[c] for r in rows) for c in cols}
    total["seconds"] = sum(round(r["seconds"]) for r in rows)  # run.md's total: each notebook's rounded seconds
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
