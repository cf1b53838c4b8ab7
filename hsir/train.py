"""Training with TRL: one builder of trainer arguments, SFT (Eq.1), DPO + NLL (Eq.2), a command line for ``accelerate``.

SFT rows are conversational prompt-completion pairs, so TRL applies the model's own chat template exactly as
``Task.prompt`` does at sampling time and computes the loss on the completion only (Eq.1: token-mean NLL,
prompt masked). The result is a plain safetensors folder (model + tokenizer) that transformers and vLLM both
load; it is written to a temporary sibling and renamed into place, so a killed run leaves either nothing or a
whole model, and a finished one is reused on rerun. A killed run resumes from the trainer's last complete
checkpoint in ``<out>.checkpoints`` (optimizer, schedule, RNG and data position included), so it ends with the model
an uninterrupted run of the same seed gives.

Precision (``weights``): the update is always taken on fp32 weights, since AdamW's updates at the paper's lr
(1e-5, 1e-6) are below bf16's resolution for most weights and would round away. Where the hardware runs bf16
natively (GPUs; CPUs with AMX or AVX512-BF16, where bf16 matrix work is several times faster than fp32) the passes
run in bf16: on a GPU by autocast over fp32 weights; on such a CPU on bf16 weights with fp32 master copies in the
optimizer (``hsir.precision``), which saves autocast's cast of every weight at every one-row pass. On an AVX2-only
CPU, emulated bf16 is slower than fp32, so everything stays fp32. Attention (``attn_implementation: auto``): on a
CPU with native bf16, transformers' eager attention where a pass's attention matrices fit ``EAGER_ATTENTION_GIB``
(faster than SDPA's CPU kernel at these lengths), else SDPA; elsewhere the model's own (SDPA). On a GPU the rows
per pass follow the free memory (``gpu_pass_plan``) unless ``micro_batch_size`` is set. ``python -m hsir.bench
train`` measures both. On a CPU the trainer runs with ``use_cpu``. DESIGN §5: the paper's lr 1e-5 was set for
1.5B+ models; the embedded profile trains at 1e-4.

Several processes: ``settings.num_processes > 1`` makes ``launch_sft`` start this module under
``accelerate launch`` (``python -m hsir.train sft …``), the field's way to data-parallel training; one process
trains in-process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from hsir.config import DPOSettings, LoopConfig, SFTSettings, settings_from
from hsir.loopdata import seed_draw
from hsir.progress import lines_mode, train_callbacks
from hsir.runs import read_json, read_jsonl, write_json, write_jsonl
from hsir.tasks import Problem, Task, get_task

log = logging.getLogger(__name__)
EAGER_ATTENTION_GIB = 2.0  # a pass's eager attention scores, probabilities and their bf16 copy, all layers


def trl_args(config_cls, output_dir: str | Path, s: SFTSettings, **extra):
    """TRL arguments shared by the SFT, DPO and GRPO trainers: schedule, precision, checkpoints, logging."""
    import torch

    from hsir.models import native_bf16

    gpu = torch.cuda.is_available()
    bf16 = native_bf16() if s.bf16 is None else s.bf16
    micro = micro_batch(s, gpu)
    defaults = dict(
        output_dir=str(output_dir), learning_rate=s.lr, num_train_epochs=s.epochs,
        per_device_train_batch_size=micro, gradient_accumulation_steps=s.grad_accum * (s.batch_size // micro),
        warmup_steps=s.warmup, weight_decay=s.weight_decay, lr_scheduler_type="cosine", seed=s.seed,
        data_seed=s.seed, bf16=bf16, use_cpu=not gpu, save_strategy="steps", save_steps=s.save_every,
        save_total_limit=1, logging_steps=5, report_to="none", dataloader_num_workers=0,
        gradient_checkpointing=False,  # TRL 1.x turns it on by default: +1 forward per step, not needed at this size
        disable_tqdm=lines_mode(),  # headless: hsir.progress reports steps and loss instead
        torch_compile=getattr(s, "torch_compile", False),  # SFT/DPO only; GRPO's settings have none
    )
    return config_cls(**(defaults | extra))


def score_completion_tokens_only() -> None:
    """Let TRL's fused LM head score only the positions that carry a label (the completion) on a CPU too.

    TRL 1.16's ``add_fused_lm_head`` (used by its SFT, DPO and GRPO trainers) drops the unlabelled positions before
    the vocabulary projection on CUDA/XPU, but elsewhere scores every position, prompt included, to keep tile shapes
    fixed for compilers that recompile per shape (Neuron). Eager CPU training never recompiles, and there the
    projection and its per-token softmax statistics over the 49k-token vocabulary are a third of a SmolLM2 step,
    while the prompt is ~40% of a seed row. TRL has no option for it, so the kit swaps the one helper that makes the
    choice, in ``trl.trainer.utils`` only (the kernel's own Triton-or-torch choice is untouched). The loss and the
    gradients are the same (tests/test_train.py); ``python -m hsir.bench train`` measures the gain."""
    import trl.trainer.utils as tu
    from trl.kernels.chunked_logprob import _use_triton

    if getattr(tu._use_triton, "hsir_compact", False):
        return

    def compact(device) -> bool:
        return device.type == "cpu" or _use_triton(device)

    compact.hsir_compact = True
    tu._use_triton = compact


CPU_PACKED_ROWS = 2  # padding-free rows packed into one pass on a CPU (README, Training speed: +5-18%, same M0)


def micro_batch(s: SFTSettings, gpu: bool) -> int:
    """Rows per forward pass: ``micro_batch_size``, else on a CPU two padding-free rows packed in a pass (one row
    where the rows are padded, DPO's pairs, or the batch is odd) and on a GPU the whole batch (where ``_fit`` sets
    ``micro_batch_size`` from the memory plan, ``gpu_pass_plan``, before anything reads it)."""
    if s.micro_batch_size or gpu:
        micro = s.micro_batch_size or s.batch_size
    else:
        packs = s.padding_free and not isinstance(s, DPOSettings)  # DPO's pairs are padded, whatever it says
        micro = CPU_PACKED_ROWS if packs and s.batch_size % CPU_PACKED_ROWS == 0 else 1
    if micro < 1 or s.batch_size % micro:
        raise ValueError(f"micro_batch_size={micro} must divide batch_size={s.batch_size}")
    return micro


def sft_rows(task: Task, problems: Sequence[Problem], traces: Sequence[str] | None = None) -> list[dict]:
    """Prompt-completion rows: the task's zero-shot messages, then the trace (default: each problem's own)."""
    traces = [p.reasoning for p in problems] if traces is None else list(traces)
    if len(traces) != len(problems):
        raise ValueError(f"{len(traces)} traces for {len(problems)} problems")
    rows = []
    for p, t in zip(problems, traces, strict=True):
        if not t:
            raise ValueError(f"{task.name}: problem {p.qid} has no trace to train on")
        rows.append({"prompt": task.messages(p), "completion": [{"role": "assistant", "content": t}]})
    return rows


def train_sft(base: str, rows: Sequence[dict], out_dir: str | Path, settings: SFTSettings | None = None,
              trust_remote_code: bool = False, callbacks: Sequence = ()) -> Path:
    """Fine-tune ``base`` (a model spec or folder) on prompt-completion ``rows``; returns the trained model's folder."""
    import torch
    from trl import SFTConfig, SFTTrainer

    settings = settings or SFTSettings()
    out = Path(out_dir)
    if (out / "model.safetensors").exists():
        return out
    data = [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
    # TRL is told no max_length: ``truncate_rows`` cuts over-long rows itself (prompt kept, completion cut, as TRL's
    # keep_start does), the same way padded or padding-free, and counts them (TRL does not truncate padding-free
    # rows at all)
    extra = {"max_length": None, "completion_only_loss": True}
    # one row per pass has no padding to drop (and TRL warns about it)
    if settings.padding_free and micro_batch(settings, torch.cuda.is_available()) > 1:
        extra |= {"padding_free": True}
    return _fit(SFTTrainer, SFTConfig, extra, "sft.json", base, data, out, settings, trust_remote_code, callbacks)


def train_dpo(base: str, pairs: Sequence[dict], out_dir: str | Path, settings: DPOSettings | None = None,
              trust_remote_code: bool = False, callbacks: Sequence = ()) -> Path:
    """DPO + NLL from ``base`` on prompt/chosen/rejected ``pairs`` with TRL's ``DPOTrainer``
    (``loss_type=["sigmoid", "sft"]``, ``loss_weights=[1, α]``). The reference is ``base`` itself; its
    log-probabilities are computed once before training (``precompute_ref_log_probs``), not at every step."""
    from trl import DPOConfig, DPOTrainer

    settings = settings or DPOSettings()
    out = Path(out_dir)
    if (out / "model.safetensors").exists():
        return out
    data = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in pairs]
    extra = {"max_length": settings.max_length, "beta": settings.beta, "loss_type": ["sigmoid", "sft"],
             "loss_weights": [1.0, settings.nll_weight], "precompute_ref_log_probs": True}
    return _fit(DPOTrainer, DPOConfig, extra, "dpo.json", base, data, out, settings, trust_remote_code, callbacks)


