"""What it would take to tell: the seeds and test problems a claim's comparison needs to reach a verdict.

A comparison the claims file calls "unresolved at this size" leaves a reader with a question its verdict cannot
answer: was the effect absent, or the experiment too small? This module answers it from the same evaluated rounds,
without running a model (``HOW`` is the account the power file prints). In short: each seed's per-problem paired
difference is read as a two-way layout of problem, seed and seed×problem variance (``components``); the variance
of the claims file's interval at any number of seeds and problems follows from them (``variance``), and so do the
sizes at which an effect at a stated distance from a comparison's threshold would resolve with 80% probability
(``seeds_needed``, ``problems_needed``: z_0.975 × the interval's standard error + z_0.8 × the estimate's own
standard error < distance).

The claims' interval resamples seeds and problems independently (``hsir.claims.pooled_paired_difference``). Worked
out from the components, that bootstrap counts the seed×problem variance (3S - 2) / S times where the two-way
model counts it once, and the seed variance (S - 1) / S times: wider than the model's interval where seed×problem
dominates, narrower where the seed part does. Both are computed; the sizes needed use the bootstrap's, since it
decides the verdicts, and each comparison also shows the verdict the model's interval would give.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

from hsir.claims import (
    ACC_MARGIN,
    CLAIMS,
    CONTRADICTED,
    HOLDS,
    NOT_RUN,
    UNRESOLVED,
    Claim,
    Comparison,
    claim_methods,
    common_problems,
    paired_matrix,
    paper_difference,
    pool_pair,
    read_rounds,
    threshold,
    verdict,
)
from hsir.config import kit_path
from hsir.rounds import markdown
from hsir.runs import commit, write_text

Z95 = NormalDist().inv_cdf(0.975)
POWER = 0.8  # the probability with which a size "resolves" an effect of the stated distance
Z_POWER = NormalDist().inv_cdf(POWER)
YARDSTICK = 0.02  # the distance beyond a comparison's threshold asked of every comparison: 2 points
MIN_SEEDS = 3  # the fewest seeds a claim row runs (issue 26); one seed cannot show the seed variance at all
MAX_SEEDS = 10_000  # beyond the caps a count is reported as "more than"
MAX_PROBLEMS = 10_000_000
HOW = (
    "Each seed's per-problem paired difference d[s, i] (A - B on test problem i, seed s: 1, 0 or -1) is read as a "
    "two-way layout, d[s, i] = mu + p[i] + t[s] + e[s, i], with the variances of p (**problem**: which problems "
    "are drawn, common to every seed, since all seeds are evaluated on the same test problems), of t (**seed**: "
    "how far a whole seed's difference moves, sampling and training noise) and of e (**seed×problem**: a "
    "problem's answer changing from seed to seed), each estimated without bias by the method of moments (the "
    "residual mean square for seed×problem) and clipped at 0. Over S seeds and N problems the pooled difference "
    "then has the variance problem / N + seed / S + seed×problem / (S N) (**the model's**). The claims file's "
    "bootstrap, which draws problems and seeds independently, has in expectation problem / N + seed (S - 1) / S² + "
    "seed×problem (3S - 2) / (S² N) (**the bootstrap's**): it counts seed×problem 2.6 times at five seeds (2.3 at "
    "three) and the seed part (S - 1) / S times, so it is wider than the model's where seed×problem dominates and "
    "narrower where the seed part does (the variance column). A 95% interval is 1.96 square roots either side. A "
    "size resolves an effect at a stated distance from the comparison's threshold with 80% probability when 1.96 "
    "square roots of the bootstrap's variance (the interval's half-width) plus 0.84 square roots of the model's "
    "(how far the estimate itself moves from experiment to experiment) are below that distance; solved for S at the "
    "observed "
    f"N (S from {MIN_SEEDS}: fewer cannot show the seed part), or for N at {MIN_SEEDS} seeds. Two distances, fixed "
    "before any difference of ours was looked at: **2 points** beyond the threshold (a 2-point win for > and <; "
    "for ≥, equal rows against the -2-point margin), and **the paper's** own difference, where it prints one on "
    "its side of the threshold. The observed difference is not used here: power computed from it only restates the "
    "interval (the last section asks it one other question). The seed variance rests on three to five numbers, so "
    "the seed counts are an order of magnitude, not a plan.")


@dataclass(frozen=True)
class Components:
    """The variance components of a paired difference (fractions squared), from ``seeds`` seeds × ``n`` problems."""

    problem: float
    seed: float
    interaction: float
    seeds: int
    n: int


def components(d: np.ndarray) -> Components:
    """Unbiased method-of-moments estimates of the two-way layout's variances from ``d`` (seeds × problems, at least
    two each), clipped at 0: seed×problem is the residual mean square (each cell less its seed's and its problem's
    mean, plus the grand mean); problem and seed are the variances of the per-problem and per-seed means, less the
    share of seed×problem each carries."""
    d = np.asarray(d, dtype=float)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 2:
        raise ValueError(f"components: a seeds × problems matrix with at least 2 of each, got shape {d.shape}")
    s, n = d.shape
    resid = d - d.mean(axis=1, keepdims=True) - d.mean(axis=0, keepdims=True) + d.mean()
    interaction = float((resid**2).sum() / ((s - 1) * (n - 1)))
    problem = max(0.0, float(np.var(d.mean(axis=0), ddof=1)) - interaction / s)
    seed = max(0.0, float(np.var(d.mean(axis=1), ddof=1)) - interaction / n)
    return Components(problem, seed, interaction, s, n)


def parts(c: Components, seeds: int, n: int, bootstrap: bool = True) -> tuple[float, float, float]:
    """The variance of the pooled difference over ``seeds`` seeds and ``n`` problems in its three parts (problem,
    seed, seed×problem): the claims bootstrap's expectation (``bootstrap``) or the two-way model's (``HOW``)."""
    if seeds < 1 or n < 1:
        raise ValueError(f"seeds and n must be at least 1, got {seeds}, {n}")
    if bootstrap:
        return c.problem / n, c.seed * (seeds - 1) / seeds**2, c.interaction * (3 * seeds - 2) / (seeds**2 * n)
    return c.problem / n, c.seed / seeds, c.interaction / (seeds * n)


def variance(c: Components, seeds: int, n: int, bootstrap: bool = True) -> float:
    """The variance of the pooled difference (``parts`` summed)."""
    return sum(parts(c, seeds, n, bootstrap))


def half_width(c: Components, seeds: int, n: int, bootstrap: bool = True, z: float = Z95) -> float:
    """Half-width of the pooled difference's 95% interval (a fraction), as ``variance``."""
    return z * math.sqrt(variance(c, seeds, n, bootstrap))


