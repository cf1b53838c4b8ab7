"""Scoring a round's candidates: the correct solutions capped at K per query, their length, InDiv under the
sampling model (Eq.4-5, the profile's variant) and Eq.3 reasoning diversity, each computed once per model.

Scores are cached per generating model under ``<run root>/generations/<model>/``, keyed by query and text, so
a solution scored for one method is reused by another and never confused with a different one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hsir.config import INDIV_VARIANTS, LoopConfig, digest
from hsir.loopdata import Data
from hsir.methods import Method
from hsir.runs import read_jsonl, write_jsonl
from hsir.veriexit import cap_per_query


def candidate_id(r: dict) -> str:
    """A generated row's id within its round: origin, request and sample index."""
    return f"{r['origin']}:{r['req']}:{r['sample']}"


def candidates_of(method: Method, cfg: LoopConfig, rows: Sequence[dict]) -> list[dict]:
    """The correct candidates a round selects from, capped at K per query where the method says so."""
    cands = [r for r in rows if r["correct"]]
    if method.cap_k:
        cands = cap_per_query(cands, cfg.K, cfg.seed)
    return cands


def score_stage(method: Method, cfg: LoopConfig, data: Data, sampler: str, model_key: str,
                cands: Sequence[dict]) -> list[dict]:
    """Length for every candidate; InDiv under the sampler and Eq.3 where the method uses them (cached per model)."""
    from hsir.models import load_tokenizer

    tok = load_tokenizer(sampler)
    ids = [candidate_id(c) for c in cands]
    out = [{"id": i, "qid": c["qid"], "length": len(tok(c["text"], add_special_tokens=False)["input_ids"])}
           for i, c in zip(ids, cands, strict=True)]
    if method.filter == "indiv":
        scores = cached_scores(cfg, model_key, "indiv", {"variant": cfg.indiv_variant}, cands,
                               lambda todo: candidate_indiv(cfg, data, sampler, todo))
        for o in out:
            o["indiv"] = scores[o["id"]]
    if method.select in ("high_readiv", "low_readiv"):
        scores = cached_scores(cfg, model_key, "readiv", {"embedder": cfg.embedder}, cands,
                               lambda todo: candidate_readiv(cfg, todo))
        for o in out:
            o["readiv"] = scores[o["id"]]
    return out


def cached_scores(cfg: LoopConfig, model_key: str, kind: str, spec: dict, cands: Sequence[dict],
                  compute: Callable[[list[dict]], list[float]]) -> dict[str, float]:
    """Scores by candidate id, computing only those not yet in the model's cache file (keyed by query and text,
    so a solution scored for one method is reused by another, and never confused with a different one)."""
    path = cfg.run_root / "generations" / model_key / f"{kind}-{digest(spec | {'task': cfg.task})}.jsonl"
    have = {r["key"]: r["score"] for r in read_jsonl(path)} if path.exists() else {}
    key = lambda c: digest([c["qid"], c["text"]])
    todo = [c for c in cands if key(c) not in have]
    if todo:
        have |= dict(zip([key(c) for c in todo], compute(todo), strict=True))
        write_jsonl(path, [{"key": k, "score": v} for k, v in have.items()])
    return {candidate_id(c): have[key(c)] for c in cands}


def candidate_indiv(cfg: LoopConfig, data: Data, model: str, cands: Sequence[dict]) -> list[float]:
    from hsir.indiv import indiv_scores
    from hsir.models import load_model

    weighting, norm, form, granularity = INDIV_VARIANTS[cfg.indiv_variant]
    lm, tok = load_model(model, dtype=cfg.dtype)
    prompts = [data.task.prompt(data.by_qid[c["qid"]], tok) for c in cands]
    scores = indiv_scores(lm, tok, prompts, [c["text"] for c in cands], weighting, norm, form=form,
                          granularity=granularity, max_tokens=cfg.max_indiv_tokens)
    return [float(s) for s in scores]


def candidate_readiv(cfg: LoopConfig, cands: Sequence[dict]) -> list[float]:
    from hsir.diversity import load_embedder, readiv_scores

    return readiv_scores([c["text"] for c in cands], load_embedder(cfg.embedder))
