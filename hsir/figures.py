"""Figures regenerated from run artifacts, built here so that tests reach them; notebooks save them as PNG and PDF
under ``hsir.config.figures_dir(profile)`` (``$HSIR_FIGURES_DIR/<profile>``, default ``figures/<profile>``).

Beside each notebook's own figures: paper Fig. 4 (``figure_4``, out-of-distribution accuracy as grouped bars with
intervals) and, for each results table, accuracy against mean output tokens, ours beside the paper's
(``better_faster``): the paper's "better, faster" in one picture. Colours come from seaborn's palette.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt  # headless runs fall back to Agg by themselves; notebooks keep their inline backend
from matplotlib.ticker import MaxNLocator


def save(fig, folder: str | Path, name: str) -> Path:
    """Write ``name``.png and ``name``.pdf into ``folder``; returns the PNG path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    fig.savefig(png, dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(folder / f"{name}.pdf", bbox_inches="tight", metadata={"CreationDate": None})  # no churn in git
    return png


def correct_count_histogram(counts: Mapping[str, int], k: int, title: str = ""):
    """Paper Fig. 2 (left), for one model: how many queries have 0, 1, …, K correct samples out of K."""
    import numpy as np

    values = np.bincount(np.asarray(list(counts.values()), dtype=int), minlength=k + 1)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(range(k + 1), values, color="#4C72B0")
    ax.set_xticks(range(k + 1))
    ax.set_xlabel(f"correct samples out of K = {k}")
    ax.set_ylabel("queries")
    ax.set_title(f"Fig. 2 (left): {title or f'correct-count histogram ({len(counts)} queries)'}")
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
        axes[2].bar(x, acc, 0.6, yerr=err.tolist(), capsize=3, color="#C44E52")
        axes[2].set_xticks(x, ablation["method"], rotation=20, ha="right")
        axes[2].set_ylabel("test accuracy (%)")
        twin = axes[2].twinx()
        twin.plot(x, ablation["mean_tokens"], "ko-", label="output tokens")
        twin.set_ylabel("mean output tokens")
        twin.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def redundancy_auc(table, target: float = 0.85):
    """Notebook 07: each score's ROC AUC for telling redundant from clean traces, over all traces and over
    matched-length pairs only, with 95% intervals (an ``analysis.redundancy_table``); 0.5 is chance."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(table))
    for off, col, ci, label in [(-0.2, "auc", "auc_ci95", "all traces"),
                                (0.2, "matched_auc", "matched_ci95", "matched length")]:
        values = table[col].to_numpy(dtype=float)
        err = np.array([[v - lo, hi - v] for v, (lo, hi) in zip(values, table[ci], strict=True)]).reshape(-1, 2).T
        ax.bar(x + off, values, 0.4, yerr=np.clip(np.nan_to_num(err), 0, None), capsize=2, label=label)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.axhline(target, color="red", lw=0.8, ls=":", label=f"target {target}")
    ax.set_xticks(x, table.index, rotation=45, ha="right")
    ax.set_ylabel("ROC AUC (redundant vs clean)")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def indiv_distribution(scores: Mapping, labels, variants, tau: float, rec=None, source: str = "M0 correct samples",
                       population: str = "M0 correct"):
    """Notebook 07: per variant, histograms of InDiv on the clean and the re-checking samples (``labels`` 0 / 1),
    with the paper's ``tau`` and, where ``rec`` (``analysis.recommend_cuts``) has one for ``source``, the
    best cut: the population HSIR cuts, and where each threshold falls in it."""
    import numpy as np

    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(variants), figsize=(5.5 * len(variants), 3.6), squeeze=False)
    for ax, v in zip(axes[0], variants, strict=True):
        s = np.asarray(scores[v], dtype=float)
        for name, lab in [("clean", 0), ("re-checking", 1)]:
            vals = s[(labels == lab) & np.isfinite(s)]
            if len(vals) > 1:
                ax.hist(vals, bins=30, alpha=0.5, label=f"{population}, {name} (n={len(vals)})")
        ax.axvline(tau, color="red", ls="--", label=f"paper tau = {tau}")
        if rec is not None and len(rec) and (v, source) in rec.index:
            r = rec.loc[(v, source)]
            ax.axvline(float(r["youden cut"]), color="black", ls=":",
                       label=f"best cut = q{float(r['as quantile']):.2f} of these")
        ax.set_xlabel(f"InDiv under M0, {v}")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("correct samples")
    fig.tight_layout()
    return fig


CURVES = {"reward": "reward (weighted sum)", "completion_length": "mean completion tokens", "kl": "KL to start"}


def grpo_curves(curves):
    """Notebook 04: the total reward (each method's own, so the scales differ), the mean completion length and the
    KL to the start model per GRPO step, one line per method (a ``grpo.training_curves`` frame); a quantity no
    run logged leaves its panel empty."""
    fig, axes = plt.subplots(1, len(CURVES), figsize=(13, 3.6))
    for ax, (col, label) in zip(axes, CURVES.items(), strict=True):
        if col in curves.columns:
            for name, g in curves.groupby("method", sort=False):
                g = g.sort_values("step")
                ax.plot(g["step"], g[col], marker="o", ms=3, label=name)
        ax.set_xlabel("GRPO step")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    if axes[0].lines:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _palette(names):
    """One colour per name, the same in every panel of a figure (seaborn's default palette)."""
    import seaborn as sns

    names = list(dict.fromkeys(names))
    return dict(zip(names, sns.color_palette(n_colors=max(len(names), 1)), strict=False))


def figure_4(rows, title: str = "Fig. 4: out-of-distribution accuracy of the self-improved models"):
    """Paper Fig. 4: grouped bars, one group per out-of-distribution set (training task → test task), one bar per
    method (its last round, ``generalization.final_rounds``), with its 95% interval as the error bar."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * rows["label"].nunique() + 3), 3.8) if len(rows) else (6, 3.8))
    if rows.empty:
        ax.text(0.5, 0.5, "no out-of-distribution evaluation yet", ha="center", va="center", transform=ax.transAxes)
        return fig
    labels, methods = list(dict.fromkeys(rows["label"])), list(dict.fromkeys(rows["method"]))
    colours, width = _palette(methods), 0.8 / len(methods)
    for i, method in enumerate(methods):
        g = rows[rows["method"] == method].set_index("label")
        x = np.array([labels.index(lab) for lab in g.index]) + (i - (len(methods) - 1) / 2) * width
        acc = g["accuracy (%)"].to_numpy(dtype=float)
        err = np.clip([acc - g["ci_low"].to_numpy(dtype=float), g["ci_high"].to_numpy(dtype=float) - acc], 0, None)
        # as lists: a (2, 1) array warns in matplotlib 3.11 (NumPy's scalar conversion) where a set has one method
        ax.bar(x, acc, width, yerr=err.tolist(), capsize=2, color=colours[method], label=method)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, min(100.0, max(5.0, 1.15 * float(rows["ci_high"].max()))))
    ax.set_ylabel("accuracy (%), 95% interval")
    ax.set_xlabel("trained on → tested on")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


# what each results table's "better, faster" panel plots from the paper: table -> (accuracy column, tokens column, what)
PAPER_POINTS = {"1": ("accuracy", "tokens", "overall: 3 models × 2 tasks"),
                "1a": ("accuracy", "tokens", "overall: 3 models × 2 tasks"), "1b": ("accuracy", "tokens", "overall"),
                "2": ("accuracy", "tokens", "overall: 4 models × 2 tasks"), "3": ("GSM8K", "GSM8K tokens", "GSM8K, 1.5B"),
                "4": ("accuracy", "tokens", "overall: 3 tasks"), "5": ("accuracy", "tokens", "overall"),
                "7": ("1.5B GSM8K", None, "GSM8K, 1.5B")}


def paper_points(table: str):
    """The paper's (method, accuracy, tokens) for one results table, each method's last printed round (``hsir.paper``);
    tokens blank where the table prints none (Table 7)."""
    from hsir.paper import paper_table

    acc, tok, _ = PAPER_POINTS[table]
    df = paper_table(table)
    if "iteration" in df:
        df = df[df["iteration"] == df.groupby("method")["iteration"].transform("max")]
    return df.assign(accuracy=df[acc], tokens=df[tok] if tok else float("nan"))[["method", "accuracy", "tokens"]]


def better_faster(res, table: str, ours_title: str = "this profile"):
    """The paper's "better, faster" in one picture: accuracy against mean output tokens, one point per method (its
    last finished round, with its 95% interval) for this profile (left; ``ours_title``, e.g. one cell of a table),
    beside the paper's printed numbers for Table ``table`` (right; ``paper_points``). Up and to the left is better
    and faster."""
    import seaborn as sns

    fig, (ours, theirs) = plt.subplots(1, 2, figsize=(12, 4))
    theirs_pts = paper_points(table)
    last = res.loc[res.groupby("method", sort=False)["iteration"].idxmax()] if len(res) else res
    colours = _palette([*last.get("method", []), *theirs_pts["method"]])
    for _, r in last.iterrows():
        acc = 100 * r["accuracy"]
        lo, hi = (100 * v for v in r["accuracy_ci95"])
        name = r["method"] + (f" (iter {r['iteration']})" if r["iteration"] > 1 else "")
        ours.errorbar(r["mean_tokens"], acc, yerr=[[max(acc - lo, 0)], [max(hi - acc, 0)]], fmt="o", capsize=3,
                      color=colours[r["method"]], label=name)
        ours.annotate(r["method"], (r["mean_tokens"], acc), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ours.set_title(f"{ours_title} ({len(last)} methods, last round each)", fontsize=10)
    if len(last) == 0:
        ours.text(0.5, 0.5, "no finished rounds", ha="center", va="center", transform=ours.transAxes)
    what = PAPER_POINTS[table][2]
    if theirs_pts["tokens"].notna().any():
        for _, r in theirs_pts.iterrows():
            theirs.plot(r["tokens"], r["accuracy"], "o", color=colours[r["method"]], label=r["method"])
            theirs.annotate(r["method"], (r["tokens"], r["accuracy"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
        theirs.set_title(f"paper, Table {table} as printed ({what})", fontsize=10)
    else:
        theirs.text(0.5, 0.5, f"Table {table} prints no output tokens", ha="center", va="center", transform=theirs.transAxes)
        theirs.set_title(f"paper, Table {table}", fontsize=10)
    for ax in (ours, theirs):
        sns.despine(ax=ax)
        ax.set_xlabel("mean output tokens (fewer is faster)")
        ax.set_ylabel("accuracy (%)")
        if ax.lines or ax.containers:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