def _positive(distance: float) -> None:
    if distance <= 0:
        raise ValueError(f"distance must be positive, got {distance}")


def resolves(c: Components, seeds: int, n: int, distance: float, z: float = Z95) -> bool:
    """Whether ``seeds`` seeds and ``n`` problems resolve an effect ``distance`` beyond the threshold with 80%
    probability: the estimate, spread by the model's variance, lands a half-width of the claims interval (the
    bootstrap's variance) beyond the threshold in 80% of experiments."""
    _positive(distance)
    return (z * math.sqrt(variance(c, seeds, n)) + Z_POWER * math.sqrt(variance(c, seeds, n, bootstrap=False))
            < distance)


def seeds_needed(c: Components, n: int, distance: float, z: float = Z95) -> int | None:
    """The fewest seeds (from ``MIN_SEEDS``) at ``n`` problems that ``resolves`` an effect ``distance`` beyond the
    threshold; None when the problems' share alone is too wide (no number of seeds resolves it: more problems are
    needed), ``MAX_SEEDS + 1`` past the cap."""
    _positive(distance)
    if (z + Z_POWER) * math.sqrt(c.problem / n) >= distance:  # the limit of many seeds: both variances problem / n
        return None
    return next((s for s in range(MIN_SEEDS, MAX_SEEDS + 1) if resolves(c, s, n, distance, z)), MAX_SEEDS + 1)


def problems_needed(c: Components, seeds: int, distance: float, z: float = Z95) -> int | None:
    """The fewest problems at ``seeds`` seeds that ``resolves`` an effect ``distance`` beyond the threshold; None
    when the seeds' share alone is too wide (no number of problems resolves it: more seeds are needed),
    ``MAX_PROBLEMS + 1`` past the cap."""
    _positive(distance)
    limit = z * math.sqrt(parts(c, seeds, 1)[1]) + Z_POWER * math.sqrt(parts(c, seeds, 1, bootstrap=False)[1])
    if limit >= distance:  # the limit of many problems: the seed parts alone
        return None
    if not resolves(c, seeds, MAX_PROBLEMS, distance, z):
        return MAX_PROBLEMS + 1
    lo, hi = 0, MAX_PROBLEMS  # resolves at hi, not at lo (the half-widths shrink as n grows)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if resolves(c, seeds, mid, distance, z) else (mid, hi)
    return hi


