"""Training with TRL: one builder of trainer arguments, SFT (Eq.1), DPO + NLL (Eq.2), a command line for ``accelerate``.

SFT rows are conversational prompt-completion pairs, so TRL applies the model's own chat template exactly as
``Task.prompt`` does at sampling time and computes the loss on the completion only (Eq.1: token-mean NLL,
prompt masked). The result is a plain safetensors folder (model + tokenizer) that transformers and vLLM both
load; it is written to a temporary sibling and renamed into place, so a killed run leaves either nothing or a
whole model, and a finished one is reused on rerun. A killed run resumes from the trainer's last checkpoint in
``<out>.checkpoints`` (optimizer, schedule, RNG and data position included), so it ends with the model an
uninterrupted run of the same seed gives.

On a CPU the trainer runs with ``use_cpu``, and with bf16 autocast where the CPU has native bf16 (AMX makes bf16
matrix work several times faster than fp32; on an AVX2-only CPU emulated bf16 is slower than fp32, so it stays
off there); the master weights stay fp32. DESIGN §5: the paper's lr 1e-5 was set for 1.5B+ models; the
embedded profile trains at 1e-4.

Several processes: ``settings.num_processes > 1`` makes ``launch_sft`` start this module under
``accelerate launch`` (``python -m hsir.train sft …``), the field's way to data-parallel training; one process
trains in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from hsir.runs import read_json, read_jsonl, write_json, write_jsonl
from hsir.tasks import Problem, Task


@dataclass(frozen=True)
class SFTSettings:
    lr: float = 1e-4
    epochs: float = 1.0
    batch_size: int = 8  # rows per optimizer step, per process
    grad_accum: int = 1
    # Rows per forward pass; the step still averages over batch_size rows (accumulated), so the update is the
    # same. None: batch_size on a GPU; 1 on a CPU, where one row at a time was the fastest and smallest
    # (``python -m hsir.bench train``, bench/train.json, 2-core AVX2: 52.8 real tokens/s and 3.9 GiB against
    # 32.5 tokens/s and 11.5 GiB for padded batches of 8).
    micro_batch_size: int | None = None
    max_length: int = 2048
    warmup: float = 0.1  # a fraction of the steps (transformers 5 takes it as ``warmup_steps``)
    weight_decay: float = 0.0
    seed: int = 0
    bf16: bool | None = None  # None: bf16 where the hardware runs it natively (models.native_bf16)
    save_every: int = 50  # optimizer steps between checkpoints a killed run resumes from
    num_processes: int = 1  # > 1: data-parallel under ``accelerate launch``
    # Rows concatenated into one sequence per batch (position ids restart per row, no attention across rows)
    # instead of padded to the longest: the same loss without the padding's compute. ``python -m hsir.bench train``
    padding_free: bool = True
    # transformers' attention: None for the model's own (SDPA); "eager" was +4-15% on a 2-core AVX512-BF16 CPU
    # (bench/train-avx512bf16.json) but holds the row length squared per layer; on a GPU e.g. "flash_attention_2"
    attn_implementation: str | None = None


def settings_from(cls, values: dict | None, where: str = "settings"):
    """A settings dataclass from a dict; an unknown key is an error naming it and the valid ones."""
    values = dict(values or {})
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {valid}")
    return cls(**values)


def trl_args(config_cls, output_dir: str | Path, s: SFTSettings, **extra):
    """TRL arguments shared by the SFT, DPO and GRPO trainers: schedule, precision, checkpoints, logging."""
    import torch

    from hsir.models import native_bf16
    from hsir.progress import lines_mode

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


def micro_batch(s: SFTSettings, gpu: bool) -> int:
    """Rows per forward pass: ``micro_batch_size``, else the whole batch on a GPU and one row on a CPU."""
    micro = s.micro_batch_size or (s.batch_size if gpu else 1)
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
    extra = {"max_length": settings.max_length, "completion_only_loss": True}
    # one row per pass has no padding to drop (and TRL warns about it); TRL does not truncate padding-free rows:
    # ``_fit`` checks their lengths itself
    if settings.padding_free and micro_batch(settings, torch.cuda.is_available()) > 1:
        extra |= {"max_length": None, "padding_free": True}
    return _fit(SFTTrainer, SFTConfig, extra, "sft.json", base, data, out, settings, trust_remote_code, callbacks)


@dataclass(frozen=True)
class DPOSettings(SFTSettings):
    """DPO + NLL (paper Eq.2): L = -log σ(β·margin) + α·NLL(winner), the policy and the reference both M_{t-1}."""

    lr: float = 1e-6  # paper: 1e-6 (2e-7 at 7-8B)
    batch_size: int = 16  # paper: 16
    padding_free: bool = False  # not passed to TRL's DPOTrainer: its pairs are padded
    beta: float = 0.1
    nll_weight: float = 0.5  # α
    epochs: float = 3.0


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


def _fit(trainer_cls, config_cls, extra: dict, report: str, base: str, data: list[dict], out: Path, settings,
         trust_remote_code: bool, callbacks: Sequence) -> Path:
    """Train with a TRL trainer, resume from its last checkpoint, and write the model atomically with a report."""
    import torch
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint

    from hsir.models import atomic_dir, load_model, native_bf16
    from hsir.progress import train_callbacks

    if not data:
        raise ValueError(f"no rows to train {out} on")
    gpu = torch.cuda.is_available()
    if settings.bf16 is None:  # resolved here, so that the report records what ran
        settings = replace(settings, bf16=native_bf16())
    settings = replace(settings, micro_batch_size=micro_batch(settings, gpu))
    ckpt_dir = out.parent / f"{out.name}.checkpoints"
    score_completion_tokens_only()
    model, tok = load_model(base, dtype="fp32" if not gpu else "bf16", trust_remote_code=trust_remote_code,
                            attn_implementation=settings.attn_implementation)
    model.train()
    progress = train_callbacks(f"{report.removesuffix('.json').upper()} {out.parent.name}/{out.name}")
    trainer = trainer_cls(model=model, args=trl_args(config_cls, ckpt_dir, settings, **extra),
                          train_dataset=Dataset.from_list(data), processing_class=tok, callbacks=[*callbacks, *progress])
    if trainer.args.padding_free:
        lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
        too_long = [i for i, n in enumerate(lengths) if n > settings.max_length]
        if too_long:
            raise ValueError(f"training rows {too_long[:5]} are longer than max_length={settings.max_length} tokens "
                             f"(longest {max(lengths)}); padding-free training does not truncate")
    t0 = time.perf_counter()
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.exists() else None
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0
    if not trainer.accelerator.is_main_process:
        trainer.accelerator.wait_for_everyone()
        return out

    def build(tmp: Path) -> None:
        trainer.model.eval()
        trainer.model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_json(tmp / report, {"base": base, "rows": len(data), "settings": asdict(settings),
                                  "train_loss": result.training_loss, "steps": result.global_step,
                                  "seconds": round(seconds, 1), "resumed_from": last,
                                  "processes": trainer.accelerator.num_processes, "log": trainer.state.log_history})

    atomic_dir(out, build)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return out


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