def truncate_rows(trainer, max_length: int, report: str) -> dict:
    """Cut training rows longer than ``max_length`` tokens as the paper does (the prompt kept, the completion cut
    at the end), count them, and say so in one warning line. SFT rows are cut here (TRL would not cut padding-free
    rows); a row whose prompt alone fills ``max_length`` has nothing left to learn and is dropped. DPO pairs are
    cut by TRL's collator at ``max_length``; they are only counted here (TRL drops a pair whose prompt fills it)."""
    ds = trainer.train_dataset
    if "input_ids" in ds.column_names:  # SFT: input_ids and labels (-100 on the prompt)
        lengths = [len(ids) for ids in ds["input_ids"]]
        prompts = [sum(t == -100 for t in labels) for labels in ds["labels"]]
    else:  # DPO: prompt_ids, chosen_ids, rejected_ids
        prompts = [len(p) for p in ds["prompt_ids"]]
        lengths = [p + max(len(c), len(r)) for p, c, r in zip(prompts, ds["chosen_ids"], ds["rejected_ids"], strict=True)]
    over = sum(n > max_length for n in lengths)
    dropped = sum(p >= max_length for p in prompts)
    if over and "input_ids" in ds.column_names:
        cut = ds.map(lambda r: {"input_ids": r["input_ids"][:max_length], "labels": r["labels"][:max_length]})
        trainer.train_dataset = cut.filter(lambda r: any(t != -100 for t in r["labels"]))
    if over:
        log.warning("%s: %d of %d training rows are longer than max_length=%d tokens (longest %d) and were cut at the "
                    "completion's end; %d with no completion left were dropped", report.removesuffix(".json").upper(),
                    over, len(lengths), max_length, max(lengths), dropped)
    return {"truncated_rows": over, "dropped_rows": dropped, "max_length": max_length,
            "longest_row": max(lengths, default=0)}