def distances(claim: Claim, comp: Comparison, margin: float = ACC_MARGIN) -> dict[str, float | None]:
    """The distances from the comparison's threshold asked of it (fractions): ``2 points`` always; ``the paper's``
    where the paper prints a difference on its side of the threshold, None otherwise (nothing of the paper's to
    resolve)."""
    t, above = threshold(comp.direction, comp.margin(margin))
    size = paper_difference(claim, comp)
    paper = None if size is None else (size / 100 - t) * (1 if above else -1)
    return {"2 points": YARDSTICK, "the paper's": paper if paper is not None and paper > 0 else None}


def _count(v: int | None, cap: int) -> str:
    return "none enough" if v is None else f"more than {cap:,}" if v > cap else f"{v:,}"


def interval_text(pooled: Mapping) -> str:
    """A pooled difference and its 95% interval in points, as the power and replicate files print it."""
    lo, hi = pooled["diff_ci95"]
    return f"{pooled['diff'] * 100:+.1f} [{lo * 100:.1f}, {hi * 100:.1f}]"


def seeded_accuracy_comparisons(runs: Mapping, roots: Mapping, claims: Sequence[Claim] = CLAIMS, n_boot: int = 2000,
                                seed: int = 0):
    """(claim, comparison, seeds used, ``pool_pair``'s pooled difference) for each accuracy comparison of ``claims``
    that two seeds or more of ``runs`` ran: the comparisons whose spread over seeds can be read."""
    for claim in claims:
        for comp in claim.comparisons:
            if comp.metric != "accuracy":
                continue
            used, pooled = pool_pair(runs, roots, comp.a, comp.b, n_boot, seed)
            if pooled is not None and len(used) >= 2:
                yield claim, comp, used, pooled


def _components(runs: Mapping, comp: Comparison, used: Sequence[int]) -> Components:
    pairs = [(runs[s, comp.a].correct, runs[s, comp.b].correct) for s in used]
    return components(paired_matrix(pairs, common_problems(pairs)))


ON_THRESHOLD = 1e-12  # a difference this close to its threshold is on it: no size tells it apart


def side(d: float, direction: str, margin: float = 0.0) -> float:
    """How far ``d`` lies beyond the comparison's threshold on the paper's side (negative: the other side; 0 when
    within ``ON_THRESHOLD`` of it)."""
    t, above = threshold(direction, margin)
    beyond = d - t if above else t - d
    return 0.0 if abs(beyond) < ON_THRESHOLD else beyond


def resolvable(c: Components, d: float, direction: str, margin: float = 0.0,
               seeds: int = MIN_SEEDS) -> tuple[str, int | None]:
    """Were ``d`` the true difference, the verdict the claims file would reach at enough problems at ``seeds``
    seeds, and the fewest problems that ``resolves`` it: holds on the paper's side of the threshold, contradicted
    on the other; unresolved at any size (None) where the seed part alone is too wide or ``d`` sits on the
    threshold."""
    beyond = side(d, direction, margin)
    n = problems_needed(c, seeds, abs(beyond)) if beyond else None
    return (UNRESOLVED, None) if n is None else (HOLDS if beyond > 0 else CONTRADICTED, n)


def claim_resolvable(comparisons: Sequence[tuple[str, int | None]]) -> tuple[str, int | None]:
    """A claim's verdict at enough problems from its comparisons' (``resolvable``'s, or a verdict already reached
    at the size run, with that size), by the claims rule (``hsir.claims.combine``): contradicted once one
    comparison is (at the fewest problems any such needs), not run where one is, holds once all do (at the most
    problems any needs), else unresolved at any size."""
    against = [n for v, n in comparisons if v == CONTRADICTED]
    if against:
        return CONTRADICTED, min(against)
    if any(v == NOT_RUN for v, _ in comparisons):
        return NOT_RUN, None
    if comparisons and all(v == HOLDS for v, _ in comparisons):
        return HOLDS, max(n for _, n in comparisons)
    return UNRESOLVED, None


