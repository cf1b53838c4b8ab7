"""Another M0: does a run that trained its own M0 land where the seeds of one shared M0 do?

The claim rows' seeds share one M0 (``hsir.seeds``), so the claims' intervals resample seeds and test problems but
never M0: they hold it fixed. A run from a clean clone on another box trains its own M0 from the same data and seed
(another CPU's numerics give other weights), then every row from it. Read as one more seed, its differences should
sit where a seed of the shared M0 would, unless M0's own variation matters.

The test (``TEST``): the replicate is evaluated on the same test problems as the seeds, so, given the problems,
each seed's difference is the same quantity plus its own seed noise (seed + seed×problem / N, in
``hsir.power``'s terms), and the replicate's should be one more draw of it. That is a prediction interval for a
new observation from S: t = (replicate - mean) / (s sqrt(1 + 1/S)), s the SD of the seeds' differences, Student's
t with S - 1 degrees of freedom. (A normal reference with the variance components in place of s flags well above
5% of such replicates at three seeds, 9.5-12% in simulations like the test's: s rests on two degrees of freedom.)
Beside it, the cruder z from the two intervals' half-widths, which counts the problem part twice and seldom flags.

The replicate runs the profile's own seed, as seed 0 of the seeds does: its samples and training order draw the
same random numbers, and differ only because its M0 does. So it is not independent of seed 0, and where M0 moved
little it sits closer to seed 0 than a new seed would: the test then flags less, not more. A replicate whose M0 is
one of the seeds' (or that is one of their roots) tests nothing and is refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hsir.archive import m0_weights
from hsir.claims import (
    ACC_MARGIN,
    CLAIMS,
    Claim,
    claim_methods,
    common_problems,
    paired_matrix,
    pool_pair,
    read_rounds,
    verdict,
)
from hsir.config import kit_path
from hsir.methods import M0
from hsir.power import Z95, components, interval_text, seeded_accuracy_comparisons
from hsir.rounds import markdown
from hsir.runs import commit, write_text

FLAG_COUNT = 2  # comparisons flagged out of the accuracy comparisons at which M0's variation is "not negligible"
TEST = (
    "Each accuracy comparison of the claims, A - B, is computed on the replicate alone (one seed, its own M0) and "
    "for each seed that shares M0, on the problems all of them evaluated. The replicate counts as one more seed: "
    "t = (replicate - mean of the seeds) / (s sqrt(1 + 1 / S)), s the standard deviation of the S seeds' "
    "differences; the problem part cancels, since all are evaluated on the same test problems. A comparison is "
    "flagged when |t| exceeds Student's 97.5% point with S - 1 degrees of freedom (4.30 at three seeds, 2.78 at "
    "five): a 95% prediction interval for a new seed. If M0's own variation were nothing, about 5% of comparisons "
    f"would flag by chance. Rule, stated before the replicate's comparisons were computed: {FLAG_COUNT} or more "
    "flagged means M0's variation is not negligible, and the claims' intervals, which hold M0 fixed, understate "
    "what a reproduction on another box would see. Beside it, the naive z, (replicate - pooled) over the root of "
    "the sum of both intervals' squared standard errors (half-width / 1.96): it counts the problem part twice. The "
    "seed and seed×problem SDs are `hsir.power`'s. t, its critical value and replicate - mean use the problems "
    "every side evaluated (n); each side's own difference and interval, as the claims file gives it, all of its "
    "own. No verdict of the claims file depends on this file.")


def p_at_least(k: int, m: int, p: float = 0.05) -> float:
    """P(at least ``k`` of ``m`` independent comparisons flag at rate ``p``): how often the rule fires by chance."""
    return 1.0 - sum(math.comb(m, i) * p**i * (1 - p) ** (m - i) for i in range(k))


TINY = 1e-12  # below this a difference or a spread is 0 (float noise of equal seeds' means)


def new_seed_t(d: np.ndarray, r: np.ndarray) -> tuple[float, float, float, float]:
    """``TEST``'s statistic: ``d`` the seeds' paired differences (seeds × problems), ``r`` the replicate's on the same
    problems. Returns (replicate - pooled, the standard deviation of that gap for a seed like the others, t, and
    the two-sided 95% critical value of t with S - 1 degrees of freedom)."""
    from scipy.stats import t as student

    means = np.asarray(d, dtype=float).mean(axis=1)
    if means.size < 2:
        raise ValueError("new_seed_t: two seeds at least, to know how far a seed's difference moves")
    gap = float(np.mean(r) - means.mean())
    sd = float(np.std(means, ddof=1)) * math.sqrt(1 + 1 / means.size)
    return gap, sd, _ratio(gap, sd), float(student.ppf(0.975, means.size - 1))


def _ratio(gap: float, sd: float) -> float:
    """gap / sd, with float noise read as 0: equal gaps give 0, a gap against no spread an infinite ratio."""
    if abs(gap) < TINY:
        return 0.0
    return gap / sd if sd >= TINY else math.copysign(math.inf, gap)


def read_both(roots: Mapping, replicate: Path, iteration: int = 1, claims: Sequence[Claim] = CLAIMS):
    """The evaluated rounds (``read_rounds``) of the claim rows and M0, of the seeds and of the replicate (seed 0)."""
    methods = {M0, *claim_methods(claims)}
    return read_rounds(roots, methods, iteration, None), read_rounds({0: Path(replicate)}, methods, iteration, None)


def replicate_table(roots: Mapping, replicate: Path, iteration: int = 1, claims: Sequence[Claim] = CLAIMS,
                    margin: float = ACC_MARGIN, n_boot: int = 2000, seed: int = 0, read: tuple | None = None):
    """One row per accuracy comparison that the seeds of ``roots`` (two or more) and ``replicate`` (a run root or an
    archived root) both ran (a DataFrame), with ``TEST``'s t and flag; the verdict each side would get alone.
    ``read``: ``read_both``'s rounds, for a caller that has them."""
    import pandas as pd

    runs, rep = read or read_both(roots, replicate, iteration, claims)
    rep_root = {0: Path(replicate)}
    rows = []
    for claim, comp, used, pooled in seeded_accuracy_comparisons(runs, roots, claims, n_boot, seed):
        _, alone = pool_pair(rep, rep_root, comp.a, comp.b, n_boot, seed)
        if alone is None:
            continue
        pairs = [(runs[s, comp.a].correct, runs[s, comp.b].correct) for s in used]
        rep_pair = [(rep[0, comp.a].correct, rep[0, comp.b].correct)]
        try:
            qids = common_problems(pairs, rep_pair)
        except ValueError:  # no problem evaluated on both sides: nothing to compare
            continue
        d = paired_matrix(pairs, qids)
        gap, sd, z, crit = new_seed_t(d, paired_matrix(rep_pair, qids)[0])
        c = components(d)
        se = [(p["diff_ci95"][1] - p["diff_ci95"][0]) / 2 / Z95 for p in (pooled, alone)]
        naive = _ratio(alone["diff"] - pooled["diff"], math.hypot(*se))
        m = comp.margin(margin)
        rows.append({
            "claim": claim.key, "comparison": comp.text(), "seeds": ", ".join(map(str, used)), "n": len(qids),
            "seeds pooled [95% CI]": interval_text(pooled), "replicate [95% CI]": interval_text(alone),
            "replicate - pooled (pts)": f"{gap * 100:+.1f}", "SD of a new seed (pts)": f"{sd * 100:.1f}",
            "flags beyond (pts)": f"±{crit * sd * 100:.1f}",
            "t": f"{z:+.2f}", "critical |t|": f"{crit:.2f}", "flagged": "yes" if abs(z) > crit else "no",
            "SD (pts): seed / seed×problem": f"{100 * math.sqrt(c.seed):.1f} / {100 * math.sqrt(c.interaction):.1f}",
            "naive z": f"{naive:+.2f}",
            "verdict: seeds / replicate alone": f"{verdict(pooled['diff'], pooled['diff_ci95'], comp.direction, m)}"
            f" / {verdict(alone['diff'], alone['diff_ci95'], comp.direction, m)}"})
    return pd.DataFrame(rows)


