"""``python -m hsir.bench veriexit``: on the hardest quarter of queries, new correct solutions per 1,000 generated
tokens for VeriExit, for resampling from scratch, and for answer-driven resampling, at the same budget.

The hardest quarter is the quarter of D_u queries with the fewest correct samples of M0's K (ties by qid).
VeriExit continues those queries' failed samples that have a step reaching the gold answer (J each) and sets
the budget: the tokens it generated. Resampling and answer-driven then sample the same queries with as many
samples per query as that budget buys at M0's mean sample length (at least one), under another seed.
"""

from __future__ import annotations

import math
import time

from hsir.config import load_config
from hsir.generate import Engine, SamplingConfig
from hsir.loopdata import load_data
from hsir.sampling import correct_counts, generate_rows, generations_path, sample_model, task_requests, veriexit_requests
from hsir.train import build_m0


def _rate(rows: list[dict]) -> dict:
    tokens = sum(r["n_tokens"] for r in rows)
    correct = sum(r["correct"] for r in rows)
    return {"generations": len(rows), "tokens": tokens, "correct": correct,
            "queries_solved": len({r["qid"] for r in rows if r["correct"]}),
            "correct_per_1k_tokens": 1000 * correct / tokens if tokens else 0.0}


def veriexit_bench(profile: str = "embedded", overrides: dict | None = None) -> dict:
    cfg = load_config(profile, overrides)
    data, engine = load_data(cfg), Engine(cfg)
    t0 = time.perf_counter()
    try:
        m0 = str(build_m0(cfg))
        samples = sample_model(cfg, data, engine, m0, "m0", cfg.K)
        counts = correct_counts(samples)
        hard = sorted(counts, key=lambda q: (counts[q], q))[: max(1, len(counts) // 4)]
        hard_set = set(hard)
        failed = [r for r in samples if r["qid"] in hard_set]
        gen = engine.use(m0)
        spec = {"bench": "veriexit", "queries": hard, "J": cfg.J, "step_test": cfg.step_test, "seed": cfg.seed}
        xcfg = SamplingConfig(n=cfg.J, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 1)
        reqs = veriexit_requests(data.task, data.by_qid, failed, gen.tokenizer, cfg.step_test)
        ve = generate_rows(data.task, reqs, gen, xcfg, generations_path(cfg, "m0", "bench-veriexit", spec)) if reqs else []
        budget = sum(r["n_tokens"] for r in ve)
        mean_len = sum(r["n_tokens"] for r in samples) / max(len(samples), 1)
        n = max(1, math.ceil(budget / max(mean_len * len(hard), 1)))
        problems = [data.by_qid[q] for q in hard]
        rcfg = SamplingConfig(n=n, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 1)
        out = {}
        for name, hint in (("resampling", False), ("answer_driven", True)):
            rows = generate_rows(data.task, task_requests(data.task, problems, gen.tokenizer, name, hint=hint), gen, rcfg,
                                 generations_path(cfg, "m0", f"bench-{name}", spec | {"n": n}))
            out[name] = _rate(rows)
        out = {"veriexit": _rate(ve) | {"prefixes": len(reqs)}} | out
    finally:
        engine.close()
    base = out["resampling"]["correct_per_1k_tokens"]
    return {
        "profile": profile, "step_test": cfg.step_test, "K": cfg.K, "J": cfg.J, "hard_queries": len(hard),
        "hard_queries_correct_samples": sum(counts[q] for q in hard), "budget_tokens": budget,
        "samples_per_query_at_budget": n, "methods": out,
        "veriexit_vs_resampling": out["veriexit"]["correct_per_1k_tokens"] / base if base else None,
        # None above with this True: resampling found nothing at its (at least one sample per query) budget
        "resampling_found_none": out["resampling"]["correct"] == 0,
        "backend": gen.backend, "dtype": gen.dtype, "seconds": round(time.perf_counter() - t0, 1),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