def power_table(roots: Mapping, iteration: int = 1, claims: Sequence[Claim] = CLAIMS, margin: float = ACC_MARGIN,
                n_boot: int = 2000, seed: int = 0, runs: Mapping | None = None):
    """One row per accuracy comparison of the claims run on at least two seeds (a DataFrame): the claims file's
    difference and interval, the components as standard deviations in points, the half-widths now (the claims
    bootstrap's, its expectation, the model's), each part's share of the bootstrap's variance, the verdict under the
    model's interval, and for each distance of ``distances`` the seeds (at the observed problems) and problems (at
    ``MIN_SEEDS`` seeds) at which it would resolve with 80% probability. Token comparisons are left out: every one
    resolves at this size."""
    import pandas as pd

    if runs is None:
        runs = read_rounds(roots, claim_methods(claims), iteration, None)
    rows = []
    for claim, comp, used, pooled in seeded_accuracy_comparisons(runs, roots, claims, n_boot, seed):
        c = _components(runs, comp, used)
        d, (lo, hi) = pooled["diff"], pooled["diff_ci95"]
        model = half_width(c, c.seeds, c.n, bootstrap=False)
        m = comp.margin(margin)
        row = {"claim": claim.key, "comparison": comp.text(), "seeds": ", ".join(map(str, used)), "n": c.n,
               "difference [95% CI]": interval_text(pooled),
               "SD (pts): problem / seed / seed×problem": " / ".join(
                   f"{100 * math.sqrt(v):.1f}" for v in (c.problem, c.seed, c.interaction)),
               "variance now (%): problem / seed / seed×problem": " / ".join(
                   f"{100 * v / (variance(c, c.seeds, c.n) or 1):.0f}" for v in parts(c, c.seeds, c.n)),
               "± now: bootstrap / its expectation / model": f"{(hi - lo) * 50:.1f} / "
               f"{half_width(c, c.seeds, c.n) * 100:.1f} / {model * 100:.1f}",
               "verdict: claims.md / model's interval": f"{verdict(d, (lo, hi), comp.direction, m)} / "
               f"{verdict(d, (d - model, d + model), comp.direction, m)}"}
        for name, dist in distances(claim, comp, margin).items():
            row |= {f"{name}: distance": "", f"{name}: seeds at n": "",
                    f"{name}: problems at {MIN_SEEDS} seeds": ""} if dist is None else {
                f"{name}: distance": f"{dist * 100:.1f}",
                f"{name}: seeds at n": _count(seeds_needed(c, c.n, dist), MAX_SEEDS),
                f"{name}: problems at {MIN_SEEDS} seeds": _count(problems_needed(c, MIN_SEEDS, dist),
                                                                 MAX_PROBLEMS)}
        rows.append(row)
    return pd.DataFrame(rows)


AT_MEASURED = (
    "A different question from the table's, and the one issue 26's bar asks (at least half the claims resolved at "
    f"{MIN_SEEDS} seeds): were each accuracy difference measured here the true one, could any test split resolve "
    f"the claims at {MIN_SEEDS} seeds? Per accuracy comparison, the fewest problems at which its interval would "
    "exclude the threshold with 80% probability (`resolves`, as in the table), on the side the difference fell; "
    "none where the seed part alone is too wide, which no number of problems narrows. A token comparison keeps the "
    "verdict `claims.md` gives it at the problems run (it is not sized); an accuracy comparison run on one seed "
    "cannot be sized and counts as not run. Per claim, the claims file's rule: contradicted once one comparison is, "
    "holds once every comparison does, at the problems the last of them needs, each with 80% probability (the "
    "claim's own is lower where several must hold). The measured differences are estimates, within the intervals "
    "above, so this is how far the experiment as it stands is from the bar, not a forecast.")


def at_measured(roots: Mapping, iteration: int = 1, claims: Sequence[Claim] = CLAIMS, margin: float = ACC_MARGIN,
                seeds: int = MIN_SEEDS, n_boot: int = 2000, seed: int = 0,
                runs: Mapping | None = None) -> list[tuple[Claim, list[str], str, int | None]]:
    """Per claim: a line per comparison (its measured difference and, for accuracy, the side of the threshold it
    fell on and the problems at ``seeds`` seeds it needs, ``resolvable``; for tokens, its verdict at the problems
    run), and the claim's verdict and problems at enough problems (``claim_resolvable``)."""
    if runs is None:
        runs = read_rounds(roots, claim_methods(claims), iteration, None)
    out = []
    for claim in claims:
        lines, verdicts = [], []
        for comp in claim.comparisons:
            used, pooled = pool_pair(runs, roots, comp.a, comp.b, n_boot, seed)
            m = comp.margin(margin)
            if pooled is None:
                lines.append(f"{comp.text()}: not run")
                verdicts.append((NOT_RUN, None))
            elif comp.metric == "tokens":
                v = verdict(pooled["tokens_diff"], pooled["tokens_ci95"], comp.direction, m)
                lines.append(f"{comp.text()}: {pooled['tokens_diff']:+.1f} tokens, {v} at {pooled['n']:,}")
                verdicts.append((v, pooled["n"]) if v in (HOLDS, CONTRADICTED) else (v, None))
            elif len(used) < 2:
                lines.append(f"{comp.text()}: {pooled['diff'] * 100:+.1f} pts, one seed: its spread unknown")
                verdicts.append((NOT_RUN, None))
            else:
                v, n = resolvable(_components(runs, comp, used), pooled["diff"], comp.direction, m, seeds)
                beyond = side(pooled["diff"], comp.direction, m)
                where = "the paper's side" if beyond > 0 else "the other side" if beyond < 0 else "on the threshold"
                lines.append(f"{comp.text()}: {pooled['diff'] * 100:+.1f} pts, {where}, {_count(n, MAX_PROBLEMS)}")
                verdicts.append((v, n))
        out.append((claim, lines, *claim_resolvable(verdicts)))
    return out


