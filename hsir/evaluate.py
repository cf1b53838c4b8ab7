"""Greedy zero-shot evaluation (accuracy, tokens, truncation) and the summary of scored rows.

``evaluate`` is ``hsir.sampling.sample_and_score`` with greedy decoding, plus ``metrics.json``: accuracy with
a 95% bootstrap interval, mean generated tokens (every generated token, ``<think>`` included), the truncation
rate, and what produced them (model, backend, dtype, batch size, package versions), since greedy outputs differ
with batch composition on GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hsir.generate import greedy
from hsir.runs import read_json, versions, write_json
from hsir.sampling import sample_and_score
from hsir.tasks import Problem, Task
from hsir.traces import has_format


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def paired_difference(a: dict[str, bool], b: dict[str, bool], n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> dict:
    """Accuracy of model a minus model b on the problems both answered (qid -> correct), with a paired bootstrap
    interval: problems are resampled once for both, so what the two share (a problem's difficulty) cancels and the
    interval is narrower than the two accuracies' intervals suggest. ``a_only``/``b_only``: the discordant
    problems, a right where b is wrong and the reverse (McNemar's counts)."""
    common = sorted(a.keys() & b.keys())
    if not common:
        raise ValueError("paired_difference: the two evaluations share no problem")
    d = np.array([float(a[q]) - float(b[q]) for q in common])
    lo, hi = bootstrap_ci(d, n_boot, seed, level)
    return {"n": len(common), "diff": float(d.mean()), "diff_ci95": [lo, hi], "a_only": int((d > 0).sum()),
            "b_only": int((d < 0).sum())}


def summarize(rows: Sequence[dict]) -> dict:
    if not rows:
        nan = float("nan")
        return {"n": 0, "accuracy": nan, "accuracy_ci95": [nan, nan], "mean_tokens": nan, "truncation_rate": nan,
                "extracted_rate": nan, "format_rate": nan}
    correct = [float(r["correct"]) for r in rows]
    return {
        "n": len(rows),
        "accuracy": float(np.mean(correct)),
        "accuracy_ci95": list(bootstrap_ci(correct)),
        "mean_tokens": float(np.mean([r["n_tokens"] for r in rows])),
        "truncation_rate": float(np.mean([r["truncated"] for r in rows])),
        "extracted_rate": float(np.mean([r["pred"] is not None for r in rows])),
        "format_rate": float(np.mean([has_format(r["text"]) for r in rows])),
    }


def evaluate(task: Task, problems: Sequence[Problem], generator, out_dir: str | Path,
             max_new_tokens: int = 4096, label: str | None = None, chunk: int = 64) -> dict:
    """Greedy zero-shot evaluation; writes ``eval_<label>.jsonl`` and merges its entry into ``metrics.json``.
    ``chunk``: problems per generation call (``LoopConfig.eval_chunk``), recorded with the metrics."""
    out_dir = Path(out_dir)
    label = label or task.name
    rows = sample_and_score(task, problems, generator, greedy(max_new_tokens), out_dir / f"eval_{label}.jsonl",
                            origin="greedy", chunk=chunk)
    metrics = summarize(rows) | {
        "task": task.name, "model": generator.model_spec, "backend": generator.backend, "dtype": generator.dtype,
        "batch_size": getattr(generator, "batch_size", None), "chunk": chunk, "max_new_tokens": max_new_tokens,
        "versions": versions(),
    }
    path = out_dir / "metrics.json"
    allm = read_json(path) if path.exists() else {}
    allm[label] = metrics
    write_json(path, allm)
    return metrics
