"""The methods of the paper as one table of data (DESIGN §3): the loop reads an entry, it does not subclass one.

Each entry names how a method builds its training data from the current model M_{t-1}:

- ``sampling``: ``none`` (no self-generated data), ``K`` (K samples per query at the sampling temperature),
  ``greedy`` (one greedy answer per query: STaR), ``budget`` (K×T samples once, budget-matched to T rounds:
  RFT), ``guideline`` (K×T samples once under a reasoning-guideline system prompt, RFT's budget: ReGenesis,
  simplified below).
- ``extra``: ``veriexit`` (continue failed samples from the first step that reaches the gold answer, J times),
  ``answer_driven`` (resample failed queries J times with the gold answer as a hint), or None.
- ``select``: which correct candidates of a query are kept: ``all``, ``dedup`` (distinct texts: RFT),
  ``random`` / ``shortest`` / ``high_readiv`` / ``low_readiv`` (one per query: Fig. 2's ablation), ``oracle``
  (the gold traces of D_u: SFT-Oracle), ``none``.
- ``filter``: ``indiv`` (InDiv ≥ tau, the profile's variant and tau), ``length`` (the length-driven ablation), None.
- ``trainer``: ``sft``, ``dpo`` (DPO + NLL on pairs, Eq.2) or ``grpo``; ``init``: where each round's training
  starts, ``base`` (M, as HSIR-SFT and the SFT baselines do), ``previous`` (M_{t-1}, for DPO), or, for GRPO,
  ``m0`` or the name of a method whose first round's model it continues (``HSIR-SFT``).
- ``pairs`` (DPO): ``incorrect`` pairs each kept winner with a random incorrect sample of its query.
- ``rewards`` (GRPO): (reward name in ``hsir.rewards.REWARDS``, weight) pairs, TRL's ``reward_weights``.
- ``iterative``: whether the method runs T rounds; a non-iterative method runs one.
- ``cap_k``: after the extra sampling, keep at most K candidates per query at random (HSIR's equal budget).

ReGenesis (Peng et al. 2024) builds reasoning paths from abstract guidelines in several prompting stages; the
kit's entry keeps its core idea in one stage (K×T samples per query under a general guideline prompt, the
"fixed data synthesis budget" the paper gives it, close to RFT's |Train|; correct ones kept) and says so in its
note. STaR's rationalisation (a hint for failed queries) is the answer-driven entry's idea; the STaR entry is the
table's "1 greedy, keep correct".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SAMPLINGS = ("none", "K", "greedy", "budget", "guideline")
EXTRAS = (None, "veriexit", "answer_driven")
SELECTS = ("all", "dedup", "random", "shortest", "high_readiv", "low_readiv", "oracle", "none")
FILTERS = (None, "indiv", "length")
TRAINERS = ("sft", "dpo", "grpo")
INITS = ("base", "previous", "m0", "HSIR-SFT")
M0 = "SFT-Initial"  # the row that is M0 itself: iteration 0 of every method, its model <run root>/m0
PAIRS = (None, "incorrect")


@dataclass(frozen=True)
class Method:
    name: str
    paper: str  # where the paper defines or reports it
    sampling: str = "K"
    extra: str | None = None
    select: str = "all"
    filter: str | None = None
    trainer: str = "sft"
    init: str = "base"
    iterative: bool = True
    cap_k: bool = False
    pairs: str | None = None
    rewards: tuple[tuple[str, float], ...] = ()
    note: str = ""

    def __post_init__(self):
        for field, value, valid in [("sampling", self.sampling, SAMPLINGS), ("extra", self.extra, EXTRAS),
                                    ("select", self.select, SELECTS), ("filter", self.filter, FILTERS),
                                    ("trainer", self.trainer, TRAINERS), ("init", self.init, INITS),
                                    ("pairs", self.pairs, PAIRS)]:
            if value not in valid:
                raise ValueError(f"method {self.name!r}: {field}={value!r}; valid: {valid}")

    @property
    def self_generated(self) -> bool:
        return self.sampling != "none"


_SFT_METHODS = [
    Method("SFT-Initial", "§4 baselines; M0", sampling="none", select="none", iterative=False,
           note="M0 itself: SFT on the seed traces D_s"),
    Method("SFT-Oracle", "§4 baselines", sampling="none", select="oracle", iterative=False,
           note="D_s plus the gold traces of D_u"),
    Method("STaR", "Zelikman et al. 2022; Table 1", sampling="greedy", select="all"),
    Method("ReST-EM", "Singh et al. 2024; Table 1", sampling="K", select="all"),
    Method("RFT", "Yuan et al. 2023; Table 1", sampling="budget", select="dedup", iterative=False,
           note="K×T samples once (the budget of T rounds), correct ones deduplicated"),
    Method("ReGenesis", "Peng et al. 2024; Table 1", sampling="guideline", select="all", iterative=False,
           note="one-stage simplification: K samples under a reasoning-guideline prompt"),
    Method("HSIR-SFT", "§3; Table 1a", sampling="K", extra="veriexit", select="all", filter="indiv", cap_k=True),
    # Table 3's ablations: one change each against HSIR-SFT, from the same M0 and the same first-round samples
    # Table 3 (a), no filtering: VeriExit against resampling with the gold answer as a hint (Ding et al. 2025)
    Method("answer-driven", "Table 3a", sampling="K", extra="answer_driven", select="all", cap_k=True,
           iterative=False, note="each query with a failed sample resampled J times with the gold answer as a hint"),
    Method("VeriExit-only", "Table 3a", sampling="K", extra="veriexit", select="all", cap_k=True, iterative=False),
    # Table 3 (b), no extra sampling: InDiv against the length-driven filter
    Method("length-driven", "Table 3b", sampling="K", select="all", filter="length", iterative=False,
           note="drop a correct candidate when (len - min)/(max - min) > 0.5 among its query's"),
    Method("InDiv-only", "Table 3b", sampling="K", select="all", filter="indiv", iterative=False),
    # Fig. 2 (right): one correct solution per query, chosen four ways
    Method("select-random", "Fig. 2 right", sampling="K", select="random", iterative=False),
    Method("select-shortest", "Fig. 2 right", sampling="K", select="shortest", iterative=False),
    Method("select-high-readiv", "Fig. 2 right", sampling="K", select="high_readiv", iterative=False),
    Method("select-low-readiv", "Fig. 2 right", sampling="K", select="low_readiv", iterative=False),
]

_DPO_METHODS = [
    Method("IRPO", "Pang et al. 2024; Table 1b", sampling="K", select="all", trainer="dpo", init="previous",
           pairs="incorrect", note="winners: every correct sample; losers: incorrect samples of the same query"),
    Method("HSIR-DPO", "§3; Table 1b", sampling="K", extra="veriexit", select="all", filter="indiv", cap_k=True,
           trainer="dpo", init="previous", pairs="incorrect",
           note="winners: HSIR-SFT's kept solutions (VeriExit, InDiv-filtered); losers: incorrect samples only"),
]

_ACC_FMT = (("accuracy", 1.0), ("format", 1.0))
_GRPO_METHODS = [
    Method("GRPO", "Table 5", sampling="none", select="none", trainer="grpo", init="m0", iterative=False,
           rewards=_ACC_FMT),
    Method("GRPO+Long2Short", "Table 5; Kimi 1.5", sampling="none", select="none", trainer="grpo", init="m0",
           iterative=False, rewards=_ACC_FMT + (("long2short", 1.0),)),
    Method("GRPO+CosFn", "Table 5; Yang et al. 2025", sampling="none", select="none", trainer="grpo", init="m0",
           iterative=False, rewards=(("cosine", 1.0), ("format", 1.0)), note="CosFn replaces the accuracy reward"),
    Method("H-GRPO", "§3; Table 5", sampling="none", select="none", trainer="grpo", init="m0", iterative=False,
           rewards=_ACC_FMT + (("indiv", 0.2),)),
    Method("HSIR-SFT+H-GRPO", "Table 7", sampling="none", select="none", trainer="grpo", init="HSIR-SFT",
           iterative=False, rewards=_ACC_FMT + (("indiv", 0.2),), note="H-GRPO from HSIR-SFT's first round"),
]

METHODS: dict[str, Method] = {m.name: m for m in _SFT_METHODS + _DPO_METHODS + _GRPO_METHODS}


def samples_per_query(method: Method, K: int, T: int) -> int:
    """How many solutions a method samples per D_u query in a round: one greedy (STaR); K×T once for RFT's budget
    of T rounds, and for ReGenesis (the paper's "fixed data synthesis budget": its |Train| is close to RFT's); K
    otherwise."""
    return {"greedy": 1, "budget": K * T, "guideline": K * T}.get(method.sampling, K)


def sampling_key(method: Method, K: int, T: int) -> str:
    """What a method's samples are cached under (with their count): RFT's budget of K×T samples is M0's plain K
    samples when T = 1 (the same prompts, count and seeds), so it shares them instead of drawing them again."""
    return "K" if method.sampling == "budget" and samples_per_query(method, K, T) == K else method.sampling


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name is an error listing the valid ones."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


def run_order(names: Sequence[str]) -> list[str]:
    """``names`` in an order that can run: a method that starts from another method's first round
    (HSIR-SFT+H-GRPO from HSIR-SFT) comes after that method, which is added when missing."""
    order: list[str] = []
    for name in names:
        init = get_method(name).init
        if init not in ("base", "previous", "m0") and init not in order:
            order.append(init)
        if name not in order:
            order.append(name)
    return order


def table():
    """The methods table as a DataFrame (what a notebook prints next to its results)."""
    from dataclasses import asdict

    import pandas as pd

    return pd.DataFrame([asdict(m) for m in METHODS.values()]).set_index("name")
