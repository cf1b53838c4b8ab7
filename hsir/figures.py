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