def at_measured_text(rows: Sequence[tuple[Claim, list[str], str, int | None]], n_now: int,
                     seeds: int = MIN_SEEDS) -> str:
    """``at_measured`` as the power file prints it: how many claims could resolve at ``seeds`` seeds, at the test
    split's ``n_now`` problems and at any size, the problems half of them would need, and the table."""
    import pandas as pd

    sizes = sorted(n for *_, v, n in rows if v in (HOLDS, CONTRADICTED))
    half = max(1, -(-len(rows) // 2))
    summary = (f"At {seeds} seeds, were the measured differences the truth, **{len(sizes)} of {len(rows)}** claims "
               "could resolve at some size (each comparison with 80% probability), "
               f"{sum(n <= n_now for n in sizes)} of them at the {n_now:,} problems run; "
               + (f"half ({half}) would need {_count(sizes[half - 1], MAX_PROBLEMS)} problems."
                  if len(sizes) >= half else f"no test split resolves half ({half})."))
    table = pd.DataFrame([{"claim": claim.key, "comparisons: measured difference, side, problems": "<br>".join(lines),
                           f"at enough problems, {seeds} seeds": "unresolved at any size" if v == UNRESOLVED else v,
                           "problems": "" if n is None else _count(n, MAX_PROBLEMS)} for claim, lines, v, n in rows])
    return summary + "\n\n" + markdown(table)


def write_power(roots: Mapping, out: str | Path, iteration: int = 1, command: str | None = None, note: str = "",
                n_boot: int = 2000) -> str:
    """The power file (markdown), written atomically to ``out``: ``HOW``, then ``power_table``, then
    ``at_measured``, from one reading of the rounds."""
    runs = read_rounds(roots, claim_methods(CLAIMS), iteration, None)
    table = power_table(roots, iteration, n_boot=n_boot, runs=runs)
    where = ", ".join(f"seed {s}: `{kit_path(r)}`" for s, r in roots.items())
    sections = [
        "# What it would take to tell: seeds and test problems per comparison",
        f"From the evaluated rounds of each seed ({where})" + (f" by `{command}`" if command else "")
        + f" ({time.strftime('%Y-%m-%d')}, commit {commit() or 'unknown'}); round {iteration}; the accuracy "
        "comparisons of `claims.md`, pooled the same way." + (f" {note}" if note else ""),
        "## How", HOW,
        "Columns: the components as standard deviations in points; each part's share of the bootstrap's variance "
        "at the observed size; the three half-widths in points at that size (the claims file's interval, the "
        "bootstrap's expected one, the model's); the verdict by the claims file's rule on its interval and on "
        "d ± the model's half-width; per distance (points beyond the threshold: 0 for > and <, -2 for ≥), the seeds "
        f"at the observed problems and the problems at {MIN_SEEDS} seeds that would resolve it with 80% probability, "
        "\"none enough\" where the other dimension's share alone is too wide. More problems than the test split "
        "holds mean a larger split: the synthetic testbed can generate one, a benchmark cannot.",
        "## Per comparison", markdown(table) if len(table) else
        "No accuracy comparison has run on two seeds or more: one seed cannot tell its own spread. `make reproduce "
        "SEEDS=\"1 2\"` runs the claim rows on two more.",
    ]
    if len(table):
        sections += [f"## Were the measured differences the truth: the claims at {MIN_SEEDS} seeds", AT_MEASURED,
                     at_measured_text(at_measured(roots, iteration, n_boot=n_boot, runs=runs),
                                      int(table["n"].max()))]
    text = "\n\n".join(sections) + "\n"
    write_text(out, text)
    return text
