"""A verdict per claim of the paper, from the run folders of several seeds.

Each claim of the paper (Fig. 2, Tables 1a, 1b, 3, 5, 7) is tested as one or more comparisons of two rows (A vs B,
the same test problems): the difference A - B in accuracy or in mean output tokens, pooled over the seeds that ran
both rows, with a bootstrap interval that resamples seeds and test problems (``pooled_paired_difference``). A
stated rule (``RULE``, printed at the top of the claims file) turns each interval into holds / contradicted /
unresolved at this size, and a claim's comparisons into the claim's verdict. The file ends with every claim row, and
the oracle, against M0 (``against_m0``): a ranking means something only where the rows move M0 at all. Nothing here
runs a model: the claims file is rebuilt from run folders alone, like ``hsir.results``' tables.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hsir import paper
from hsir.config import kit_path
from hsir.methods import M0, METHODS  # every seed's rows start from M0's round (hsir.seeds shares M0)
from hsir.rounds import eval_rows, markdown, operation_gaps
from hsir.runs import commit, write_text

HOLDS, CONTRADICTED, UNRESOLVED, NOT_RUN = "holds", "contradicted", "unresolved at this size", "not run"
ACC_MARGIN = 0.02  # non-inferiority margin of "A ≥ B" in accuracy (2 points), stated before any run
LEVEL = 0.95
DIRECTIONS = (">", "<", ">=", "<=")
METRICS = ("accuracy", "tokens")
STEPS_A, STEPS_B = "A fewer / more steps than ops (%)", "B fewer / more steps than ops (%)"
PAPER_DIFF, PAPER_SEEN = "the paper's A - B", "the paper's A - B in our interval"


def rule_text(margin: float = ACC_MARGIN) -> str:
    """The verdict rule as the claims file states it (``margin``: the non-inferiority margin, a fraction)."""
    pts = f"{margin * 100:.1f}"
    return (
        "Each claim is tested as one or more comparisons of two rows, A vs B, on the same test problems. For each "
        "comparison, d = A - B (accuracy in points, or mean output tokens) is each seed's paired difference "
        "averaged over the seeds that ran both rows; its 95% interval is a bootstrap that resamples seeds and test "
        "problems (`hsir.claims.pooled_paired_difference`). A comparison **holds** when "
        "the interval lies entirely on the paper's side of its threshold, is **contradicted** when it lies "
        "entirely on the other side, and is **unresolved at this size** otherwise (an interval touching the "
        "threshold is unresolved). Thresholds: 0 for \"A > B\" and \"A < B\" in accuracy; "
        f"-{pts} points for \"A ≥ B\" in accuracy (non-inferiority: it holds when A is at most {pts} points worse "
        f"than B with 95% confidence, and is contradicted when A is more than {pts} points worse); 0 tokens for "
        "\"fewer tokens\". A claim of several comparisons (a chain a ≥ b ≥ c, or accuracy together with tokens, "
        "as in \"≥ with fewer tokens\") holds when every comparison holds, is contradicted when any comparison is "
        "contradicted, is not run when a comparison's rows are missing from every run root and none is "
        "contradicted, and is unresolved at this size otherwise."
    )


RULE = rule_text()


def threshold(direction: str, margin: float = 0.0) -> tuple[float, bool]:
    """The threshold of a comparison and whether the paper's side lies above it. ``>``/``<``: A beats / trails B
    by more than ``margin``; ``>=``/``<=``: A is not worse / not more than B by more than ``margin`` (the
    non-inferiority reading)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}; valid: {DIRECTIONS}")
    return {">": (margin, True), "<": (-margin, False), ">=": (-margin, True), "<=": (margin, False)}[direction]