def rows_table(roots: Mapping, replicate: Path, iteration: int = 1, claims: Sequence[Claim] = CLAIMS,
               read: tuple | None = None):
    """Each claim row's accuracy on the replicate beside the seeds' (each seed's, their range) and M0's."""
    import pandas as pd

    runs, rep = read or read_both(roots, replicate, iteration, claims)
    rows = []
    for m in [M0, *sorted(claim_methods(claims))]:
        accs = {s: 100 * float(np.mean(list(runs[s, m].correct.values()))) for s in roots if (s, m) in runs}
        if (0, m) not in rep or not accs:
            continue
        mine, mean = 100 * float(np.mean(list(rep[0, m].correct.values()))), float(np.mean(list(accs.values())))
        rows.append({"row": m, "seeds": ", ".join(map(str, accs)),
                     "accuracy % per seed": ", ".join(f"{a:.1f}" for a in accs.values()),
                     "seeds' mean": f"{mean:.1f}", "replicate": f"{mine:.1f}",
                     "replicate - mean (pts)": f"{mine - mean:+.1f}",
                     "outside the seeds' range": "yes" if not min(accs.values()) <= mine <= max(accs.values())
                     else "no"})
    return pd.DataFrame(rows)


def write_replicate(roots: Mapping, replicate: Path, out: str | Path, iteration: int = 1, command: str | None = None,
                    note: str = "", n_boot: int = 2000) -> str:
    """The replicate file (markdown), written atomically to ``out``: ``TEST``, its count, and both tables."""
    seeds_m0, rep_m0 = {m0_weights(Path(r)) for r in roots.values()}, m0_weights(Path(replicate))
    if Path(replicate).resolve() in {Path(r).resolve() for r in roots.values()} or (
            rep_m0 is not None and rep_m0 in seeds_m0):
        raise ValueError(f"{replicate} shares its M0 (weights digest {rep_m0}) with the seeds "
                         f"({', '.join(map(str, roots.values()))}): a replicate needs an M0 of its own")
    read = read_both(roots, replicate, iteration)
    table = replicate_table(roots, replicate, iteration, n_boot=n_boot, read=read)
    flagged = int((table["flagged"] == "yes").sum()) if len(table) else 0
    where = ", ".join(f"seed {s}: `{kit_path(r)}`" for s, r in roots.items())
    m0 = f"the seeds: {', '.join(sorted(map(str, seeds_m0)))}; the replicate: {rep_m0}"
    if len(table) < FLAG_COUNT:
        verdict_line = (f"{flagged} of {len(table)} accuracy comparisons flagged: fewer comparisons than the rule's "
                        f"{FLAG_COUNT}, so it cannot decide.")
    else:
        verdict_line = (f"**{flagged} of {len(table)}** accuracy comparisons flagged; by the rule ({FLAG_COUNT} or "
                        "more) " + ("M0's own variation is **not negligible**" if flagged >= FLAG_COUNT else
                                    "M0's own variation **does not show**")
                        + ". With no M0 variation the rule would fire by chance with probability "
                          f"{p_at_least(FLAG_COUNT, len(table)):.2f} (independent comparisons; they are not).")
    rows = rows_table(roots, replicate, iteration, read=read)
    sections = [
        "# Another M0: the claims' comparisons on a run that trained its own",
        f"The seeds ({where}) against the replicate `{kit_path(replicate)}`"
        + (f", by `{command}`" if command else "") + f" ({time.strftime('%Y-%m-%d')}, commit {commit() or 'unknown'}); "
        f"round {iteration}. M0 weights digests: {m0}." + (f" {note}" if note else ""),
        "## Test", TEST, "## Result", verdict_line,
        "## Per comparison", markdown(table) if len(table) else "No accuracy comparison ran on two seeds or more and "
        "on the replicate.",
        "## Per row: accuracy", markdown(rows) if len(rows) else "No claim row ran on both sides.",
    ]
    text = "\n\n".join(s for s in sections if s) + "\n"
    write_text(out, text)
    return text
