"""``python -m hsir.bench eval-chunk``: the greedy evaluation's problems per engine call (``LoopConfig.eval_chunk``),
side by side on one engine.

The evaluation generates its problems in chunks, each one call of the engine and the unit a killed evaluation
resumes by. A small chunk leaves the engine's batch (``max_num_seqs``) part empty, most of all at each chunk's tail
where a few long answers run alone. Every size runs on the same engine and model, in turn, ``--repeats`` times
(64, 256, ..., 64, 256, ...), so that the machine's drift falls on each size alike; each run reports its seconds,
tokens/s and accuracy, and how many greedy texts equal the first size's first run's (batch composition changes
the numerics) and its own size's first run's (whether a size repeats itself). ``speedup`` is the first size's
mean seconds over each size's. Model: ``--model``, a trained round's folder for a realistic length of answers
(default: the profile's HSIR-SFT round 1 where it exists, else M0, else the base model).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

CHUNKS = (64, 256, 1024)


def default_model(cfg) -> str:
    for path in (cfg.run_root / "methods" / "HSIR-SFT" / "iter_1" / "model", cfg.run_root / "m0" / "model"):
        if (path / "model.safetensors").exists():
            return str(path)
    return cfg.model


def eval_chunk_bench(profile: str = "embedded", model: str | None = None, n_problems: int = 512,
                     chunks: Sequence[int] = CHUNKS, repeats: int = 2) -> dict:
    from hsir.config import load_config
    from hsir.generate import Engine, greedy
    from hsir.loopdata import load_data
    from hsir.sampling import sample_and_score

    cfg = load_config(profile, {"n_test": n_problems})
    data = load_data(cfg)
    model = model or default_model(cfg)
    engine = Engine(cfg)
    t0 = time.perf_counter()
    gen = engine.use(model)
    startup = time.perf_counter() - t0
    runs, texts = [], {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(repeats):
                for chunk in chunks:
                    t0 = time.perf_counter()
                    rows = sample_and_score(data.task, data.test, gen, greedy(cfg.eval_max_new_tokens),
                                            Path(tmp) / f"c{chunk}-r{rep}.jsonl", origin="greedy", chunk=chunk)
                    secs = time.perf_counter() - t0
                    texts[chunk, rep] = [r["text"] for r in rows]
                    tokens = sum(r["n_tokens"] for r in rows)
                    # milliseconds kept: a fast model's call rounds to 0.0 s at one decimal (and the speedup divides by it)
                    runs.append({"chunk": chunk, "repeat": rep, "seconds": round(secs, 3), "tokens": tokens,
                                 "tokens_per_s": round(tokens / secs, 1),
                                 "accuracy": round(sum(r["correct"] for r in rows) / len(rows), 4)})
                    print(f"[bench] eval-chunk {runs[-1]}", flush=True)
    finally:
        engine.close()
    ref = texts[chunks[0], 0]
    for r in runs:
        mine = texts[r["chunk"], r["repeat"]]
        r["same_text_as_first"] = sum(a == b for a, b in zip(ref, mine, strict=True))
        r["same_text_as_own_first"] = sum(a == b for a, b in zip(texts[r["chunk"], 0], mine, strict=True))
    mean = {c: sum(r["seconds"] for r in runs if r["chunk"] == c) / repeats for c in chunks}
    return {"bench": "eval-chunk", "profile": profile, "model": model, "problems": len(data.test),
            "max_new_tokens": cfg.eval_max_new_tokens, "backend": gen.backend, "dtype": gen.dtype,
            "engine": cfg.engine, "startup_s": round(startup, 1), "runs": runs,
            "mean_seconds": {str(c): round(s, 3) for c, s in mean.items()},
            "speedup": {str(c): round(mean[chunks[0]] / s, 2) for c, s in mean.items()},
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
