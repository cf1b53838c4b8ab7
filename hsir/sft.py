"""Supervised fine-tuning on solution traces with TRL's ``SFTTrainer`` (paper §3: SFT-Initial builds M0 from the
seed traces; HSIR-SFT's rounds reuse it on the selected samples).

Rows are conversational prompt-completion pairs, so TRL applies the model's own chat template exactly as
``Task.prompt`` does at sampling time and computes the loss on the completion only. The result is a plain
safetensors folder (model + tokenizer) that transformers and vLLM both load; it is written to a temporary
sibling and renamed into place, so a killed run leaves either nothing or a whole model, and a finished one is
reused on rerun. A killed run resumes from the trainer's last checkpoint in ``<out>.checkpoints``.

On a CPU the trainer runs with ``use_cpu``, and with bf16 autocast where the CPU has native bf16 (AMX makes bf16
matrix work several times faster than fp32; on an AVX2-only CPU emulated bf16 is slower than fp32, so it stays
off there); the master weights stay fp32. DESIGN §5: the paper's lr 1e-5 was set for 1.5B+ models; the
embedded profile trains at 1e-4.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hsir.runs import read_json, write_json
from hsir.tasks import Problem, Task


@dataclass
class SFTSettings:
    lr: float = 1e-4
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 2048
    warmup: float = 0.1  # a fraction of the steps (transformers 5 takes it as ``warmup_steps``)
    weight_decay: float = 0.0
    seed: int = 0
    bf16: bool | None = None  # None: bf16 where the hardware runs it natively (models.native_bf16)
    save_every: int = 50  # optimizer steps between checkpoints a killed run resumes from


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
              trust_remote_code: bool = False) -> Path:
    """Fine-tune ``base`` (a model spec or folder) on ``rows``; returns the folder of the trained model."""
    import torch
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer

    from hsir.models import _atomic_dir, load_model, native_bf16

    settings = settings or SFTSettings()
    out = Path(out_dir)
    if (out / "model.safetensors").exists():
        return out
    if not rows:
        raise ValueError(f"no rows to train {out} on")
    ckpt_dir = out.parent / f"{out.name}.checkpoints"
    gpu = torch.cuda.is_available()
    if settings.bf16 is None:  # resolved here, so that sft.json records what ran
        settings = replace(settings, bf16=native_bf16())
    model, tok = load_model(base, dtype="fp32" if not gpu else "bf16", trust_remote_code=trust_remote_code)
    cfg = SFTConfig(
        output_dir=str(ckpt_dir), learning_rate=settings.lr, num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=settings.grad_accum,
        max_length=settings.max_length, warmup_steps=settings.warmup, weight_decay=settings.weight_decay,
        lr_scheduler_type="cosine", seed=settings.seed, data_seed=settings.seed, bf16=settings.bf16,
        use_cpu=not gpu, save_strategy="steps", save_steps=settings.save_every, save_total_limit=1,
        logging_steps=5, report_to="none", dataloader_num_workers=0, completion_only_loss=True,
        gradient_checkpointing=False,  # TRL 1.x turns it on by default: +1 forward per step, not needed at this size
    )
    model.train()
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(list(rows)), processing_class=tok)
    t0 = time.perf_counter()
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.exists() else None
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0

    def build(tmp: Path) -> None:
        trainer.model.eval()
        trainer.model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_json(tmp / "sft.json", {"base": base, "rows": len(rows), "settings": asdict(settings),
                                      "train_loss": result.training_loss, "steps": result.global_step,
                                      "seconds": round(seconds, 1), "resumed_from": last,
                                      "log": trainer.state.log_history})

    _atomic_dir(out, build)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return out


def sft_report(model_dir: str | Path) -> dict:
    """What ``train_sft`` recorded next to the model (settings, loss, steps, seconds)."""
    return read_json(Path(model_dir) / "sft.json")
