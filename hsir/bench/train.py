"""``python -m hsir.bench train``: SFT throughput of the embedded model, configurations side by side in one run.

Each configuration trains the model on the same first ``steps × batch_size`` seed rows of the embedded profile
(prompt-completion, the chat template applied by TRL as in M0) for ``steps`` optimizer steps, in a process of its
own so that its peak resident memory is its own. Per configuration: real tokens (prompt and completion, no
padding) and padded tokens per second, seconds per step (the first step, warm-up, left out), peak resident memory,
final loss, and the ratio of real tokens/s to the ceiling 6 × parameters FLOPs per trained token at the measured
matrix-product rate of the dtype in use. Ratios mean something only between configurations of the same run.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from hsir.bench.common import TreeMemory, machine, matmul_flops
from hsir.tasks import get_task

BEFORE = {"weights": "fp32", "attn_implementation": None}  # the kit's passes before the compute issue (23)
ONE_ROW = {"micro_batch_size": 1}  # the CPU default before two padding-free rows were packed a pass
TRAIN_CONFIGS = {  # SFTSettings overrides, one change at a time; the last is the kit's CPU default
    # a plain PyTorch loop of the same model on the same rows: fp32 weights with bf16 autocast where native, SDPA,
    # fused AdamW, one row a pass, every position through the LM head, gradients clipped (hsir.bench.train.plain_loop)
    "plain-loop": {"loop": "plain"},
    "padded": {"padding_free": False, "micro_batch_size": 8, **BEFORE},  # the kit before the first bench: TRL's padded batches
    "padding-free": {"padding_free": True, "micro_batch_size": 8, **BEFORE},
    # the same 8 rows per optimizer step in micro-batches (accumulated): activations shrink with the micro-batch
    "padding-free-micro4": {"padding_free": True, "micro_batch_size": 4, **BEFORE},
    "padding-free-micro2": {"padding_free": True, "micro_batch_size": 2, **BEFORE},
    # the default before issue 23: one row a pass, fp32 weights, bf16 autocast, SDPA. This and the next four keep one
    # row a pass, as the default did when they were set: each is one change from default-one-row
    "fp32-weights-sdpa": BEFORE | ONE_ROW,
    "fp32-weights": {"weights": "fp32", **ONE_ROW},  # eager attention alone (attn_implementation: auto)
    "default-sdpa": {"attn_implementation": None, **ONE_ROW},  # bf16 weights with fp32 masters alone
    # the default's passes with TRL's own CPU path of the fused LM head: every position scored, prompt included
    "default-all-positions": {"lm_head": "all-positions", **ONE_ROW},
    # everything fp32 where the default is bf16 (AMX or AVX512-BF16 CPUs); skipped elsewhere
    "default-fp32": {"bf16": False, **ONE_ROW},
    # the default's precision and attention with two or four rows packed into a pass (positions restarting per row,
    # no attention across rows): larger matrix products against attention over the packed length
    "default-packed2": {"padding_free": True, "micro_batch_size": 2},
    "default-packed4": {"padding_free": True, "micro_batch_size": 4},
    "default-one-row": ONE_ROW,  # the CPU default before two rows were packed (2026-11-30)
    # the default's passes under torch.compile: first with an empty compile cache of the bench's own (a first run
    # on a box), then again with the cache that first run filled (a later run); total_seconds holds the compilation
    "default-compiled": {"torch_compile": True, "compile_cache": "cold"},
    "default-compiled-warm": {"torch_compile": True, "compile_cache": "warm"},
    # two padding-free rows packed a pass on a CPU (hsir.train.CPU_PACKED_ROWS); bf16 weights with fp32 masters where
    # bf16 is native; eager attention where it fits
    "default": {},
}


def one_train(overrides: dict, model: str, steps: int, batch_size: int) -> dict:
    """One configuration: train, timing each optimizer step and counting the tokens each forward sees."""
    from transformers import TrainerCallback

    from hsir.train import SFTSettings, sft_rows, train_sft

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=steps * batch_size))  # batch_size rows per optimizer step
    counts = {"real": 0, "padded": 0}

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], 0.0

        def on_train_begin(self, args, state, control, model=None, **kw):
            def count(_mod, _args, kwargs):
                ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
                if ids is not None:
                    counts["padded"] += ids.numel()
                    counts["real"] += int(mask.sum()) if mask is not None else ids.numel()

            model.register_forward_pre_hook(count, with_kwargs=True)

        def on_step_begin(self, *a, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **kw):
            self.times.append(time.perf_counter() - self.t0)

    timer = Timer()
    overrides = dict(overrides)
    if overrides.pop("loop", None) == "plain":
        return plain_loop(model, rows, steps, batch_size)
    if overrides.pop("lm_head", None) == "all-positions":  # TRL's behaviour without hsir.train's compaction
        import hsir.train

        hsir.train.score_completion_tokens_only = lambda: None
    settings = SFTSettings(**({"batch_size": batch_size, "save_every": 10**6} | overrides))
    with TreeMemory() as mem, tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = train_sft(model, rows, f"{tmp}/m", settings, callbacks=[timer])
        total = time.perf_counter() - t0
        report = json.loads((out / "sft.json").read_text())
    usage = resource.getrusage(resource.RUSAGE_SELF)  # kernel time: page faults of allocation churn, among others
    timing, per_step = step_timing(timer.times, counts["real"])
    return {**overrides, "bf16": report["settings"]["bf16"], "steps": len(timer.times), "rows": len(rows),
            "micro_batch_size": report["settings"]["micro_batch_size"], **timing,
            "padded_tokens_per_s": round(counts["padded"] / len(timer.times) / per_step, 1),
            # over every step, the first (warm-up, compilation) included: what a run this short gets
            "run_tokens_per_s": round(counts["real"] / sum(timer.times), 1),
            "padding_share": round(1 - counts["real"] / max(counts["padded"], 1), 3),
            "train_seconds": round(report["seconds"], 1), "total_seconds": round(total, 1),
            "final_loss": report["train_loss"], "peak_rss_gib": mem.peak_gib,
            "user_cpu_s": round(usage.ru_utime, 1), "kernel_cpu_s": round(usage.ru_stime, 1)}


def step_timing(times: list[float], tokens: int) -> tuple[dict, float]:
    """Seconds per optimizer step (the median, the first step, warm-up, left out) and real tokens/s at that pace;
    also the median itself."""
    timed = times[1:] or times
    per_step = statistics.median(timed)
    return {"seconds_per_step": round(per_step, 2), "fastest_step": round(min(timed), 2),
            "step_seconds": [round(t, 2) for t in times],
            "real_tokens_per_s": round(tokens / len(times) / per_step, 1)}, per_step


def plain_loop(model_spec: str, rows: list[dict], steps: int, batch_size: int) -> dict:
    """The reference the kit's SFT is measured against: what a user would write in plain PyTorch for the same
    rows (the chat template, the loss on the completion only), without the kit or TRL."""
    from hsir.models import load_model, native_bf16

    bf16 = native_bf16()
    model, tok = load_model(model_spec, dtype="fp32")
    model.train()
    seqs = []
    for r in rows:
        prompt = tok.apply_chat_template(r["prompt"], tokenize=True, add_generation_prompt=True, return_dict=False)
        ids = torch.tensor([tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=False)])
        labels = ids.clone()
        labels[0, : len(prompt)] = -100
        seqs.append((ids, labels))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, fused=True)
    times, tokens, losses = [], 0, []
    with TreeMemory() as mem:
        for step in range(steps):
            t0 = time.perf_counter()
            for ids, labels in seqs[step * batch_size : (step + 1) * batch_size]:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = model(input_ids=ids, labels=labels).loss / batch_size
                loss.backward()
                tokens += ids.numel()
                losses.append(loss.item() * batch_size)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - t0)
    return {"loop": "plain", "bf16": bf16, "steps": steps, "rows": len(rows), "micro_batch_size": 1,
            **step_timing(times, tokens)[0], "padding_share": 0.0, "final_loss": statistics.mean(losses[-batch_size:]),
            "peak_rss_gib": mem.peak_gib}


def train_bench(model: str = "embedded:smollm2-135m", steps: int = 5, batch_size: int = 8,
                only: list[str] | None = None) -> dict:
    from hsir.models import load_model, native_bf16

    m, _ = load_model(model, dtype="fp32", device="cpu")
    params = sum(p.numel() for p in m.parameters())
    del m
    dtype = torch.bfloat16 if native_bf16() else torch.float32
    rate = matmul_flops(dtype)
    ceiling = rate / (6 * params)
    # an fp32 row on a bf16 CPU is held to the fp32 rate
    fp32_ceiling = ceiling if dtype == torch.float32 else matmul_flops(torch.float32) / (6 * params)
    results = {}
    with tempfile.TemporaryDirectory(prefix="hsir-bench-inductor-") as tmp:
        compile_dir = f"{tmp}/cache"
        for name in TRAIN_CONFIGS:
            if only and name not in only:
                continue
            results[name] = one_config(name, model, steps, batch_size, compile_dir, ceiling, fp32_ceiling)
    return {"bench": "train", "model": model, "parameters": params, "steps": steps, "batch_size": batch_size,
            "workload": f"SFT on the first {steps * batch_size} synthetic seed traces, batch {batch_size}, one process",
            "matmul_dtype": str(dtype).removeprefix("torch."), "matmul_gflops": round(rate / 1e9, 1),
            "ceiling_tokens_per_s": round(ceiling, 1), "fp32_ceiling_tokens_per_s": round(fp32_ceiling, 1),
            "configs": results,
            "machine": machine(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def one_config(name: str, model: str, steps: int, batch_size: int, compile_dir: str, ceiling: float,
               fp32_ceiling: float) -> dict:
    """One configuration of ``TRAIN_CONFIGS`` in a process of its own, its rate as a share of the ceiling."""
    from hsir.models import native_bf16

    overrides = dict(TRAIN_CONFIGS[name])
    if overrides.get("bf16") is False and not native_bf16():
        return {**overrides, "skipped": "the default is fp32 already on this CPU (no native bf16)"}
    print(f"[bench] train {name} ...", flush=True)
    env = os.environ | overrides.pop("env", {})
    found = None
    if cache := overrides.pop("compile_cache", None):  # inductor's on-disk cache, this bench run's own
        if cache == "cold":
            shutil.rmtree(compile_dir, ignore_errors=True)
        Path(compile_dir).mkdir(exist_ok=True)
        found = any(Path(compile_dir).iterdir())  # "warm" is warm only after a cold run filled it
        env |= {"TORCHINDUCTOR_CACHE_DIR": compile_dir}
    cmd = [sys.executable, "-m", "hsir.bench.train", json.dumps(overrides), model, str(steps), str(batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        result = {**TRAIN_CONFIGS[name], "error": (proc.stderr or proc.stdout).strip().splitlines()[-3:]}
    else:
        r = json.loads(lines[-1]) | {k: TRAIN_CONFIGS[name][k] for k in ("env", "compile_cache") if k in TRAIN_CONFIGS[name]}
        if found is not None:
            r["compile_cache_filled_before"] = found
        r["ratio_to_ceiling"] = round(r["real_tokens_per_s"] / (ceiling if r["bf16"] else fp32_ceiling), 3)
        result = r
    print(f"[bench] {name}: {result}", flush=True)
    return result


QUALITY_CONFIGS = {k: TRAIN_CONFIGS[k] for k in ("fp32-weights-sdpa", "default")}  # the reference first
BENCH_ONLY = ("loop", "lm_head", "env")  # configurations the bench makes by other means than SFTSettings


def m0_quality(profile: str = "embedded", root: str | None = None, configs: dict | None = None) -> dict:
    """A change to how training computes, checked on what it trains: M0 of ``profile`` built under each of
    ``configs`` (``m0_sft`` overrides) into ``<root>/<name>/m0``, its final training loss (the mean of the last
    logged steps, TRL's ``loss``) and its greedy accuracy on D_u with a 95% interval, and each against the first
    (the reference) paired over D_u's queries. The issue's bar: final loss within 0.01, accuracy inside the
    reference's interval."""
    from hsir.config import load_config
    from hsir.evaluate import evaluate, paired_difference
    from hsir.generate import Engine
    from hsir.loopdata import load_data
    from hsir.rounds import round_correct
    from hsir.train import build_m0

    configs = configs or QUALITY_CONFIGS
    root = Path(root or tempfile.mkdtemp(prefix="m0-quality-"))
    out, correct = {}, {}
    for name, overrides in configs.items():
        base = load_config(profile)
        settings = {k: v for k, v in overrides.items() if k != "compile_cache"}  # the bench's own cache, not here
        cfg = load_config(profile, {"root": str(root / name), "m0_sft": base.m0_sft | settings})
        t0 = time.perf_counter()
        m0 = build_m0(cfg)
        seconds = time.perf_counter() - t0
        report = json.loads((m0 / "sft.json").read_text())
        data = load_data(cfg)
        engine = Engine(cfg)
        try:
            du = evaluate(data.task, data.unlabeled, engine.use(str(m0)), m0.parent / "du-eval",
                          cfg.eval_max_new_tokens, label="du")
        finally:
            engine.close()
        correct[name] = round_correct(m0.parent / "du-eval")
        losses = [e["loss"] for e in report["log"] if "loss" in e]
        out[name] = {"overrides": overrides, "settings": report["settings"], "train_loss": report["train_loss"],
                     # the last logged steps' mean loss; a run too short to log one: its whole mean
                     "final_loss": losses[-1] if losses else report["train_loss"], "train_seconds": report["seconds"],
                     "build_seconds": round(seconds, 1), "du": du}
    ref = next(iter(configs))
    for name in list(configs)[1:]:
        out[name]["vs_" + ref] = {"final_loss_diff": out[name]["final_loss"] - out[ref]["final_loss"],
                                  "du_paired": paired_difference(correct[name], correct[ref])}
    return {"bench": "train-quality", "profile": profile, "root": str(root), "reference": ref, "configs": out,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


if __name__ == "__main__":  # one configuration, in its own process: overrides model steps batch_size
    print(json.dumps(one_train(json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
