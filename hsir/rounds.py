"""A finished round read back from its folder (``<run root>/methods/<method>/iter_<t>/``): its evaluation rows,
which test problems it got right, the row it gives a results table, and on the synthetic testbed how its answers'
steps compare with the problems' operations. Nothing here runs a model; reports (``hsir.results``,
``hsir.claims``) are built on it.
"""

from __future__ import annotations

from pathlib import Path

from hsir.runs import read_json, read_jsonl
from hsir.synthetic import operation_gap


def eval_rows(it_dir: Path) -> list[dict]:
    """A round's greedy evaluation rows (its first evaluated task); gzipped in an archived round (``hsir.archive``)."""
    label = next(iter(read_json(it_dir / "metrics.json")))
    path = it_dir / f"eval_{label}.jsonl"
    return read_jsonl(path if path.exists() or not path.with_name(path.name + ".gz").exists()
                      else path.with_name(path.name + ".gz"))


def round_correct(it_dir: Path) -> dict[str, bool]:
    """qid -> correct for a round's greedy evaluation."""
    return {r["qid"]: bool(r["correct"]) for r in eval_rows(it_dir)}


def operation_gaps(it_dir: Path, n_ops: dict[str, int]) -> dict:
    """Shares of a round's test solutions (synthetic testbed) with fewer / more computation steps than their
    problem's operations (``synthetic.operation_gap``): whether fewer tokens came from dropped work or dropped
    redundancy."""
    gaps = [operation_gap(r["text"], n_ops[r["qid"]]) for r in eval_rows(it_dir) if r["qid"] in n_ops]
    if not gaps:
        return {}
    return {"fewer steps than ops (%)": round(100 * sum(g < 0 for g in gaps) / len(gaps), 1),
            "more steps than ops (%)": round(100 * sum(g > 0 for g in gaps) / len(gaps), 1)}


def round_result(it_dir: Path) -> dict:
    """One round's row of a results table, from its artifacts alone."""
    metrics = next(iter(read_json(it_dir / "metrics.json").values()))
    out = {k: metrics[k] for k in ("accuracy", "accuracy_ci95", "mean_tokens", "truncation_rate", "format_rate",
                                   "extracted_rate", "n", "backend", "dtype")}
    samples = it_dir / "samples.jsonl"
    out["data_tokens"] = sum(r["n_tokens"] for r in read_jsonl(samples)) if samples.exists() else 0
    for name in ("sampling.json", "selection.json"):
        if (it_dir / name).exists():
            out |= read_json(it_dir / name)
    return out


def percent_interval(lo: float, hi: float) -> str:
    """An interval of fractions as percent: ``[12.5, 30.1]``."""
    return f"[{lo * 100:.1f}, {hi * 100:.1f}]"


def markdown(res) -> str:
    """A DataFrame as a GitHub markdown table (blank for missing values)."""
    import pandas as pd

    cells = [["" if pd.isna(v) else str(v) for v in row] for row in res.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, res.columns)) + " |", "|" + "---|" * len(res.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