def verdict(diff: float, ci: Sequence[float], direction: str, margin: float = 0.0) -> str:
    """The rule (``RULE``) for one comparison: ``holds`` when the interval ``ci`` of d = A - B lies entirely on the
    paper's side of the threshold (``threshold``), ``contradicted`` when entirely on the other side, else
    ``unresolved at this size``; ``not run`` when there is no difference (NaN)."""
    lo, hi = ci
    if any(np.isnan(v) for v in (diff, lo, hi)):
        return NOT_RUN
    if lo > hi:
        raise ValueError(f"interval [{lo}, {hi}] is reversed")
    t, above = threshold(direction, margin)
    if (lo > t) if above else (hi < t):
        return HOLDS
    if (hi < t) if above else (lo > t):
        return CONTRADICTED
    return UNRESOLVED


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its comparisons' (the rule's last sentence): a conjunction fails with any part."""
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if NOT_RUN in verdicts:
        return NOT_RUN
    return HOLDS if verdicts and all(v == HOLDS for v in verdicts) else UNRESOLVED


def common_problems(*per_seed: Sequence[tuple[Mapping, Mapping]]) -> list[str]:
    """The problems (sorted qids) that every (A, B) pair of every list holds: each seed's difference is paired."""
    qids = sorted(set.intersection(*(set(a.keys() & b.keys()) for pairs in per_seed for a, b in pairs)))
    if not qids:
        raise ValueError("no problem is evaluated for both rows in every seed")
    return qids


def paired_matrix(pairs: Sequence[tuple[Mapping, Mapping]], qids: Sequence[str]) -> np.ndarray:
    """Seeds × problems of A - B on ``qids`` (accuracy: 1, 0, -1; or tokens)."""
    return np.array([[float(a[q]) - float(b[q]) for q in qids] for a, b in pairs])


def pooled_paired_difference(pairs: Sequence[tuple[Mapping[str, bool], Mapping[str, bool]]],
                             tokens: Sequence[tuple[Mapping[str, float], Mapping[str, float]]] | None = None,
                             n_boot: int = 2000, seed: int = 0, level: float = LEVEL) -> dict:
    """Accuracy of A minus B pooled over seeds, with an interval that resamples seeds and problems.

    ``pairs``: one entry per seed, (qid -> correct of A, qid -> correct of B), as ``hsir.rounds.round_correct``
    reads them; ``tokens`` (optional): the same per seed with qid -> output tokens. Pooling, as the claims file
    states it:

    - problems: those every seed evaluated for both rows (sorted qids, as ``evaluate.paired_difference``), so each
      seed's difference is paired (A and B on the same problems) and every seed weighs the same;
    - the difference: the mean over seeds of each seed's paired difference, acc_A - acc_B;
    - the interval: a percentile bootstrap with ``n_boot`` replicates, each drawing test problems with replacement
      and, independently, seeds with replacement, and averaging the per-problem differences of the drawn problems
      over the drawn seeds. The problem draw is one per replicate, shared by A and B and by every seed: all seeds
      are evaluated on the same test problems, so the problem-sampling noise is common to them, and drawing it
      again per seed would count it once per seed and narrow the interval by the square root of the seed count.
      The seed draw adds what varies between seeds (sampling and training noise): the interval widens with the
      spread of the seeds' differences. Identical seeds, or one seed, give exactly ``evaluate.paired_difference``'s
      interval (the problem draw comes first from the same generator). With 3 seeds the seed draw is coarse and
      understates between-seed variance by about a third; the interval is the kit's stated approximation, not an
      exact one.

    Returns ``n`` (problems), ``seeds`` (count), ``diff`` and ``diff_ci95``, ``per_seed`` (each seed's paired
    difference), ``a_only``/``b_only`` per seed (discordant problems), and with ``tokens`` ``tokens_diff``,
    ``tokens_ci95`` and ``tokens_per_seed`` (mean output tokens of A minus B, pooled the same way)."""
    if not pairs:
        raise ValueError("pooled_paired_difference: no seeds")
    if tokens is not None and len(tokens) != len(pairs):
        raise ValueError(f"pooled_paired_difference: {len(tokens)} token entries for {len(pairs)} seeds")
    qids = common_problems(pairs, tokens or [])
    acc = paired_matrix(pairs, qids)
    rng = np.random.default_rng(seed)
    problems = rng.integers(0, len(qids), size=(n_boot, len(qids)))  # first, as evaluate.bootstrap_ci draws
    seeds = rng.integers(0, len(pairs), size=(n_boot, len(pairs)))
    weights = np.stack([np.bincount(row, minlength=len(pairs)) for row in seeds]) / len(pairs)

    def pooled(d: np.ndarray) -> tuple[float, list[float], list[float]]:
        boot = np.take_along_axis(weights @ d, problems, axis=1).mean(axis=1)
        lo, hi = np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])
        return float(d.mean()), [float(lo), float(hi)], [float(v) for v in d.mean(axis=1)]

    diff, ci, per_seed = pooled(acc)
    out = {"n": len(qids), "seeds": len(pairs), "diff": diff, "diff_ci95": ci, "per_seed": per_seed,
           "a_only": [int((d > 0).sum()) for d in acc], "b_only": [int((d < 0).sum()) for d in acc]}
    if tokens is not None:
        tok = paired_matrix(tokens, qids)
        out["tokens_diff"], out["tokens_ci95"], out["tokens_per_seed"] = pooled(tok)
    return out


