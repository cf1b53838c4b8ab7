"""``python -m hsir.bench scoring``: what HSIR's scoring costs next to the sampling it filters.

For the same 256 sampled solutions of the embedded model (32 synthetic prompts × 8 samples × up to 256 new
tokens), the seconds of (a) generating them, (b) the InDiv pass (default; default re-running each sample's
prompt; step-level; no weighting), (c) the Eq.3 pass with the embedder; and the peak memory of the InDiv pass for
one 2,048-token solution, measured in a fresh process so that nothing else counts. Everything runs in the
``auto`` dtype (bf16 on AMX CPUs and GPUs, fp32 on AVX2-only CPUs); the JSON records which, and the CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from hsir.bench.common import TreeMemory
from hsir.tasks import get_task

# The InDiv settings whose cost the benchmarks report (seconds keys -> indiv_scores keyword arguments).
TIMED_VARIANTS = {
    "indiv_default_s": {},  # share_prompts resolved per device (indiv.share_prompts_default)
    "indiv_shared_s": {"share_prompts": True},  # the K samples of a prompt reuse its first layers' cache
    "indiv_unshared_s": {"share_prompts": False},  # every sample re-runs its prompt
    "indiv_step_received_s": {"weighting": "received", "granularity": "step"},
    "indiv_no_weighting_s": {"weighting": "none"},
}


def _rss_gib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def indiv_memory(model_spec: str, dtype: str = "auto", n_tokens: int = 2048) -> dict:
    """Peak memory of the InDiv pass (with attention weighting) over one n-token solution, in this process."""
    import torch

    from hsir.indiv import indiv_scores
    from hsir.models import load_model

    model, tok = load_model(model_spec, dtype=dtype)
    words = " ".join(f"step {i} adds {i % 7} more apples." for i in range(n_tokens))
    ids = tok(words, add_special_tokens=False)["input_ids"][:n_tokens]
    solution = tok.decode(ids)
    n = len(tok(solution, add_special_tokens=False)["input_ids"])
    base = _rss_gib()
    with TreeMemory(interval=0.02) as mem:
        t0 = time.perf_counter()
        score = indiv_scores(model, tok, ["Solve it."], [solution])[0]
        secs = time.perf_counter() - t0
    cuda_peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {"solution_tokens": n, "seconds": round(secs, 2), "score": score, "rss_after_load_gib": round(base, 3),
            "peak_rss_during_gib": mem.peak_gib, "peak_rss_increase_gib": round(mem.peak_gib - base, 3),
            "cuda_peak_gib": cuda_peak}


def scoring_bench(args) -> dict:
    import torch

    from hsir.diversity import load_embedder, readiv_scores
    from hsir.generate import SamplingConfig, make_generator, vllm_available
    from hsir.indiv import indiv_scores, share_prompts_default
    from hsir.models import load_model, resolve_dtype

    task = get_task("synthetic")
    problems = task.load("test", limit=32)
    backend = "vllm" if vllm_available() else "hf"
    gen = make_generator(args.model, backend=backend, dtype="auto", progress=False)
    prompts = [task.prompt(p, gen.tokenizer) for p in problems]
    t0 = time.perf_counter()
    out = gen.generate(prompts, SamplingConfig(n=8, max_new_tokens=256, seed=0))
    gen_s = time.perf_counter() - t0
    gen.close()
    sol_prompts = [prompts[i] for i, cs in enumerate(out) for _ in cs]
    texts = [c.text for cs in out for c in cs]
    tokens = sum(c.n_tokens for cs in out for c in cs)

    model, tok = load_model(args.model, dtype="auto")
    prompt_tokens = sum(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    indiv_scores(model, tok, sol_prompts[:8], texts[:8])  # warm-up
    timings = {}
    for name, kw in TIMED_VARIANTS.items():
        t0 = time.perf_counter()
        indiv_scores(model, tok, sol_prompts, texts, **kw)
        timings[name] = round(time.perf_counter() - t0, 2)
    emb = load_embedder()
    readiv_scores(texts[:8], emb)  # warm-up
    t0 = time.perf_counter()
    readiv_scores(texts, emb)
    eq3_s = time.perf_counter() - t0

    mem = subprocess.run([sys.executable, "-c", f"import json; from hsir.bench.scoring import indiv_memory; "
                          f"print(json.dumps(indiv_memory({args.model!r})))"], capture_output=True, text=True)
    memory = json.loads(mem.stdout.strip().splitlines()[-1]) if mem.returncode == 0 else {"error": mem.stderr[-500:]}
    return {
        "bench": "scoring", "model": args.model, "solutions": len(texts), "generated_tokens": tokens,
        "prompt_tokens": prompt_tokens, "prompt_tokens_if_not_shared": prompt_tokens * len(texts) // len(prompts),
        "generation_backend": backend, "dtype": str(resolve_dtype("auto")).removeprefix("torch."),
        "cpu": torch.backends.cpu.get_cpu_capability(), "generation_s": round(gen_s, 2), **timings, "eq3_s": round(eq3_s, 2),
        "indiv_over_generation": round(timings["indiv_default_s"] / gen_s, 3),
        "indiv_over_eq3": round(timings["indiv_default_s"] / eq3_s, 3),
        "shared_over_unshared": round(timings["indiv_shared_s"] / timings["indiv_unshared_s"], 3),
        "share_prompts_default": share_prompts_default(next(model.parameters()).device),
        "indiv_memory_2048_tokens": memory, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
