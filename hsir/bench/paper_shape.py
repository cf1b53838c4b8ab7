"""``python -m hsir.bench paper-shape [--shape qwen2.5-1.5b|qwen2.5-3b|tiny]``: the paper profile's training and
sampling at a paper model's shape, measured for ``hsir.plan`` (its docstring names the fields it reads).

**The model**: random weights from a config shipped in the kit (no hub). ``shapes/qwen2.5-{1.5b,3b}.json`` hold the
values of Qwen2.5-1.5B/3B-Instruct's public ``config.json`` (1,543,714,304 and 3,085,938,688 parameters, tied
embeddings); ``tiny`` is the smoke model's shape, for CPU tests. Every shape takes the smoke model's tokenizer
(SmolLM2's, 49,152 ids, all below the config's ``vocab_size`` of 151,936, which is kept: embeddings and LM head
keep the paper's size); only ``bos/eos/pad_token_id`` become the tokenizer's. Random weights measure throughput,
not quality: they also sample ids above 49,151 (decoded to nothing) and never stop early.

**What runs** (``hsir.train``, ``hsir.grpo``; ``load_config("paper")``, ``--set`` on top, kept in ``overrides``):
SFT-Initial (M0) on GSM8K's R1 seed rows (the whole local split unless ``--seed-rows``; rows over ``max_length``
cut and counted); ``K`` samples from M0 for each of ``--problems`` seed problems; an HSIR-SFT-style SFT from M0 on
them (all kept: random weights get none right); an HSIR-DPO-style round from M0 (winner: the problem's seed trace;
loser: each of its samples, or without samples the next problem's trace); M0 on ``--ood`` (notebook 06's
``evaluate_generalization``, out of distribution); ``--steps`` H-GRPO steps from M0. SFT and DPO run one epoch
(the paper's 3 change the duration, not the rate). ``--m0-variants`` repeats SFT-Initial under other pass layouts
first, side by side in the same run. The JSON is written after every stage, so a run killed at a device's time
limit keeps what it measured.

**Per stage**: tokens/s, seconds, MFU, peak memory, rows truncated. Trained tokens are the real tokens of forwards
with gradients (not generation, DPO's precomputed reference, GRPO's reward or reference passes). MFU = 6 ×
parameters × trained tokens / train seconds / peak: the GPU's nominal dense bf16 FLOP/s where known
(``NOMINAL_BF16``), else the measured matrix-product rate (on a CPU in the dtype training runs in), as
``peak_flops.used`` says. ``stages.sft`` pools SFT-Initial and HSIR-SFT (``runs``: each); ``stages.grpo`` takes the
median TRL step, rollouts included. Peak memory: ``torch.cuda.max_memory_allocated``, or the process tree's RSS on
a CPU. A failed stage (an OOM) keeps its error, the others still run, and the exit code is 1.

**Memory by design** (issue 21, item 2): on a GPU, SFT/DPO rows per pass follow ``hsir.memory.rows_per_pass`` from
the free memory, with gradient checkpointing where a pass of ``min_pass_tokens`` does not fit without it, as
``hsir.train`` plans them for every run (``pass_plan`` in its report); a set ``micro_batch_size`` is kept. The
7B needs several GPUs (``params/paper/accelerate/fsdp-7b.yaml``). GRPO's transformers rollouts (14 × 8 × 2,048
tokens a step) dominate the time: ``--stages`` with ``--work`` (keeps the model and M0) split a run across commands
into one ``--out``."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from hsir.bench.common import TreeMemory, machine, matmul_flops
from hsir.config import DPOSettings, GRPOSettings, SFTSettings, load_config, parse_sets, settings_from
from hsir.generate import SamplingConfig, make_generator, vllm_available
from hsir.loopdata import load_data, seed_draw
from hsir.memory import GiB
from hsir.models import atomic_dir, load_tokenizer, native_bf16
from hsir.runs import write_json
from hsir.tasks import get_task
from hsir.train import sft_rows, train_dpo, train_sft

log = logging.getLogger(__name__)
SHAPES_DIR = Path(__file__).parent / "shapes"
SHAPES = {"qwen2.5-1.5b": "Qwen2.5-1.5B-Instruct", "qwen2.5-3b": "Qwen2.5-3B-Instruct", "tiny": "smoke:tiny-llama"}
STAGES = ("m0", "generate", "hsir-sft", "dpo", "grpo", "ood")
# dense bf16 tensor-core FLOP/s (no sparsity) from the vendor's data sheets; the first name in the device's name wins
NOMINAL_BF16 = (("GH200", 989e12), ("H200", 989e12), ("H100 PCIe", 756e12), ("H100 NVL", 835e12),
                ("H100", 989e12), ("A100", 312e12))


def shape_config(shape: str) -> dict:
    """The shipped architecture config of ``shape`` (a public ``config.json``'s values)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; valid: {list(SHAPES)}")
    return json.loads((SHAPES_DIR / f"{shape}.json").read_text())


def hf_config(shape: str, tokenizer=None):
    """transformers' config of ``shape``; with a ``tokenizer``, its special-token ids (the shape is unchanged)."""
    from transformers import AutoConfig

    values = {k: v for k, v in shape_config(shape).items() if k != "torch_dtype"}
    if tokenizer is not None:
        values |= {f"{k}_token_id": getattr(tokenizer, f"{k}_token_id") for k in ("bos", "eos", "pad")}
    return AutoConfig.for_model(values.pop("model_type"), **values)


def count_params(shape: str) -> int:
    """Parameters of ``shape`` (tied embeddings once), built on the meta device: no memory, no weights."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config(shape))
    return sum(p.numel() for p in model.parameters())


def build_model(shape: str, folder: Path) -> Path:
    """A random-weight model of ``shape`` with the smoke model's tokenizer, as a safetensors folder (kept if there)."""
    from transformers import AutoModelForCausalLM

    if (folder / "model.safetensors").exists():
        return folder
    tok = load_tokenizer("smoke:tiny-llama")
    config = hf_config(shape, tok)
    if len(tok) > config.vocab_size:
        raise ValueError(f"tokenizer of {len(tok)} ids for a vocabulary of {config.vocab_size}")
    dtype = getattr(torch, shape_config(shape).get("torch_dtype", "float32"))

    def build(tmp: Path) -> None:
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # a GPU initialises 1.5B in a second
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        model.generation_config.eos_token_id, model.generation_config.pad_token_id = tok.eos_token_id, tok.pad_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return atomic_dir(folder, build)


@dataclass(frozen=True)
class Ctx:
    shape: str
    params: int
    peak: float  # FLOP/s the MFU is taken against


def gpu_name() -> str | None:
    """The GPU's short name ("H200", "H100", "A100"), the one ``hsir.plan --gpu`` takes; None without one."""
    return torch.cuda.get_device_name(0).removeprefix("NVIDIA ").split()[0].split("-")[0] if torch.cuda.is_available() else None


def peak_flops() -> dict:
    """The measured matrix-product rate and the nominal one where the GPU is known; ``used`` names the MFU's."""
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda or native_bf16() else torch.float32  # a CPU without native bf16 trains fp32
    measured = matmul_flops(dtype, n=8192 if cuda else 1024, seconds=2.0 if cuda else 1.0)
    name, nominal = next(((n, f) for n, f in NOMINAL_BF16 if cuda and n in torch.cuda.get_device_name(0)), (None, None))
    out = {"measured": measured, "measured_dtype": str(dtype).removeprefix("torch."), "nominal_bf16": nominal}
    return out | ({"used": f"nominal dense bf16 of {name}", "flops": nominal} if nominal else
                  {"used": f"measured {out['measured_dtype']} matrix products", "flops": measured})


def make_meter():
    """A trainer callback: trained tokens (forwards with gradients, attention-masked), and seconds and tokens per
    optimizer step."""
    from transformers import TrainerCallback

    class Meter(TrainerCallback):
        def __init__(self):
            self.tokens, self.steps, self.step_tokens, self.t0, self.n0, self.hook = 0, [], [], 0.0, 0, None

        def count(self, _module, _args, kwargs):
            ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
            if torch.is_grad_enabled() and ids is not None:
                self.tokens += int(mask.sum()) if mask is not None else ids.numel()

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.hook = model.register_forward_pre_hook(self.count, with_kwargs=True)

        def on_step_begin(self, *a, **kw):
            self.t0, self.n0 = time.perf_counter(), self.tokens

        def on_step_end(self, *a, **kw):
            self.steps.append(round(time.perf_counter() - self.t0, 3))
            self.step_tokens.append(self.tokens - self.n0)

    return Meter()


def rates(tokens: int, seconds: float, ctx: Ctx) -> dict:
    return {"tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
            "mfu": round(6 * ctx.params * tokens / seconds / ctx.peak, 4) if seconds else None}


def steady(runs: list[tuple[list, list]], ctx: Ctx) -> dict:
    """The rate of the optimizer steps after each run's first (which carries CUDA's and the kernels' start-up), over
    ``runs`` of (tokens, seconds) per step; a short run's whole-run rate (``rates``) understates a long one's."""
    toks = [t for tokens, _ in runs for t in tokens[1:]]
    secs = [s for _, seconds in runs for s in seconds[1:]]
    if not sum(secs):
        return {}
    r = rates(sum(toks), sum(secs), ctx)
    return {"steady_tokens_per_s": r["tokens_per_s"], "steady_mfu": r["mfu"], "steady_steps": len(secs)}


def measured(fn, *args) -> dict:
    """Run a stage: its dict plus wall seconds and peak memory; a failure (an OOM) is recorded, not raised."""
    if cuda := torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with TreeMemory() as mem:
        try:
            out = fn(*args)
        except Exception as e:  # noqa: BLE001 - one stage's failure is a result; the others still run
            log.exception("paper-shape stage failed")
            out = {"error": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:400]}"}
    out |= {"wall_seconds": round(time.perf_counter() - t0, 1), "peak_rss_gib": mem.peak_gib,
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / GiB, 2) if cuda else mem.peak_gib,
            "peak_memory": "torch.cuda.max_memory_allocated" if cuda else "process-tree RSS (TreeMemory)"}
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return out


