"""Selecting a round's training rows: which scored candidates are kept (InDiv ≥ tau, the length-driven cut, one
per query by Eq.3 or length, deduplicated, or all) and, for DPO, the winner/loser pairs. Every row says why it
is there (the ``why`` field of ``train.jsonl``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

from hsir.config import LoopConfig
from hsir.loopdata import Data
from hsir.methods import Method
from hsir.scoring import candidate_id

log = logging.getLogger(__name__)


def select_stage(method: Method, cfg: LoopConfig, data: Data, cands: Sequence[dict], scores: Sequence[dict],
                 rows: Sequence[dict] = ()) -> tuple[list[dict], dict]:
    """The round's training rows, each with why it is there: for SFT, D_s's traces then the kept candidates; for
    DPO, each kept winner paired with an incorrect sample of its query (``make_pairs``)."""
    task = data.task
    seed_rows = [{"qid": p.qid, "origin": "seed", "why": "seed trace (D_s)", "text": p.reasoning} for p in data.seed]
    report: dict = {"candidates": len(cands)}
    by_id = {s["id"]: s for s in scores}
    kept = [dict(c) | by_id[candidate_id(c)] for c in cands]
    for k in kept:
        k["why"] = "correct"
    before = len(kept)
    if method.filter == "indiv":
        from hsir.indiv import filter_by_indiv

        kept, threshold = filter_by_indiv(kept, cfg.tau)
        for k in kept:
            k["why"] += f"; InDiv {k['indiv']:.4f} >= tau {threshold:.4f} ({cfg.tau})"
        report["tau_value"] = threshold
    elif method.filter == "length":
        from hsir.diversity import length_driven_filter

        kept = length_driven_filter(kept, cfg.length_cutoff, key="length")
        for k in kept:
            k["why"] += f"; relative length <= {cfg.length_cutoff}"
    if method.filter and before and not kept:  # e.g. the paper's tau = -0.5 above every score of a small model
        tau = f" (tau {cfg.tau} resolved to {report['tau_value']:.4f})" if "tau_value" in report else ""
        report["filter_kept_none"] = f"the {method.filter} filter kept 0 of {before} correct candidates{tau}"
        log.warning("%s: %s; the round trains on D_s alone", method.name, report["filter_kept_none"])
    kept = select(method.select, kept, cfg.seed)
    if method.select == "oracle":
        missing = [p.qid for p in data.unlabeled if not p.reasoning]
        if missing:
            raise ValueError(f"SFT-Oracle trains on the gold traces of D_u, but {len(missing)} of {len(data.unlabeled)} "
                             f"{cfg.task}/{cfg.unlabeled_split} queries have none (e.g. {missing[:3]}): "
                             f"{cfg.task}'s traces of D_u are not in the kit's data (for GSM8K they are in the hub "
                             "dataset camel-ai/gsm8k_distilled, of which the kit reads the seed rows only)")
        kept = [{"qid": p.qid, "origin": "oracle", "why": "gold trace of D_u", "text": p.reasoning}
                for p in data.unlabeled]
    report |= {"kept": len(kept), "kept_queries": len({k["qid"] for k in kept}),
               "kept_by_origin": _count(k["origin"] for k in kept)}
    by_qid = {p.qid: p for p in data.seed + data.unlabeled}
    if method.trainer == "dpo":
        losers = [r for r in rows if not r["correct"] and r["origin"] == "sample"]
        pairs = make_pairs(kept, losers, cfg.seed)
        report |= {"pairs": len(pairs), "pair_queries": len({p["qid"] for p in pairs})}
        return [p | {"prompt": task.messages(by_qid[p["qid"]])} for p in pairs], report
    out = []
    for r in seed_rows + kept:
        p = by_qid[r["qid"]]
        out.append({key: r.get(key) for key in ("qid", "origin", "req", "sample", "why", "length", "indiv", "readiv")}
                   | {"prompt": task.messages(p), "completion": [{"role": "assistant", "content": r["text"]}]})
    return out, report


def make_pairs(winners: Sequence[dict], losers: Sequence[dict], seed: int) -> list[dict]:
    """Each winner with a loser of the same query drawn at random (seeded per winner); a query with no winner
    or no loser gives no pair. Losers are incorrect samples only: a correct solution the filter dropped is never
    a loser (the paper pairs "correct and incorrect solutions"; a filtered one is still correct)."""
    by_q: dict[str, list[dict]] = {}
    for r in losers:
        by_q.setdefault(r["qid"], []).append(r)
    pairs = []
    for w in winners:
        group = by_q.get(w["qid"])
        if not group:
            continue
        lose = random.Random(f"{seed}:{candidate_id(w)}").choice(group)
        pairs.append({"qid": w["qid"], "winner": candidate_id(w), "loser": candidate_id(lose),
                      "why": f"winner: {w['why']}; loser: incorrect sample drawn at random (pred {lose['pred']!r})",
                      "chosen": [{"role": "assistant", "content": w["text"]}],
                      "rejected": [{"role": "assistant", "content": lose["text"]}]})
    return pairs


def select(how: str, kept: Sequence[dict], seed: int) -> list[dict]:
    """Which of each query's kept candidates go to training (``all`` keeps them all). One per query: at random,
    the shortest, the highest or the lowest Eq.3 (Fig. 2), ties broken at random with the seed, so that "highest"
    on a tie is not "shortest" by another name."""
    if how in ("all", "oracle", "none"):
        return list(kept) if how == "all" else []
    if how == "dedup":
        seen, out = set(), []
        for k in kept:
            key = (k["qid"], " ".join(k["text"].split()))
            if key not in seen:
                seen.add(key)
                out.append(k)
        return out
    groups: dict[str, list[dict]] = {}
    for k in kept:
        groups.setdefault(k["qid"], []).append(k)
    out = []
    for qid, g in groups.items():
        if how == "random":
            pick = random.Random(f"{seed}:{qid}").choice(g)
        else:  # ties broken at random with the seed (min/max keep the first of equals, and the order is shuffled)
            g = random.Random(f"{seed}:{qid}:ties").sample(g, len(g))
            if how == "shortest":
                pick = min(g, key=lambda k: k["length"])
            elif how == "high_readiv":
                pick = max(g, key=lambda k: k["readiv"])
            else:
                pick = min(g, key=lambda k: k["readiv"])
        out.append(pick | {"why": pick["why"] + f"; one per query ({how})"})
    return out


def _count(xs) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out


def train_composition(rows: Sequence[dict], count: Callable[[str], int]) -> dict:
    """What a round trains on, by origin (``seed``: D_s's traces, in every round and untouched by any filter;
    ``sample``, ``veriexit``, ``oracle``...) and over all its SFT rows: rows and mean completion tokens (``count``,
    the sampler's tokenizer). A filter's effect on output length shows here first: InDiv keeps shorter samples, but
    D_s's traces weigh in too (README, "Where HSIR-SFT's shorter answers come from")."""
    by: dict[str, list[int]] = {}
    for r in rows:
        by.setdefault(r["origin"], []).append(count(r["completion"][0]["content"]))
    every = [n for v in by.values() for n in v]
    return {o: {"rows": len(v), "mean_tokens": round(sum(v) / len(v), 1)} for o, v in by.items()} | (
        {"all": {"rows": len(every), "mean_tokens": round(sum(every) / len(every), 1)}} if every else {})