def resolve_weights(settings, gpu: bool) -> str:
    """``weights: auto`` resolved: bf16 weights with fp32 masters on a CPU with native bf16, else fp32 (autocast
    where ``bf16``)."""
    if settings.weights != "auto":
        return settings.weights
    return "bf16" if settings.bf16 and not gpu else "fp32"


def auto_attention(config, sequences: int, length: int, cpu_bf16: bool) -> bool:
    """``attn_implementation: auto``: eager (True) on a CPU with native bf16 (where it was measured faster) where
    ``sequences`` of ``length`` tokens keep at most ``EAGER_ATTENTION_GIB`` of attention matrices for the backward
    (scores, fp32 probabilities and their bf16 copy: 8 bytes an entry, every head and layer); else the model's own."""
    entries = sequences * config.num_hidden_layers * config.num_attention_heads * length**2
    return cpu_bf16 and entries * 8 <= EAGER_ATTENTION_GIB * 2**30


def resolve_bf16(settings):
    """``bf16=None`` resolved to what the hardware runs natively, so that the report records what ran."""
    from hsir.models import native_bf16

    return settings if settings.bf16 is not None else replace(settings, bf16=native_bf16())


def last_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest complete trainer checkpoint a killed run resumes from, if any. The trainer writes
    ``trainer_state.json`` after the weights, optimizer and RNG states, so a checkpoint without it (or with it cut)
    was being saved when the run was killed: it is deleted and the one before it resumes. (transformers'
    ``get_last_checkpoint`` picks the newest folder, and resuming from a cut one fails.)"""
    steps = [(int(p.name.rsplit("-", 1)[1]), p) for p in ckpt_dir.glob("checkpoint-*")
             if p.is_dir() and p.name.rsplit("-", 1)[1].isdigit()] if ckpt_dir.exists() else []
    for _, folder in sorted(steps, reverse=True):
        try:
            read_json(folder / "trainer_state.json")
            return str(folder)
        except (OSError, ValueError):
            logging.getLogger(__name__).warning("%s was cut by a kill while it was saved; deleted", folder)
            shutil.rmtree(folder, ignore_errors=True)  # several processes may find it at once
    return None


def run_trainer(trainer, tokenizer, out: Path, ckpt_dir: Path, last: str | None, report_name: str,
                report: Callable[[object, float], dict], cleanup: Callable[[], None] | None = None) -> Path:
    """The training skeleton SFT, DPO and GRPO share: train (resuming from ``last``), then on the main process
    write model, tokenizer and ``report(result, seconds)`` as ``report_name`` into ``out`` atomically, drop the
    checkpoints, and let every process wait for it. ``cleanup`` runs after training, even when it fails."""
    from hsir.models import atomic_dir

    t0 = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=last)
    finally:
        if cleanup is not None:
            cleanup()
    seconds = time.perf_counter() - t0
    if not trainer.accelerator.is_main_process:
        trainer.accelerator.wait_for_everyone()
        return out

    def build(tmp: Path) -> None:
        trainer.model.eval()
        trainer.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        # "finished": when the training ended, for hsir.time_spent (a copied report's file time moves)
        write_json(tmp / report_name, report(result, seconds) | {"finished": time.strftime("%Y-%m-%dT%H:%M:%S")})

    atomic_dir(out, build)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return out


def _fit(trainer_cls, config_cls, extra: dict, report: str, base: str, data: list[dict], out: Path, settings,
         trust_remote_code: bool, callbacks: Sequence) -> Path:
    """Train SFT or DPO with a TRL trainer from ``base`` (``run_trainer`` does the rest)."""
    import torch
    from datasets import Dataset

    from hsir.models import load_model
    from hsir.precision import to_bf16_with_masters

    if not data:
        raise ValueError(f"no rows to train {out} on")
    gpu = torch.cuda.is_available()
    settings = resolve_bf16(settings)
    settings = replace(settings, weights=resolve_weights(settings, gpu))
    ckpt_dir = out.parent / f"{out.name}.checkpoints"
    score_completion_tokens_only()
    attn = None if settings.attn_implementation == "auto" else settings.attn_implementation  # "auto": set below
    model, tok = load_model(base, dtype="fp32", trust_remote_code=trust_remote_code, attn_implementation=attn)
    plan = gpu_pass_plan(model, settings, 2 if report == "dpo.json" else 1) if gpu else None
    settings = replace(settings, micro_batch_size=plan.rows if plan else micro_batch(settings, gpu))
    masters = to_bf16_with_masters(model) if settings.weights == "bf16" else {}
    model.train()
    progress = train_callbacks(f"{report.removesuffix('.json').upper()} {out.parent.name}/{out.name}")
    args = trl_args(config_cls, ckpt_dir, settings, **extra,
                    **({"gradient_checkpointing": True} if plan and plan.gradient_checkpointing else {}))
    if settings.group_by_length:  # SFT only (DPOSettings refuses it): each step's rows, longest first
        trainer_cls = type(f"StepSorted{trainer_cls.__name__}", (trainer_cls,), {"_get_train_sampler": _step_sorted})
    trainer = trainer_cls(model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tok,
                          callbacks=[*callbacks, *progress])
    restore = use_masters(trainer, args, masters, model)
    cut = truncate_rows(trainer, settings.max_length, report)
    sequences = 2 * settings.micro_batch_size if report == "dpo.json" else settings.micro_batch_size
    if report == "sft.json" and settings.padding_free and settings.micro_batch_size > 1:  # one long sequence
        sequences = 1
    settings = settle_attention(model, settings, sequences, lambda: min(cut["longest_row"], settings.max_length) *
                                (settings.micro_batch_size if sequences == 1 else 1), cpu_bf16=settings.bf16 and not gpu)
    last = last_checkpoint(ckpt_dir)

    def summary(result, seconds: float) -> dict:
        return {"base": base, "rows": len(data), **cut, "settings": asdict(settings), "train_loss": result.training_loss,
                "steps": result.global_step, "seconds": round(seconds, 1), "resumed_from": last,
                "processes": trainer.accelerator.num_processes, "log": trainer.state.log_history,
                **({"pass_plan": asdict(plan)} if plan else {})}

    return run_trainer(trainer, tok, out, ckpt_dir, last, report, summary, cleanup=restore)


def use_masters(trainer, args, masters: dict, model) -> Callable[[], None] | None:
    """Train ``trainer`` with ``MasterWeightsAdamW`` over ``masters`` (``to_bf16_with_masters``'s fp32 copies; none:
    the trainer's own optimizer), at ``args``' optimizer settings. Set before ``train()``, which reads it when it
    builds the optimizer (TRL's trainers take no optimizer class argument of their own). Returns what puts the
    masters back into ``model`` after training (None without masters), so that the saved model is the fp32
    masters, not their bf16 rounding, and the next round starts from the same values. Decided here, not after
    training: the optimizer empties ``masters`` as its states take them."""
    from hsir.precision import MasterWeightsAdamW, masters_into_model

    if not masters:
        return None
    trainer.optimizer_cls_and_kwargs = (MasterWeightsAdamW, {
        "lr": args.learning_rate, "betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon,
        "weight_decay": args.weight_decay, "masters": masters})
    return lambda: masters_into_model(trainer.optimizer, model)


def settle_attention(model, settings, sequences: int, length: Callable[[], int], cpu_bf16: bool):
    """``attn_implementation: auto`` resolved on ``model``: eager where ``auto_attention`` allows ``sequences`` of
    ``length()`` tokens (called only on a CPU with native bf16), else the model's own; returns ``settings``
    recording what runs. Other values were set when the model was loaded and are returned as they are."""
    if settings.attn_implementation != "auto":
        return settings
    if cpu_bf16 and auto_attention(model.config, sequences, length(), cpu_bf16=True):
        model.set_attn_implementation("eager")
    return replace(settings, attn_implementation=model.config._attn_implementation)


def gpu_pass_plan(model, settings, sequences_per_row: int):
    """Rows per pass on a GPU where ``micro_batch_size`` is not set: ``hsir.memory.rows_per_pass`` from the free
    memory (the model's own weights counted back in) and the model's shape; None where it is set."""
    import torch

    from hsir.memory import rows_per_pass

    if settings.micro_batch_size:
        return None
    params = sum(p.numel() for p in model.parameters())
    free = torch.cuda.mem_get_info()[0] + torch.cuda.memory_allocated()
    plan = rows_per_pass(free, params, settings.max_length, settings.batch_size, model.config.to_dict(),
                         sequences_per_row=sequences_per_row)
    if not plan.rows:
        raise RuntimeError(f"{params / 1e9:.2f}B parameters' training states ({plan.state_gib} GiB) leave no room for one "
                           f"row of {settings.max_length} tokens in {plan.free_gib} GiB: shard them over several GPUs "
                           "(params/paper/accelerate/fsdp-7b.yaml) or set micro_batch_size")
    return plan


class StepSortedSampler:
    """``group_by_length``: each epoch a permutation seeded by (seed, epoch), cut into optimizer steps of ``step_rows``
    rows, each step's rows longest first. A step is the same random draw a shuffled sampler makes; only the order
    inside it changes, so a padded pass of several rows holds rows of similar length. transformers calls
    ``set_epoch`` before each epoch, a resumed one too, so a resumed run replays the same order."""

    def __init__(self, lengths: Sequence[int], step_rows: int, seed: int):
        self.lengths, self.step_rows, self.seed, self.epoch = list(lengths), step_rows, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import random

        order = list(range(len(self.lengths)))
        random.Random(self.seed * 100_003 + self.epoch).shuffle(order)
        for i in range(0, len(order), self.step_rows):
            yield from sorted(order[i : i + self.step_rows], key=lambda k: -self.lengths[k])


def _step_sorted(trainer, train_dataset=None):
    ds = train_dataset if train_dataset is not None else trainer.train_dataset
    args = trainer.args
    return StepSortedSampler([len(ids) for ids in ds["input_ids"]],
                             args.per_device_train_batch_size * args.gradient_accumulation_steps, args.seed)


TRAINERS = {"sft": (train_sft, SFTSettings), "dpo": (train_dpo, DPOSettings)}


def launch(kind: str, base: str, rows: Sequence[dict], out_dir: str | Path, settings: SFTSettings | None = None) -> Path:
    """``train_sft`` / ``train_dpo`` here, or under ``accelerate launch`` on ``settings.num_processes`` processes."""
    train, cls = TRAINERS[kind]
    settings = settings or cls()
    out = Path(out_dir)
    if settings.num_processes <= 1 or (out / "model.safetensors").exists():
        return train(base, rows, out, settings)
    rows_file = out.parent / f"{out.name}.rows.jsonl"
    write_jsonl(rows_file, rows)
    # accelerate's torchrun path (``--multi_gpu``) also runs CPU processes (gloo); its ``--cpu`` flag would start one
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
           str(settings.num_processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port())]
    cmd += ["-m", "hsir.train", kind, "--base", base, "--rows", str(rows_file), "--out", str(out),
            "--settings", json.dumps(asdict(settings))]
    subprocess.run(cmd, check=True, env=os.environ.copy())
    if not (out / "model.safetensors").exists():
        raise RuntimeError(f"accelerate launch finished without writing {out}: {' '.join(cmd)}")
    rows_file.unlink(missing_ok=True)
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_sft(base: str, rows: Sequence[dict], out_dir: str | Path, settings: SFTSettings | None = None) -> Path:
    return launch("sft", base, rows, out_dir, settings)


def build_m0(cfg: LoopConfig, n_rows: int | None = None, name: str = "m0") -> Path:
    """SFT-Initial (M0): M trained on the first ``n_rows`` traces of D_s (default all of D_s, ``loopdata.seed_draw``),
    in ``<run root>/<name>``; built by the first caller that needs it, then reused. A folder trained from another
    base, on another number of rows or with other settings is refused, not reused."""
    task = get_task(cfg.task, cfg.data_dir)
    rows = sft_rows(task, seed_draw(task.load(cfg.seed_split), cfg)[: n_rows or cfg.n_seed])
    settings = settings_from(SFTSettings, cfg.m0_sft, "m0_sft")
    out = cfg.run_root / name
    if (out / "sft.json").exists():
        rep = read_json(out / "sft.json")
        # how the steps are computed, not what they compute: a model trained either way is the same M0
        # (weights: bf16 with fp32 masters trains M0 to the fp32 run's loss within 0.01, README "Training speed")
        speed = ("bf16", "num_processes", "save_every", "padding_free", "micro_batch_size", "attn_implementation",
                 "weights", "torch_compile")
        want = {k: v for k, v in asdict(settings).items() if k not in speed}
        # a setting added after the folder was trained counts as its default
        got = {k: rep["settings"].get(k, SFTSettings.__dataclass_fields__[k].default) for k in want}
        if rep["rows"] != len(rows) or rep["base"] != cfg.model or got != want:
            raise RuntimeError(f"{out} was trained from {rep['base']} on {rep['rows']} rows with {got}; this profile "
                               f"asks for {cfg.model} on {len(rows)} rows with {want}. Delete it or use another root.")
        return out
    return launch_sft(cfg.model, rows, out, settings)


def sft_report(model_dir: str | Path) -> dict:
    """What ``train_sft`` (or ``train_dpo``) recorded next to the model (settings, loss, steps, seconds)."""
    folder = Path(model_dir)
    return read_json(folder / "sft.json" if (folder / "sft.json").exists() else folder / "dpo.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train a model with TRL (the entry point `accelerate launch` starts).")
    ap.add_argument("kind", choices=list(TRAINERS))
    ap.add_argument("--base", required=True, help="model spec or folder to start from")
    ap.add_argument("--rows", required=True, help="JSONL of prompt-completion rows (sft) or prompt/chosen/rejected pairs (dpo)")
    ap.add_argument("--out", required=True, help="folder of the trained model")
    ap.add_argument("--settings", default="{}", help="JSON of SFTSettings / DPOSettings fields")
    args = ap.parse_args(argv)
    train, cls = TRAINERS[args.kind]
    settings = settings_from(cls, json.loads(args.settings), "--settings")
    train(args.base, read_jsonl(args.rows), args.out, replace(settings, num_processes=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
