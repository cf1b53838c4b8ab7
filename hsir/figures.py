"""Figures regenerated from run artifacts: saved as PNG and PDF under ``figures/<profile>/``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt  # headless runs fall back to Agg by themselves; notebooks keep their inline backend


def save(fig, folder: str | Path, name: str) -> Path:
    """Write ``name``.png and ``name``.pdf into ``folder``; returns the PNG path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    fig.savefig(png, dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(folder / f"{name}.pdf", bbox_inches="tight", metadata={"CreationDate": None})  # no churn in git
    return png


def correct_count_histogram(counts: Mapping[str, int], k: int, title: str = ""):
    """The paper's Figure 1: how many queries have 0, 1, …, K correct samples out of K."""
    import numpy as np

    values = np.bincount(np.asarray(list(counts.values()), dtype=int), minlength=k + 1)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(range(k + 1), values, color="#4C72B0")
    ax.set_xticks(range(k + 1))
    ax.set_xlabel(f"correct samples out of K = {k}")
    ax.set_ylabel("queries")
    ax.set_title(title or f"Correct-count histogram ({len(counts)} queries)")
    for x, v in enumerate(values):
        if v:
            ax.text(x, v, str(v), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    return fig


def figure_2(histograms: Mapping[str, Mapping[str, int]], k: int, levels, ablation):
    """Paper Fig. 2: correct-count histograms per model (left), the four-level split of the self-generated data
    (middle, ``analysis.level_split``), and accuracy with its 95% interval and output tokens of SFT on one
    solution per query chosen four ways (right, a ``results.results_table``)."""
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    width = 0.8 / max(len(histograms), 1)
    for i, (name, counts) in enumerate(histograms.items()):
        values = np.bincount(np.asarray(list(counts.values()), dtype=int), minlength=k + 1)
        axes[0].bar(np.arange(k + 1) + (i - (len(histograms) - 1) / 2) * width, values, width, label=name)
    axes[0].set_xlabel(f"correct samples out of K = {k}")
    axes[0].set_ylabel("queries")
    axes[0].legend(fontsize=8)
    axes[1].bar([str(i) for i in levels.index], levels["share of data"], color="#55A868")
    axes[1].set_xlabel("level (queries split evenly by correct count, hardest first)")
    axes[1].set_ylabel("share of correct self-generated solutions")
    if len(ablation):
        x = np.arange(len(ablation))
        acc = ablation["accuracy"].to_numpy() * 100
        err = np.array([[a * 100 - lo * 100, hi * 100 - a * 100] for a, (lo, hi)
                        in zip(ablation["accuracy"], ablation["accuracy_ci95"], strict=True)]).T
        axes[2].bar(x, acc, 0.6, yerr=err, capsize=3, color="#C44E52")
        axes[2].set_xticks(x, ablation["method"], rotation=20, ha="right")
        axes[2].set_ylabel("test accuracy (%)")
        twin = axes[2].twinx()
        twin.plot(x, ablation["mean_tokens"], "ko-", label="output tokens")
        twin.set_ylabel("mean output tokens")
        twin.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig
