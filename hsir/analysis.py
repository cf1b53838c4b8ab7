"""The computations behind the analysis notebooks (01, 04, 07), kept here so that tests reach them.

InDiv (07): ROC AUC with bootstrap intervals, matched-length pairs, Spearman, the planted and the self-generated
redundancy labels, the populations tau is read against, and the tau recommendation. Fig. 2 (01): the correct-count
summary and the level split. GRPO (04): which methods a paper table shows, and the per-run means of the curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hsir import paper
from hsir.synthetic import rechecks

DEFAULT_VARIANT = "token/self-max (default)"  # the paper's reading (hsir.indiv's default)
STEP_VARIANT = "step/received-max"  # the kit's step-level variant, the one that survives matched length


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    xs = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney U)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = _ranks(s)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_ci(labels: Sequence[int], scores: Sequence[float], n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AUC and its 95% percentile-bootstrap interval (resampling items)."""
    y, s = np.asarray(labels), np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        a = roc_auc(y[idx], s[idx])
        if np.isfinite(a):
            boots.append(a)
    lo, hi = np.quantile(boots, [0.025, 0.975]) if boots else (np.nan, np.nan)
    return roc_auc(y, s), float(lo), float(hi)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    a, b = _ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float))
    return float(np.corrcoef(a, b)[0, 1])


def correlation_table(sources: dict[str, dict[str, np.ndarray]], variants: Sequence[str],
                      reference: str = "Eq.3 ReaDiv", length: str = "length (negated)"):
    """Spearman of each InDiv variant with ``reference`` (Eq.3) and with length, per source of solutions.

    ``sources`` maps a name to the score dict of ``variant_scores`` plus the reference and the negated length;
    solutions where either score is NaN are left out (``n`` counts the rest).
    """
    import pandas as pd

    rows = []
    for source, sc in sources.items():
        for v in variants:
            ok = np.isfinite(sc[v]) & np.isfinite(sc[reference])
            rows.append({"source": source, "variant": v, "n": int(ok.sum()),
                         f"spearman vs {reference}": spearman(sc[v][ok], sc[reference][ok]) if ok.sum() > 2 else np.nan,
                         "spearman vs length": spearman(sc[v][ok], -sc[length][ok]) if ok.sum() > 2 else np.nan})
    return pd.DataFrame(rows)


def matched_length_pairs(
    pos_lengths: Sequence[int], neg_lengths: Sequence[int], tolerance: float = 0.05
) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (positive i, negative j) whose lengths differ by at most ``tolerance`` (relative).

    Scoring only such pairs removes length as an explanation: within them, length's AUC is near 0.5.
    """
    free = sorted(range(len(neg_lengths)), key=lambda j: neg_lengths[j])
    pairs = []
    for i in sorted(range(len(pos_lengths)), key=lambda i: pos_lengths[i]):
        best, best_gap = None, None
        for j in free:
            gap = abs(neg_lengths[j] - pos_lengths[i])
            if gap <= tolerance * pos_lengths[i] and (best_gap is None or gap < best_gap):
                best, best_gap = j, gap
        if best is not None:
            pairs.append((i, best))
            free.remove(best)
    return pairs


def redundancy_table(scores: dict[str, np.ndarray], labels: Sequence[int], lengths: Sequence[int],
                     tolerance: float = 0.05, n_boot: int = 1000):
    """For each score (higher = more diverse), the ROC AUC of its negation for telling redundant (label 1) from
    clean traces, with 95% bootstrap intervals: over all traces, and over matched-length pairs only."""
    import pandas as pd

    y, lens = np.asarray(labels), np.asarray(lengths)
    pos, neg = np.where(y == 1)[0], np.where(y == 0)[0]
    pairs = matched_length_pairs(lens[pos].tolist(), lens[neg].tolist(), tolerance)
    idx = np.array([pos[i] for i, _ in pairs] + [neg[j] for _, j in pairs], dtype=int)
    rows = []
    for name, s in scores.items():
        s = np.asarray(s, dtype=float)
        ok = np.isfinite(s)
        auc, lo, hi = auc_ci(y[ok], -s[ok], n_boot)
        m = idx[ok[idx]]
        mauc, mlo, mhi = auc_ci(y[m], -s[m], n_boot)
        rows.append({"score": name, "auc": auc, "auc_ci95": (round(lo, 3), round(hi, 3)), "matched_auc": mauc,
                     "matched_ci95": (round(mlo, 3), round(mhi, 3))})
    table = pd.DataFrame(rows).set_index("score")
    table.attrs["matched_pairs"] = len(pairs)
    return table


def best_threshold(labels: Sequence[int], scores: Sequence[float]) -> float:
    """The cut t that maximises Youden's J for "score < t means redundant" (label 1)."""
    y, s = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    best, best_j = float("nan"), -1.0
    for t in np.unique(s):
        flagged = s < t
        j = flagged[y].mean() - flagged[~y].mean()
        if j > best_j:
            best, best_j = float(t), j
    return best


def level_split(counts: dict[str, int], levels: int = 4):
    """Paper Fig. 2 (middle): queries sorted by their number of correct samples and split evenly into ``levels``
    groups, hardest first; the share of the self-generated correct data each level holds."""
    import pandas as pd

    order = sorted(counts, key=lambda q: (counts[q], q))
    groups = np.array_split(np.array(order, dtype=object), levels)
    total = sum(counts.values())
    rows = []
    for i, g in enumerate(groups, 1):
        c = [counts[q] for q in g]
        rows.append({"level": i, "queries": len(g), "correct per query": f"{min(c)}-{max(c)}" if c else "-",
                     "correct solutions": int(sum(c)), "share of data": sum(c) / total if total else float("nan")})
    return pd.DataFrame(rows).set_index("level")


def score_all(model, tokenizer, prompts: Sequence[str], texts: Sequence[str], embedder=None,
              max_tokens: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every InDiv variant under ``model``, Eq.3 (with an ``embedder``) and negated length for (prompt, solution)
    pairs, from one middle-layer pass; returns (scores by name, solution lengths in tokens)."""
    from hsir.diversity import readiv_scores
    from hsir.indiv import encode, middle_states, token_steps, variant_scores

    states, raw = middle_states(model, encode(tokenizer, prompts), encode(tokenizer, texts), max_tokens=max_tokens)
    scores = variant_scores(states, raw, [token_steps(tokenizer, t) for t in texts])
    if embedder is not None:
        scores["Eq.3 ReaDiv"] = np.array(readiv_scores(list(texts), embedder))
    lengths = np.array([h.shape[0] for h in states])
    scores["length (negated)"] = -lengths.astype(float)
    return scores, lengths


def recommend_cut(labels: Sequence[int], scores: Sequence[float], tau: float | None = None) -> dict | None:
    """The Youden cut separating label 1 (redundant) from 0, as a value and as the quantile tau string that
    ``indiv.resolve_tau`` turns back into it on the same scores; None when one class is missing."""
    y, s = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    ok = np.isfinite(s)
    y, s = y[ok], s[ok]
    if not 0 < y.sum() < len(y):
        return None
    cut = best_threshold(y, s)
    q = float(np.mean(s < cut))
    out = {"youden cut": cut, "as quantile": q, "tau": f"q{q:.4f}", "flagged re-checking": float(np.mean(s[y == 1] < cut)),
           "flagged clean": float(np.mean(s[y == 0] < cut))}
    if tau is not None:
        out["quantile of tau"] = float(np.mean(s < tau))
    return out


def recommendation(rec, source: str) -> tuple[str, dict]:
    """The variant whose cut best separates the classes in ``source`` (flagged re-checking minus flagged clean)."""
    own = rec.xs(source, level=1)
    best = (own["flagged re-checking"].astype(float) - own["flagged clean"].astype(float)).idxmax()
    return best, own.loc[best].to_dict()


def population_table(pops: dict[str, np.ndarray], tau: float):
    """Size, median and the quantile at which ``tau`` falls, for each population of scores (NaN dropped)."""
    import pandas as pd

    rows = {}
    for name, v in pops.items():
        v = np.asarray(v, dtype=float)
        v = v[np.isfinite(v)]
        rows[name] = {"n": len(v), "quantile of tau": float(np.mean(v < tau)) if len(v) else np.nan,
                      "median": float(np.median(v)) if len(v) else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------------------------------------ InDiv labels (07)

def planted_redundancy(task, problems: Sequence, tokenizer) -> tuple[list[str], list[str], np.ndarray]:
    """The synthetic seed traces of ``problems`` in both variants, clean first: (prompts, texts, labels), label 1 for
    the redundant one. Both variants answer the same prompts, so a score that separates them reads the redundancy."""
    prompts = [task.prompt(p, tokenizer) for p in problems]
    texts = [p.meta["clean_trace"] for p in problems] + [p.meta["redundant_trace"] for p in problems]
    return prompts * 2, texts, np.array([0] * len(problems) + [1] * len(problems), dtype=int)


def reference_traces(task, problems: Sequence, tokenizer) -> tuple[list[str], list[str]]:
    """(prompts, texts) of the reference reasoning the task ships with its problems (e.g. DeepSeek-R1's GSM8K traces)."""
    return [task.prompt(p, tokenizer) for p in problems], [p.reasoning for p in problems]


def recheck_labels(texts: Sequence[str]) -> np.ndarray:
    """1 for each text that re-checks itself the way the planted redundancy does (``synthetic.rechecks``): the
    label of a model's own samples, which have no planted twin."""
    return np.array([int(rechecks(t)) for t in texts], dtype=int)


def two_classes(labels: Sequence[int]) -> bool:
    """Both labels occur: an AUC or a cut needs redundant and clean examples."""
    total = int(np.sum(labels))
    return 0 < total < len(labels)


def sample_prompts(task, problems: Sequence, rows: Sequence[dict], tokenizer,
                   correct_only: bool = False) -> tuple[list[str], list[str]]:
    """(prompts, texts) of the sample ``rows`` whose query is among ``problems`` (only the correct ones with
    ``correct_only``, the population HSIR filters), each prompt built as the task builds it for that query."""
    by_qid = {p.qid: p for p in problems}
    kept = [r for r in rows if r["qid"] in by_qid and (not correct_only or r["correct"])]
    return [task.prompt(by_qid[r["qid"]], tokenizer) for r in kept], [r["text"] for r in kept]


def indiv_populations(variant: str, synthetic: Mapping[str, np.ndarray], synthetic_labels: Sequence[int],
                      r1: Mapping[str, np.ndarray], zero_shot: Mapping[str, np.ndarray],
                      m0: Mapping[str, np.ndarray], m0_labels: Sequence[int]) -> dict[str, np.ndarray]:
    """One variant's scores split into the populations tau is read against: InDiv's scale moves with the model and
    the text, so where tau falls must be read per population (``population_table``)."""
    y_syn, y_m0 = np.asarray(synthetic_labels), np.asarray(m0_labels)
    return {"synthetic clean (base)": synthetic[variant][y_syn == 0],
            "synthetic redundant (base)": synthetic[variant][y_syn == 1],
            "R1 traces (base)": r1[variant],
            "zero-shot samples (base)": zero_shot[variant],
            "M0 correct samples": m0[variant],
            "M0 correct, re-checking": m0[variant][y_m0 == 1]}


# ------------------------------------------------------------------------------------------------ tau (07)

def recommend_cuts(sources: Mapping[str, tuple[Mapping[str, np.ndarray], Sequence[int]]], variants: Sequence[str],
                   tau: float | None = None):
    """``recommend_cut`` for every variant on every source (name -> (scores by variant, labels)), one row per
    (variant, source); a source whose labels (after NaN scores are dropped) hold one class only gives no row."""
    import pandas as pd

    rows = {}
    for v in variants:
        for source, (scores, labels) in sources.items():
            r = recommend_cut(labels, scores[v], tau)
            if r is not None:
                rows[(v, source)] = r
    rec = pd.DataFrame.from_dict(rows, orient="index")  # typed columns: the cut a float, tau a string
    if len(rec):
        rec.index = rec.index.set_names(["variant", "source"])
    return rec


def tau_recommendation(rec, sources: Sequence[str], reference: str = DEFAULT_VARIANT) -> dict:
    """The recommendation from the first of ``sources`` that has a cut in ``rec`` (``recommend_cuts``): the
    variant that separates best there, its tau, and the quantile at which the paper's tau falls under
    ``reference``. M0's own correct samples come first where they hold both classes: they are what HSIR cuts."""
    have = set(rec.index.get_level_values(1)) if len(rec) else set()
    source = next((s for s in sources if s in have), None)
    if source is None:
        raise ValueError(f"no cut: none of {list(sources)} holds both labels")
    best, r = recommendation(rec, source)
    paper_q = rec.loc[(reference, source)].get("quantile of tau", np.nan) if (reference, source) in rec.index else np.nan
    return {"source": source, "variant": best, **r, "paper tau quantile": float(paper_q)}


# ------------------------------------------------------------------------------------------------ Fig. 2 (01)

def correct_count_summary(histograms: Mapping[str, Mapping[str, int]], k: int):
    """Per model, from its correct-count histogram (query -> correct samples of ``k``): the queries with none
    correct (which self-improvement cannot learn from), those with all correct, and the sample accuracy."""
    import pandas as pd

    rows = {}
    for name, counts in histograms.items():
        c = np.asarray(list(counts.values()), dtype=int)
        rows[name] = {"queries with 0 correct": int(np.sum(c == 0)), "queries with all correct": int(np.sum(c == k)),
                      "sample accuracy": float(c.sum() / (k * len(c))) if len(c) else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index")


def subset_size(n: int, share: float) -> int:
    """Rows in a ``share`` of ``n`` (the weaker M0's seed traces), at least one so that it trains."""
    return max(1, int(n * share))


# ------------------------------------------------------------------------------------------------ GRPO (04)

def in_paper_order(table: str, methods: Sequence[str]) -> list[str]:
    """The rows of paper table ``table`` (``hsir.paper.METHODS``) that are among ``methods``, in the paper's order."""
    paper.check_table(table)
    return [m for m in paper.METHODS[table] if m in methods]


def curve_means(curves):
    """Each method's mean over its GRPO steps of every reward part, the completion length and KL
    (``grpo.training_curves``); a column no run logged is left out."""
    cols = [c for c in curves.columns if c.startswith("reward/")] + [c for c in ("completion_length", "kl")
                                                                      if c in curves.columns]
    return curves.groupby("method", sort=False)[cols].mean()