@dataclass(frozen=True)
class Comparison:
    """A vs B in one metric: ``direction`` is the paper's (A > B, A ≥ B, ...); for tokens, "<" is "fewer"."""

    a: str
    b: str
    direction: str
    metric: str = "accuracy"

    def __post_init__(self):
        threshold(self.direction)
        if self.metric not in METRICS:
            raise ValueError(f"metric {self.metric!r}; valid: {METRICS}")

    def margin(self, margin: float = ACC_MARGIN) -> float:
        """The margin this comparison's threshold uses: ``margin`` for "≥"/"≤" in accuracy (non-inferiority), else 0."""
        return margin if self.metric == "accuracy" and self.direction in (">=", "<=") else 0.0

    def text(self) -> str:
        sign = {">": ">", "<": "<", ">=": "≥", "<=": "≤"}[self.direction]
        what = "fewer tokens than" if (self.metric, self.direction) == ("tokens", "<") else f"{sign}"
        return f"{self.a} {what} {self.b}" + (" (accuracy)" if self.metric == "accuracy" else "")


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: where (``key``), the paper's words (``sentence``), how it is tested (``tested``,
    ``comparisons``)."""

    key: str
    tested: str
    sentence: str
    comparisons: tuple[Comparison, ...]


C = Comparison
CLAIMS: tuple[Claim, ...] = (
    Claim("Fig. 2 (order)", "low-Eq.3 selection < random < high-Eq.3 selection, in accuracy",
          "As seen, compared to using random solutions, self-training on solutions with low scores indeed results in "
          "more inference overhead and lower accuracy, while using the solutions with high scores can effectively "
          "alleviate this problem.",
          (C("select-low-readiv", "select-random", "<"), C("select-high-readiv", "select-random", ">"))),
    Claim("Fig. 2 (shortest)", "shortest selection < random selection, in accuracy",
          "Notably, although self-training on shorter solutions is also beneficial to improve reasoning efficiency, "
          "it would lead to performance degradation.",
          (C("select-shortest", "select-random", "<"),)),
    Claim("Table 1a", "HSIR-SFT ≥ ReST-EM ≥ STaR in accuracy, HSIR-SFT with fewer tokens than ReST-EM",
          "HSIR outperforms the other baseline methods across all post-training settings. … By sampling more "
          "diverse solutions, RFT and ReSTEM alleviate this problem, indicating the importance of self-training "
          "with diverse reasoning data. … Owing to our InDiv metric, we can filter these overthinking solutions and "
          "effectively improve reasoning efficiency by reducing up to 42.4% output tokens.",
          (C("HSIR-SFT", "ReST-EM", ">="), C("ReST-EM", "STaR", ">="), C("HSIR-SFT", "ReST-EM", "<", "tokens"))),
    Claim("Table 1b", "HSIR-DPO > IRPO in accuracy",
          "For instance, our HSIR-DPO outperforms the IRPO by a clear margin, i.e., bringing +5.35% average "
          "performance gains.",
          (C("HSIR-DPO", "IRPO", ">"),)),
    Claim("Table 3 (a)", "VeriExit > answer-driven extra sampling, in accuracy (no filter)",
          "Moreover, our proposed methods consistently perform better than their counterparts. For instance, "
          "VeriExit outperforms the “-w Answer-driven” by 2.14% average performance gains.",
          (C("VeriExit-only", "answer-driven", ">"),)),
    Claim("Table 3 (b)", "InDiv filter > length-driven filter, in accuracy (no extra sampling)",
          "Moreover, our proposed methods consistently perform better than their counterparts.",
          (C("InDiv-only", "length-driven", ">"),)),
    # not in issue 26's list, but a sentence of the paper's Table 3 paragraph: full HSIR against each half alone
    Claim("Table 3 (c)", "full HSIR-SFT > VeriExit-only (InDiv removed) and > InDiv-only (VeriExit removed), "
          "in accuracy",
          "Compared to the full HSIR, removing VeriExit or InDiv results in performance degradation, indicating "
          "their effectiveness.",
          (C("HSIR-SFT", "VeriExit-only", ">"), C("HSIR-SFT", "InDiv-only", ">"))),
    Claim("Table 5", "H-GRPO ≥ GRPO in accuracy, with fewer tokens",
          "Conversely, by optimizing the intermediate reasoning process, our H-GRPO can smoothly reduce repetitive "
          "and redundant thinking and thus achieve better performance. … Despite all this, our H-GRPO can further "
          "reduce the inference overhead, while achieving better reasoning performance.",
          (C("H-GRPO", "GRPO", ">="), C("H-GRPO", "GRPO", "<", "tokens"))),
    Claim("Table 7", "HSIR-SFT+H-GRPO > HSIR-SFT and > H-GRPO, in accuracy",
          "The combination consistently outperforms either method alone across all model scales, confirming that "
          "the two approaches are complementary.",
          (C("HSIR-SFT+H-GRPO", "HSIR-SFT", ">"), C("HSIR-SFT+H-GRPO", "H-GRPO", ">"))),
)


def paper_difference(claim: Claim, comp: Comparison) -> float | None:
    """A - B in accuracy points from the paper's own printed numbers (``paper.CLAIM_SCORES``), or None where the paper
    prints no value for a row, or the comparison is in tokens (the paper's outputs are ten times longer). A yardstick
    of size, not a prediction for another model: it says whether our interval would have seen an effect as large
    as the paper's, it takes no part in the verdict."""
    score = paper.CLAIM_SCORES.get(claim.key.split(" (")[0])
    if score is None or comp.metric != "accuracy":
        return None
    try:
        return round(score(comp.a) - score(comp.b), 2)
    except KeyError:
        return None


def pool_pair(runs: Mapping, roots: Mapping, a: str, b: str, n_boot: int = 2000, seed: int = 0) -> tuple[list, dict | None]:
    """The seeds of ``roots`` whose rounds (``runs``, ``read_rounds``) hold both rows, and A - B in accuracy and
    tokens pooled over them (``pooled_paired_difference``); None in place of the latter when no seed ran both."""
    used = [s for s in roots if (s, a) in runs and (s, b) in runs]
    if not used:
        return used, None
    return used, pooled_paired_difference([(runs[s, a].correct, runs[s, b].correct) for s in used],
                                          [(runs[s, a].tokens, runs[s, b].tokens) for s in used], n_boot, seed)


def _claim_rows(claims: Sequence[Claim]) -> list[str]:
    """The methods the claims compare, each once, in the claims' order."""
    return list(dict.fromkeys(m for c in claims for cmp in c.comparisons for m in (cmp.a, cmp.b)))


def claim_methods(claims: Sequence[Claim] = CLAIMS) -> set[str]:
    """The methods the claims compare: the rows that run on every seed (``hsir.seeds``)."""
    return set(_claim_rows(claims))


@dataclass
class _Row:
    correct: dict[str, bool]
    tokens: dict[str, float]
    gaps: dict


def read_rounds(roots: Mapping, methods: set[str], iteration: int, n_ops: Mapping[str, int] | None,
               only: Collection[str] | None = None) -> dict:
    """(seed, method) -> its evaluated round, for every root and method that has one; ``only``: these test problems
    (qids) alone, the rest of each evaluation left out."""
    keep = (lambda q: True) if only is None else set(only).__contains__
    ops = {q: n for q, n in (n_ops or {}).items() if keep(q)}
    out = {}
    for s, root in roots.items():
        for m in methods:
            it = Path(root) / "methods" / m / f"iter_{iteration}"
            if (it / "metrics.json").exists():
                rows = [r for r in eval_rows(it) if keep(r["qid"])]
                out[s, m] = _Row({r["qid"]: bool(r["correct"]) for r in rows},
                                 {r["qid"]: float(r["n_tokens"]) for r in rows},
                                 operation_gaps(it, ops) if ops else {})
    return out


def _gap_cell(runs: list[_Row]) -> str:
    """Mean over seeds of the shares of solutions with fewer / more computation steps than operations."""
    gaps = [r.gaps for r in runs if r.gaps]
    if not gaps:
        return ""
    fewer = np.mean([g["fewer steps than ops (%)"] for g in gaps])
    more = np.mean([g["more steps than ops (%)"] for g in gaps])
    return f"{fewer:.1f} / {more:.1f}"


def _signed(v: float, scale: float) -> str:
    return f"{v * scale:+.1f}"


def claims_table(roots: Mapping, n_ops: Mapping[str, int] | None = None, iteration: int = 1,
                 margin: float = ACC_MARGIN, claims: Sequence[Claim] = CLAIMS, n_boot: int = 2000,
                 seed: int = 0, runs: Mapping | None = None):
    """One row per comparison of every claim (a DataFrame), from run folders alone.

    ``roots``: seed -> run root (``<root>/methods/<method>/iter_<iteration>/`` with ``metrics.json`` and its
    ``eval_<task>.jsonl``); a comparison pools the seeds whose root has both rows. ``n_ops`` (qid -> operations;
    the synthetic testbed's test split) adds the truth-known columns: each row's shares of solutions with fewer /
    more computation steps than its problem's operations, averaged over those seeds. ``margin``: the
    non-inferiority margin of "≥" comparisons in accuracy. Columns: ``claim``, ``the paper says``, ``tested as``,
    ``comparison``, ``a``, ``b``, ``seeds``, ``n``, ``diff``/``lo``/``hi`` (accuracy as a fraction, tokens as tokens),
    ``difference [95% CI]`` and ``per seed`` (points or tokens), ``A / B fewer / more steps than ops (%)``,
    ``verdict`` (the comparison's) and ``claim verdict`` (``combine`` of its claim's). ``runs``: the rounds
    already read (``read_rounds``), so that a caller building several tables reads each evaluation file once."""
    import pandas as pd

    if runs is None:
        runs = read_rounds(roots, _claim_rows(claims), iteration, n_ops)
    rows = []
    for claim in claims:
        part = []
        for comp in claim.comparisons:
            used, pooled = pool_pair(runs, roots, comp.a, comp.b, n_boot, seed)
            row = {"claim": claim.key, "the paper says": claim.sentence, "tested as": claim.tested,
                   "comparison": comp.text(), "a": comp.a, "b": comp.b, "seeds": ", ".join(map(str, used)),
                   "n": None, "diff": float("nan"),
                   "lo": float("nan"), "hi": float("nan"), "difference [95% CI]": NOT_RUN, "per seed": ""}
            if pooled:
                a, b = [runs[s, comp.a] for s in used], [runs[s, comp.b] for s in used]
                if comp.metric == "accuracy":
                    d, (lo, hi), per, scale, unit = pooled["diff"], pooled["diff_ci95"], pooled["per_seed"], 100, " pts"
                else:
                    d, (lo, hi), per = pooled["tokens_diff"], pooled["tokens_ci95"], pooled["tokens_per_seed"]
                    scale, unit = 1, " tokens"
                row |= {"n": pooled["n"], "diff": d, "lo": lo, "hi": hi,
                        "difference [95% CI]": f"{_signed(d, scale)}{unit} [{lo * scale:.1f}, {hi * scale:.1f}]",
                        "per seed": ", ".join(f"{s}: {_signed(v, scale)}" for s, v in zip(used, per, strict=True))}
                if n_ops:
                    row |= {STEPS_A: _gap_cell(a), STEPS_B: _gap_cell(b)}
            row["verdict"] = verdict(row["diff"], (row["lo"], row["hi"]), comp.direction, comp.margin(margin))
            size = paper_difference(claim, comp)
            row[PAPER_DIFF] = (f"{size:+.2f} pts" if size is not None else
                               "not compared (tokens)" if comp.metric == "tokens" else "not printed")
            row[PAPER_SEEN] = "" if size is None or np.isnan(row["lo"]) else (
                "inside" if row["lo"] * 100 <= size <= row["hi"] * 100 else "excluded")
            part.append(row)
        for row in part:
            row["claim verdict"] = combine([r["verdict"] for r in part])
        rows += part
    table = pd.DataFrame(rows)
    table["n"] = table["n"].astype("Int64")  # blank where not run
    return table


ORACLE = "SFT-Oracle"  # the room any self-improvement has: M0 trained on D_u's gold traces too
ABOVE, BELOW, WITHIN = "above M0", "below M0", "neither (the interval spans 0)"


NUMBERS = ["n_seeds", "diff", "lo", "hi"]  # against_m0's columns for code, not for the printed tables


def against_m0(roots: Mapping, iteration: int = 1, claims: Sequence[Claim] = CLAIMS, n_boot: int = 2000,
               seed: int = 0, runs: Mapping | None = None, rows: Sequence[str] | None = None):
    """Each claim row, and the oracle, against M0 (a DataFrame): does the setting leave room, and do the rows move?

    A claim ranks rows; it says something only where the rows move M0 at all (issue 26: the oracle must clearly
    beat M0, ReST-EM must beat it). Each row is paired with M0 on the same problems, pooled over the seeds that ran
    it, as ``pooled_paired_difference`` pools a comparison. M0 is shared by the seeds (``hsir.seeds``) and evaluated
    greedily once, so its round is read from the first root that has it (a seed root links it, an archived seed
    root has none). ``vs M0``: above / below M0 when the interval excludes 0, neither otherwise. ``rows``: other
    rows than the oracle and the claims' (a paper table's, ``hsir.results.write_tables``), M0 itself left out.
    Columns: ``row``, ``seeds``, ``n``, ``accuracy % (per seed)``, ``vs M0 (pts) [95% CI]``, ``per seed``,
    ``mean tokens``, ``tokens vs M0``, ``vs M0``, and the numbers behind them (``NUMBERS``: ``n_seeds``, and
    ``diff``/``lo``/``hi`` as fractions); ``attrs["m0 accuracy %"]``. ``runs``: as in ``claims_table``."""
    import pandas as pd

    order = [ORACLE, *_claim_rows(claims)] if rows is None else [m for m in dict.fromkeys(rows) if m != M0]
    if runs is None:
        runs = read_rounds(roots, {M0, *order}, iteration, None)
    m0 = next((runs[s, M0] for s in roots if (s, M0) in runs), None)
    rows = []
    for m in order:
        used = [s for s in roots if (s, m) in runs]
        if m0 is None or not used:
            continue
        pooled = pooled_paired_difference([(runs[s, m].correct, m0.correct) for s in used],
                                          [(runs[s, m].tokens, m0.tokens) for s in used], n_boot, seed)
        d, (lo, hi) = pooled["diff"], pooled["diff_ci95"]
        accs = [100 * np.mean(list(runs[s, m].correct.values())) for s in used]
        rows.append({"row": m, "seeds": ", ".join(map(str, used)), "n": pooled["n"],
                     "accuracy % (per seed)": f"{np.mean(accs):.1f} ({', '.join(f'{a:.1f}' for a in accs)})",
                     "vs M0 (pts) [95% CI]": f"{_signed(d, 100)} [{lo * 100:.1f}, {hi * 100:.1f}]",
                     "per seed": ", ".join(f"{s}: {_signed(v, 100)}" for s, v in zip(used, pooled["per_seed"],
                                                                                     strict=True)),
                     "mean tokens": f"{np.mean([np.mean(list(runs[s, m].tokens.values())) for s in used]):.1f}",
                     "tokens vs M0": _signed(pooled["tokens_diff"], 1),
                     "vs M0": ABOVE if lo > 0 else BELOW if hi < 0 else WITHIN,
                     "n_seeds": len(used), "diff": d, "lo": lo, "hi": hi})
    out = pd.DataFrame(rows)
    if m0 is not None:
        out.attrs["m0 accuracy %"] = 100 * np.mean(list(m0.correct.values()))
    return out


def claims_summary(table):
    """One row per claim: the paper's sentence, how it is tested, each comparison's difference with its interval
    and verdict, the rows' truth-known step columns, and the claim's verdict."""
    import pandas as pd

    out = []
    for key, part in table.groupby("claim", sort=False):
        first = part.iloc[0]
        diffs = "<br>".join(f"{r['comparison']}: " + (NOT_RUN if r["verdict"] == NOT_RUN else
                                                      f"{r['difference [95% CI]']} ({r['verdict']})")
                            for _, r in part.iterrows())
        steps = {}  # method -> its cell, each method once
        for _, r in part.iterrows():
            if STEPS_A in r and r["verdict"] != NOT_RUN:
                steps |= {r["a"]: r[STEPS_A], r["b"]: r[STEPS_B]}
        seeds = sorted({s for v in part["seeds"] for s in v.split(", ") if s})
        out.append({"claim": key, "the paper says": first["the paper says"], "tested as": first["tested as"],
                    "our difference [95% CI]": diffs,
                    "fewer / more steps than ops (%)": "<br>".join(f"{m}: {v}" for m, v in steps.items() if v),
                    "seeds": ", ".join(seeds), "verdict": first["claim verdict"]})
    return pd.DataFrame(out)


def seed_invariant_rows(runs: Mapping, rows: Sequence[str]) -> list[str]:
    """The ``rows`` read (``runs``: (seed, row) -> its round) on several seeds whose training data a seed does not
    change: greedy sampling (``hsir.methods``, STaR) from the M0 the seeds share. Their seeds measure training noise
    alone, not sampling."""
    return [m for m in dict.fromkeys(rows) if m in METHODS and METHODS[m].sampling == "greedy"
            and sum(row == m for _, row in runs) > 1]


def write_claims(roots: Mapping, out: str | Path, n_ops: Mapping[str, int] | None = None, iteration: int = 1,
                 margin: float = ACC_MARGIN, command: str | None = None, n_boot: int = 2000, note: str = "",
                 only: Collection[str] | None = None) -> str:
    """The claims file (markdown), written atomically to ``out``: the rule, one row per claim with its verdict,
    then one row per comparison with each seed's value. ``command``: what the file says rebuilds it; ``note``: a
    sentence added to its header (the M0 behind the seeds, ``hsir.archive.m0_note``); ``only``: the test problems
    (qids) to read, e.g. the part of a grown test set a first look had not seen (say so in ``note``)."""
    runs = read_rounds(roots, {M0, ORACLE, *_claim_rows(CLAIMS)}, iteration, n_ops, only)  # each file read once
    table = claims_table(roots, n_ops, iteration, margin, n_boot=n_boot, runs=runs)
    summary = claims_summary(table)
    counts = summary["verdict"].value_counts()
    tally = ", ".join(f"{counts.get(v, 0)} {v}" for v in (HOLDS, CONTRADICTED, UNRESOLVED, NOT_RUN))
    where = ", ".join(f"seed {s}: `{kit_path(r)}`" for s, r in roots.items())
    detail_cols = ["claim", "comparison", "difference [95% CI]", "per seed", "seeds", "n", STEPS_A, STEPS_B, "verdict",
                   PAPER_DIFF, PAPER_SEEN]
    seen = table[PAPER_SEEN].value_counts()
    excluded, inside = seen.get("excluded", 0), seen.get("inside", 0)
    sizes = (f"Of the {excluded + inside} comparisons run whose difference the paper prints, {excluded} exclude it "
             f"from their interval and {inside} hold it (the last two columns of the table per comparison).")
    parts = [
        "# The paper's claims, tested",
        f"Rebuilt from the evaluated rounds of each seed ({where})" + (f" by `{command}`" if command else "")
        + f" ({time.strftime('%Y-%m-%d')}, commit {commit() or 'unknown'}); round {iteration} of every row. "
        f"Verdicts: {tally}. Differences are A - B: accuracy in points, tokens in mean output tokens. On the "
        "synthetic testbed the step columns give the shares of a row's test solutions with fewer / more "
        "computation steps than their problem's operations (skipped / extra operations), averaged over seeds."
        + (f" {note}" if note else ""),
        "## Rule", rule_text(margin),
        "Beside the verdict, and no part of it: the paper's own A - B in accuracy, from its printed numbers "
        "(`hsir.paper.CLAIM_SCORES`: Table 1's Overall after one round, Table 3's mean of its 1.5B MedQA and GSM8K "
        "cells, Table 5's Overall, Table 7's mean over its three GSM8K scales; Fig. 2 prints no values), and whether "
        "our interval holds it. Other models, ten times longer outputs and accuracies near 70% against ours near "
        "15%: a yardstick of size, not a prediction. An unresolved comparison whose interval excludes the paper's "
        "difference says that an effect as large as the paper's did not show here; one that holds it says this size "
        f"could not tell. {sizes} How many seeds and test problems each comparison would need to resolve an effect "
        "of a stated size: `power.md` beside this file (`python -m hsir.results --power`, `hsir.power`).",
        "## Verdict per claim", markdown(summary),
        "## Comparisons, per seed", markdown(table[[c for c in detail_cols if c in table]]),
    ]
    if same_candidates := seed_invariant_rows(runs, _claim_rows(CLAIMS)):
        parts.append(f"{', '.join(same_candidates)}: greedy from M0, so the seeds that share an M0 train on the same "
                     "candidates and differ only in the order of the training rows; its spread between them is "
                     "training noise alone.")
    room = against_m0(roots, iteration, n_boot=n_boot, runs=runs)
    if len(room):
        parts += ["## Each row against M0",
                  f"Whether the setting leaves room and the rows move at all: each claim row, and {ORACLE} (M0 "
                  f"trained on D_u's gold traces as well), minus M0 ({M0}, {room.attrs['m0 accuracy %']:.1f}%, "
                  "shared by the seeds), paired and pooled over the seeds as above; above / below M0 when the "
                  "interval excludes 0.",
                  markdown(room.drop(columns=NUMBERS))]
    text = "\n\n".join(parts) + "\n"
    write_text(out, text)
    return text