def train_stage(kind: str, base: str, rows: list[dict], out: Path, settings, ctx: Ctx) -> dict:
    """One SFT (``kind`` "sft") or DPO run with ``hsir.train``; what it trained, how fast, what it cut."""
    meter = make_meter()
    shutil.rmtree(out, ignore_errors=True)
    folder = (train_dpo if kind == "dpo" else train_sft)(base, rows, out, settings, callbacks=[meter])
    rep = json.loads((folder / f"{kind}.json").read_text())
    return rates(meter.tokens, rep["seconds"], ctx) | steady([(meter.step_tokens, meter.steps)], ctx) | {
        "rows": rep["rows"], "truncated_rows": rep["truncated_rows"], "dropped_rows": rep["dropped_rows"],
        "longest_row": rep["longest_row"], "max_length": rep["max_length"], "steps": rep["steps"],
        "step_seconds": meter.steps, "step_tokens": meter.step_tokens,
        **{k: rep["settings"][k] for k in ("micro_batch_size", "batch_size", "bf16", "padding_free", "group_by_length",
                                           "attn_implementation")},
        "gradient_checkpointing": bool((rep.get("pass_plan") or {}).get("gradient_checkpointing")),
        "pass_plan": rep.get("pass_plan")}


def generate_stage(model: str, task, problems: list, cfg, backend: str, samples: list) -> dict:
    """``K`` samples per problem from ``model`` (appended to ``samples``); sampled tokens/s."""
    tok = load_tokenizer(model)
    gen = make_generator(model, backend=backend, dtype=cfg.dtype, progress=False, **(cfg.engine if backend == "vllm" else {}))
    try:
        sampling = SamplingConfig(n=cfg.K, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
        outs, stats = gen.generate([task.prompt(p, tok) for p in problems], sampling), gen.stats
    finally:
        gen.close()
    samples.extend(outs)
    return {"backend": backend, "sequences": len(problems) * cfg.K, "tokens": stats.tokens, "seconds": round(stats.seconds, 2),
            "tokens_per_s": round(stats.tokens / stats.seconds, 1), "startup_seconds": round(stats.startup_seconds, 1)}


def grpo_stage(start: str, cfg, out: Path, ctx: Ctx) -> dict:
    """H-GRPO steps with ``hsir.grpo``: seconds and rollout tokens a step, trained tokens/s, MFU of the training part."""
    from hsir.grpo import grpo_report, train_grpo
    from hsir.methods import get_method

    meter = make_meter()
    shutil.rmtree(out, ignore_errors=True)
    rep = grpo_report(train_grpo(get_method("H-GRPO"), cfg, load_data(cfg), start, out, callbacks=[meter]))
    logged = [e for e in rep["log"] if "reward" in e]
    timed, per_step = logged[1:] or logged, rep["trl_batch"]["generation_batch_size"]
    return rates(meter.tokens, rep["seconds"], ctx) | {
        "seconds_per_step": round(statistics.median(e["step_time"] for e in timed), 2),
        "tokens_per_step": round(statistics.median(e["completions/mean_length"] * per_step for e in timed), 1),
        "step_seconds": [round(e["step_time"], 2) for e in logged], "steps": rep["steps"],
        "rollouts": rep["settings"]["rollouts"], "trl_batch": rep["trl_batch"],
        "clipped_ratio": round(statistics.mean(e.get("completions/clipped_ratio", 0.0) for e in logged), 3),
        "indiv_seconds": rep["indiv_seconds"], "mfu_note": "6 × params × trained tokens over the whole steps, rollouts included"}


def ood_stage(cfg, ood_set: str, n: int) -> dict:
    """Notebook 06's call (``hsir.generalization.evaluate_generalization``): M0, trained on GSM8K's seed rows, on
    ``n`` problems of an out-of-distribution ``task:split`` with the profile's engine (random weights: accuracy 0;
    the path, its outputs and its time are what is checked)."""
    from hsir.generalization import eval_dir, evaluate_generalization
    from hsir.generate import Engine

    engine = Engine(cfg)
    try:
        records = evaluate_generalization(cfg, ["SFT-Initial"], [ood_set], engine, n)
    finally:
        engine.close()
    task, _, split = ood_set.partition(":")
    metrics = json.loads((eval_dir(cfg, "SFT-Initial", 0, task, split) / "metrics.json").read_text())[f"{task}-{split}"]
    return {"set": ood_set, "records": records, "folder": str(eval_dir(cfg, "SFT-Initial", 0, task, split)),
            **{k: metrics.get(k) for k in ("n", "accuracy", "mean_tokens", "backend", "max_new_tokens")}}


def pooled(runs: dict, ctx: Ctx) -> dict:
    """``stages.sft``: SFT-Initial and HSIR-SFT pooled (the rate the plan charges every SFT at), each under ``runs``."""
    if not (ok := [r for r in runs.values() if "error" not in r]):
        return {"runs": runs, "error": "no SFT run finished"}
    return rates(sum(r["tokens"] for r in ok), sum(r["seconds"] for r in ok), ctx) | steady(
        [(r.get("step_tokens", []), r.get("step_seconds", [])) for r in ok], ctx) | {
        "truncated_rows": sum(r["truncated_rows"] for r in ok), "peak_memory_gib": max(r["peak_memory_gib"] for r in ok),
        "runs": runs}


def bench_config(model: str, root: Path, n_seed: int, problems: int, steps: int, sets: dict):
    """The paper profile with the bench's changes (one epoch, few rows, no checkpoints) and ``sets`` on top; a
    mapping setting (m0_sft, sft, dpo, grpo) is merged key by key."""
    base = load_config("paper")
    fixed = {"model": model, "root": str(root), "n_seed": n_seed, "n_test": problems, "allow_fewer_seed_rows": True,
             **{k: {"epochs": 1.0, "save_every": 10**6} for k in ("m0_sft", "sft", "dpo")},
             "grpo": {"steps": steps, "save_every": 10**6}}
    values: dict = {}
    for layer in (fixed, sets):
        for k, v in layer.items():
            cur = values.get(k, getattr(base, k, None))
            values[k] = cur | v if isinstance(cur, dict) and isinstance(v, dict) else v
    prompts = settings_from(GRPOSettings, values["grpo"]).prompts_per_step
    values.setdefault("n_unlabeled", max(problems, prompts))  # GRPO draws a step's prompts from D_u
    return load_config("paper", values)


def paper_shape_bench(shape: str = "qwen2.5-1.5b", seed_rows: int | None = None, problems: int = 4, steps: int = 2,
                      sets: dict | None = None, stages=STAGES, work: str | Path | None = None,
                      m0_variants: dict | None = None, ood_set: str = "math500:test",
                      on_stage: Callable[[dict], None] | None = None) -> dict:
    """Build the shape's random model, run ``stages`` at the paper profile's settings, return the bench's JSON.
    ``m0_variants`` (name → ``m0_sft`` overrides) repeat SFT-Initial with other settings, side by side in the same
    run, before the profile's own M0 (which the later stages start from). ``on_stage`` gets the JSON so far after
    every stage, so a run cut short (a device's time limit) keeps what it measured."""
    sets = dict(sets or {})
    tmp = None if work else tempfile.mkdtemp(prefix="paper-shape-")
    work = Path(work or tmp)
    try:
        t0, peak = time.perf_counter(), peak_flops()
        ctx, model = Ctx(shape, count_params(shape), peak["flops"]), str(build_model(shape, work / f"model-{shape}"))
        build_seconds = round(time.perf_counter() - t0, 1)
        task = get_task("gsm8k", sets.get("data_dir"))
        cfg = bench_config(model, work / "runs", seed_rows or len(task.load("seed")), problems, steps, sets)
        seed = seed_draw(task.load(cfg.seed_split), cfg)
        picked = seed[:problems]
        backend = "hf" if cfg.backend == "hf" or not vllm_available() else "vllm"
        samples, result, sft_runs = [], {}, {}

        def doc() -> dict:
            stages_now = result | ({"sft": pooled(sft_runs, ctx)} if sft_runs else {})
            errors = sorted(k for k, v in [*result.items(), *sft_runs.items()] if "error" in v)
            return {"bench": "paper-shape", "shape": shape, "model": f"{SHAPES[shape]} (random weights)",
                    "gpu": gpu_name() or "cpu", "parameters": ctx.params,
                    "tokenizer": "smoke:tiny-llama (SmolLM2's, 49,152 ids)", "profile": "paper", "overrides": sets,
                    "seed_rows": len(seed), "problems": len(picked), "grpo_steps": steps,
                    "settings": {k: getattr(cfg, k) for k in ("m0_sft", "sft", "dpo", "grpo", "K", "max_new_tokens",
                                                              "eval_max_new_tokens", "temperature")},
                    "generate_backend": backend, "peak_flops": peak, "model_build_seconds": build_seconds,
                    "stages": stages_now, "errors": errors, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}

        def done() -> None:
            if on_stage is not None:
                on_stage(doc())

        m0_dir = cfg.run_root / "m0"  # where notebook 06 finds M0 (SFT-Initial, iteration 0)
        if "m0" in stages:
            for name, over in (m0_variants or {}).items():
                result.setdefault("m0_variants", {})[name] = measured(
                    train_stage, "sft", model, sft_rows(task, seed), work / f"m0-{name}",
                    settings_from(SFTSettings, cfg.m0_sft | over), ctx) | {"overrides": over}
                shutil.rmtree(work / f"m0-{name}", ignore_errors=True)
                done()
            sft_runs["SFT-Initial"] = measured(train_stage, "sft", model, sft_rows(task, seed), m0_dir,
                                               settings_from(SFTSettings, cfg.m0_sft), ctx)
            done()
        m0 = str(m0_dir) if (m0_dir / "model.safetensors").exists() else model  # kept in --work: reused
        if "generate" in stages:
            result["generate"] = measured(generate_stage, m0, task, picked, cfg, backend, samples)
            done()
        texts = [[c.text for c in cs if c.text.strip()] for cs in samples] if samples else [[p.reasoning] for p in picked]
        if "hsir-sft" in stages:
            rows = [r for p, ts in zip(picked, texts, strict=True) for r in sft_rows(task, [p] * len(ts), ts)]
            sft_runs["HSIR-SFT"] = measured(train_stage, "sft", m0, rows, work / "hsir-sft",
                                            settings_from(SFTSettings, cfg.sft), ctx)
            sft_runs["HSIR-SFT"]["rows_from"] = "M0's samples, all kept" if samples else "the problems' seed traces"
            done()
        if "dpo" in stages:
            losers = texts if samples else [[picked[(k + 1) % len(picked)].reasoning] for k in range(len(picked))]
            pairs = [{"prompt": task.messages(p), "chosen": [{"role": "assistant", "content": p.reasoning}],
                      "rejected": [{"role": "assistant", "content": t}]}
                     for p, ts in zip(picked, losers, strict=True) for t in ts]
            result["dpo"] = measured(train_stage, "dpo", m0, pairs, work / "dpo", settings_from(DPOSettings, cfg.dpo), ctx)
            result["dpo"]["pairs_from"] = ("winner: the seed trace; loser: each of M0's samples" if samples
                                           else "winner: the seed trace; loser: the next problem's trace")
            done()
        if "ood" in stages and m0 != model:  # before GRPO, the longest stage
            on = replace(cfg, backend=backend, engine=cfg.engine if backend == "vllm" else {})
            result["ood"] = measured(ood_stage, on, ood_set, problems)
            done()
        if "grpo" in stages:
            result["grpo"] = measured(grpo_stage, m0, cfg, work / "grpo", ctx)
            done()
        return doc()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hsir.bench paper-shape", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="qwen2.5-1.5b", choices=list(SHAPES))
    ap.add_argument("--out", help="JSON path (default bench/paper-shape-<gpu or cpu>[-<shape>].json)")
    ap.add_argument("--seed-rows", type=int, help="SFT-Initial rows (default: the whole seed split)")
    ap.add_argument("--problems", type=int, default=4, help="seed problems to sample K each, HSIR-SFT and DPO on")
    ap.add_argument("--steps", type=int, default=2, help="H-GRPO optimizer steps")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="paper-profile overrides, e.g. K=4")
    ap.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    ap.add_argument("--work", help="folder for the model and runs, kept (default: a temporary one)")
    ap.add_argument("--m0-variants", type=json.loads, default={}, metavar="JSON",
                    help='SFT-Initial again under other m0_sft settings, e.g. \'{"padding-free": {"padding_free": true}}\'')
    ap.add_argument("--ood", default="math500:test", help="task:split M0 is evaluated on (notebook 06's call)")
    args = ap.parse_args(argv)
    suffix = "" if args.shape == "qwen2.5-1.5b" else f"-{args.shape}"  # hsir.plan --gpu reads the paper model's
    out = Path(args.out or f"bench/paper-shape-{(gpu_name() or 'cpu').lower()}{suffix}.json")
    # a run split by --stages keeps earlier commands' stages
    earlier = json.loads(out.read_text()).get("stages", {}) if out.exists() and set(args.stages) != set(STAGES) else {}
    mach = machine()

    def save(result: dict) -> None:
        write_json(out, result | {"stages": earlier | result["stages"], "machine": mach})

    result = paper_shape_bench(args.shape, args.seed_rows, args.problems, args.steps, parse_sets(args.set),
                               args.stages, args.work, args.m0_variants, args.ood, on_stage=save)
    save(result)
    print(f"[bench] wrote {out}" + (f"; failed: {result['errors']}" if result["errors"] else ""))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
