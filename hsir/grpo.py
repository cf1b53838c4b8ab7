"""GRPO, its length-reward variants and H-GRPO (paper §3, Appendix B, Tables 5 and 7) with TRL's ``GRPOTrainer``.

One run trains a policy on the prompts of D_u (answers only) for ``steps`` optimizer steps with the rewards of a
``hsir.methods`` entry (``Method.rewards``: (name in ``hsir.rewards.REWARDS``, weight) pairs, given to TRL as
``reward_weights``). The objective is the paper's Eq.6-8 (DESIGN §2): DAPO's token-level clipped loss
(``loss_type="dapo"``), ε = 0.2, a k3 KL term to the start model with β = 0.04, and advantages
(r - group mean) / group std over each prompt's G rollouts.

**Batch mapping (TRL 1.16).** The paper's "batch size 14" counts prompts per optimizer step (14 is not a multiple of
G = 8), so one step sees ``prompts_per_step × num_generations`` completions (14 × 8 = 112). TRL counts its batch
sizes in completions: one optimizer step consumes ``per_device_train_batch_size × num_processes ×
gradient_accumulation_steps`` completions, and ``generation_batch_size`` (default ``per_device_train_batch_size ×
num_processes × steps_per_generation``, with ``steps_per_generation`` defaulting to ``gradient_accumulation_steps``)
is how many are generated at once. The kit sets

    per_device_train_batch_size = prompts_per_micro_batch × G          (whole groups per forward/backward pass)
    gradient_accumulation_steps = prompts_per_step / (prompts_per_micro_batch × num_processes)
    steps_per_generation        = gradient_accumulation_steps          (TRL's default: left unset)
    ⇒ generation_batch_size     = prompts_per_step × G                 (one generation per optimizer step)

so all ``prompts_per_step × G`` rollouts of a step are sampled at once from the current policy, scored together
(every reward call holds whole groups, as ``hsir.rewards`` requires), and split into micro-batches of whole groups
whose gradients accumulate into one optimizer step (``num_iterations = 1``: on-policy, one update per
generation). DAPO normalises the loss by the tokens of the whole generation batch, so the micro-batch size changes
memory, not the update. The paper: 14 prompts × G = 8, one prompt per micro-batch → 8 completions × 14
accumulation steps on one process.

**Rollouts.** ``rollouts``: ``transformers`` (TRL's own ``model.generate``), ``vllm-colocate`` (vLLM inside the
training process, sharing the GPU; ``use_vllm=True, vllm_mode="colocate"``), ``vllm-server`` (a separately started
``trl vllm-serve``; ``vllm_mode="server"``, at ``vllm_server_url``) or ``engine``: TRL's ``rollout_func`` hook over
the kit's own vLLM engine (``EngineRollouts``: the policy's weights are swapped into the running engine once per
optimizer step, then each prompt copy is sampled with a seed of its own). TRL's colocate mode assumes a GPU; the
engine is how vLLM serves rollouts on a CPU. ``auto`` is ``vllm-colocate`` on a GPU where ``import vllm`` works,
``engine`` on a CPU where it works (``python -m hsir.bench grpo`` measures it against ``transformers``:
README, Training speed), else ``transformers``.

**Precision.** As ``hsir.train``: the optimizer keeps fp32 weights (the paper's lr 1e-6 would vanish in bf16
weights); the passes run with bf16 autocast where the hardware runs bf16 natively (``bf16=None``), on bf16 copies
of the weights on such a CPU (``weights: auto``: ``hsir.precision``'s fp32 masters in the optimizer), and with
eager attention there where it fits (``attn_implementation: auto``). TRL builds the KL reference from the start
folder in the policy's dtype and attention. The rollout engine gets the weights the passes run on.

**Where a step's time goes.** Each logged step carries ``time/rollout``, ``time/rewards`` and
``time/generation`` next to TRL's ``step_time`` (``time_phases``); ``phase_split`` turns them into rollout,
rewards, scoring (the reference's no-grad passes) and update, and ``python -m hsir.bench grpo`` reports them.

**Resume.** Checkpoints go to ``<out>.checkpoints`` every ``save_every`` steps (optimizer, schedule, RNG, log
history included); a rerun resumes from the last one and ends at ``steps``. The final model is written atomically
(safetensors + tokenizer + ``grpo.json``) and a finished one is reused on rerun.

``grpo.json`` records the settings, the rewards, the TRL batch mapping, the steps, the seconds, the per-step log
history (TRL's ``reward``, ``rewards/<name>/mean``, ``completions/mean_length``, ``kl``, ``loss``, ...; logged every
step) and the seconds the InDiv reward took (``InDivReward.seconds`` of this session, and their sum over the
logged steps of every session); ``training_curves`` turns it into a table for plotting.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

from hsir.config import GRPO_DTYPES, GRPO_ROLLOUTS, INDIV_VARIANTS, GRPOSettings, settings_from
from hsir.generate import make_generator
from hsir.progress import train_callbacks
from hsir.rewards import make_rewards
from hsir.runs import read_json, versions
from hsir.tasks import Problem, Task
from hsir.train import (
    last_checkpoint,
    resolve_bf16,
    resolve_weights,
    run_trainer,
    score_completion_tokens_only,
    settle_attention,
    trl_args,
    use_masters,
)

ROLLOUTS, DTYPES = GRPO_ROLLOUTS, GRPO_DTYPES


def grpo_settings(cfg) -> GRPOSettings:
    """``cfg.grpo`` as ``GRPOSettings``, strictly (an unknown key fails, naming it); ``max_completion_length``
    and ``seed`` default to the loop's ``max_new_tokens`` and ``seed``."""
    s = settings_from(GRPOSettings, getattr(cfg, "grpo", None) or {}, "grpo")
    return replace(s, max_completion_length=s.max_completion_length or cfg.max_new_tokens,
                   seed=cfg.seed if s.seed is None else s.seed)


def resolve_rollouts(rollouts: str) -> str:
    """``auto`` → ``vllm-colocate`` on a CUDA GPU where vLLM imports, ``engine`` on a CPU where it imports, else
    ``transformers``."""
    if rollouts != "auto":
        return rollouts
    import torch

    if importlib.util.find_spec("vllm") is None:
        return "transformers"
    try:
        import vllm  # noqa: F401
    except Exception:  # a broken install (e.g. mismatched torchvision) falls back to transformers
        return "transformers"
    return "vllm-colocate" if torch.cuda.is_available() else "engine"


def rollout_args(rollouts: str, settings: GRPOSettings) -> dict:
    """GRPOConfig's generation-backend arguments for a resolved ``rollouts`` value."""
    if rollouts in ("transformers", "engine"):  # engine: TRL's rollout_func (EngineRollouts), not its vLLM
        return {"use_vllm": False}
    if rollouts == "vllm-colocate":
        return {"use_vllm": True, "vllm_mode": "colocate",
                "vllm_gpu_memory_utilization": settings.vllm_gpu_memory_utilization}
    if rollouts == "vllm-server":
        extra = {"vllm_server_base_url": settings.vllm_server_url} if settings.vllm_server_url else {}
        return {"use_vllm": True, "vllm_mode": "server"} | extra
    raise ValueError(f"grpo: rollouts {rollouts!r} unknown; valid: {list(ROLLOUTS)}")


def grpo_args(settings: GRPOSettings, output_dir: str | Path, reward_weights: Sequence[float],
              rollouts: str = "transformers", batch: dict | None = None):
    """TRL's ``GRPOConfig`` for ``settings`` (``hsir.train.trl_args`` plus the GRPO arguments and the batch
    mapping of the module's docstring), logging every step."""
    from trl import GRPOConfig

    batch = batch or settings.trl_batch()
    view = SimpleNamespace(**asdict(settings), epochs=1.0, batch_size=batch["per_device_train_batch_size"],
                           grad_accum=batch["gradient_accumulation_steps"],  # the attributes trl_args reads
                           micro_batch_size=batch["per_device_train_batch_size"])
    args = trl_args(GRPOConfig, output_dir, view, max_steps=settings.steps, num_generations=settings.num_generations,
                    max_completion_length=settings.max_completion_length, temperature=settings.temperature,
                    beta=settings.beta, epsilon=settings.epsilon, loss_type=settings.loss_type,
                    reward_weights=list(reward_weights), remove_unused_columns=False, logging_steps=1,  # curves: every step
                    **rollout_args(resolve_rollouts(rollouts), settings))
    if args.generation_batch_size != batch["generation_batch_size"]:
        raise RuntimeError(f"TRL derived generation_batch_size={args.generation_batch_size}, expected "
                           f"{batch['generation_batch_size']} (prompts_per_step × G)")
    return args


def grpo_dataset(task: Task, problems: Sequence[Problem]) -> list[dict]:
    """GRPO rows: a conversational ``prompt`` (the task's zero-shot messages), ``qid``, ``answer`` (a string), and
    ``choices`` (label → text, as a JSON string) when the task's problems have options."""
    if not problems:
        raise ValueError(f"{task.name}: no problems to build GRPO prompts from")
    with_choices = task.kind == "choice" or any(p.choices for p in problems)
    rows = []
    for p in problems:
        row = {"prompt": task.messages(p), "qid": str(p.qid), "answer": str(p.answer)}
        if with_choices:
            row["choices"] = json.dumps(p.choices or {}, ensure_ascii=False)
        rows.append(row)
    return rows


def learnable_problems(problems: Sequence[Problem], samples: Sequence[dict]) -> list[Problem]:
    """The problems whose ``samples`` (rows with ``qid`` and ``correct``: M0's K samples of the loop) hold both a
    correct and an incorrect solution, in ``problems``' order. GRPO's advantage is a reward minus its group's mean:
    a prompt the start model always fails (or always solves) gives G equal rewards and no gradient, and a model
    that solves 5% of D_u spends most steps on such prompts (README, pilot 5)."""
    right: dict[str, set[bool]] = {}
    for r in samples:
        right.setdefault(str(r["qid"]), set()).add(bool(r["correct"]))
    return [p for p in problems if right.get(str(p.qid)) == {True, False}]


def start_key(method) -> str:
    """The model a GRPO method's round trains from, as the loop keys models: ``m0``, or the first round of the method
    it starts from (``HSIR-SFT/iter_1`` for Table 7's HSIR-SFT + H-GRPO)."""
    return "m0" if method.init == "m0" else f"{method.init}/iter_1"


def build_rewards(method, cfg, settings: GRPOSettings, task: Task, model, tokenizer) -> tuple[list, list[float]]:
    """The reward objects of ``method.rewards`` (TRL's ``reward_funcs``) and their weights (``reward_weights``);
    the InDiv reward holds ``model`` (the policy handed to the trainer) and the profile's InDiv variant."""
    if not method.rewards:
        raise ValueError(f"method {method.name!r} has no rewards to train GRPO with")
    names = [n for n, _ in method.rewards]
    rewards = make_rewards(names, task=task, num_generations=settings.num_generations,
                           max_completion_length=settings.max_completion_length, tokenizer=tokenizer, model=model,
                           variant=INDIV_VARIANTS[cfg.indiv_variant], max_tokens=getattr(cfg, "max_indiv_tokens", None))
    return rewards, [float(w) for _, w in method.rewards]


class EngineRollouts:
    """TRL's ``rollout_func`` over the kit's vLLM engine (``rollouts: engine``).

    TRL hands it the step's prompts, each already repeated G times (its ``RepeatSampler``), and trains on the
    token ids it returns. Before the first rollout of each optimizer step, the policy's current weights are
    written to ``sync_dir`` and swapped into the running engine (``VLLMGenerator.load_weights``), so rollouts stay
    on-policy. Each prompt copy is one request with its own seed (derived from the run's seed, the step and its
    position), so a resumed run samples what the uninterrupted one would have; sampling is TRL's: the rollout
    temperature, no top-p/top-k, no stop string, up to ``max_completion_length`` tokens. The sampled tokens'
    log-probabilities go back to TRL (it reads them only for its off-policy corrections).

    ``engine``: the loop's running ``hsir.generate.Engine`` (its generator is reused and marked as holding
    other weights afterwards); None starts a vLLM engine on ``start`` and ``close()`` shuts it."""

    def __init__(self, start: str, cfg, settings: GRPOSettings, sync_dir: str | Path, resumed: bool,
                 engine=None):
        self.settings, self.sync_dir, self.engine = settings, Path(sync_dir), engine
        if engine is not None:
            self.gen = engine.use(start)
        else:
            self.gen = make_generator(start, backend="vllm", dtype=cfg.dtype, seed=settings.seed, progress=False,
                                      **(getattr(cfg, "engine", None) or {}))
        if not hasattr(self.gen, "llm"):
            raise ValueError(f"grpo: rollouts 'engine' samples with vLLM; the engine given is {type(self.gen).__name__}")
        self.loaded_step = None if resumed else 0  # a resumed policy is not the engine's start weights
        self.sync_seconds = self.generate_seconds = 0.0
        self.tokens = self.syncs = 0

    def sync(self, trainer) -> None:
        t0 = time.perf_counter()
        if self.engine is not None:
            self.engine.current = None  # the engine's weights are no longer any saved model's
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(self.sync_dir, safe_serialization=True)
        self.gen.load_weights(str(self.sync_dir))
        self.loaded_step = trainer.state.global_step
        self.sync_seconds += time.perf_counter() - t0
        self.syncs += 1

    def __call__(self, prompts: list, trainer) -> dict:
        from vllm import SamplingParams

        if trainer.state.global_step != self.loaded_step:
            self.sync(trainer)
        t0 = time.perf_counter()
        tok = trainer.processing_class
        prompt_ids = tok.apply_chat_template(conversation=prompts, add_generation_prompt=True, tokenize=True,
                                             return_dict=True, **(getattr(trainer, "chat_template_kwargs", None) or {})
                                             )["input_ids"]
        s, base = self.settings, (self.settings.seed * 1_000_003 + trainer.state.global_step) * 10_007
        params = [SamplingParams(n=1, temperature=s.temperature, max_tokens=s.max_completion_length, logprobs=0,
                                 seed=base + i, detokenize=False) for i in range(len(prompt_ids))]
        outs = self.gen.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)
        completion_ids, logprobs = [], []
        for res in outs:
            o = res.outputs[0]
            ids = list(o.token_ids)
            completion_ids.append(ids)
            logprobs.append([o.logprobs[k][t].logprob for k, t in enumerate(ids)])
        self.tokens += sum(map(len, completion_ids))
        self.generate_seconds += time.perf_counter() - t0
        return {"prompt_ids": [list(ids) for ids in prompt_ids], "completion_ids": completion_ids,
                "logprobs": logprobs}

    def report(self) -> dict:
        return {"engine": "the loop's" if self.engine is not None else "own",
                "startup_seconds": None if self.engine is not None else round(self.gen.stats.startup_seconds, 1),
                "syncs": self.syncs, "sync_seconds": round(self.sync_seconds, 3),
                "generate_seconds": round(self.generate_seconds, 3), "tokens": self.tokens}

    def close(self) -> None:
        shutil.rmtree(self.sync_dir, ignore_errors=True)
        if self.engine is None:
            self.gen.close()


def train_grpo(method, cfg, data, start: str, out_dir: str | Path, callbacks: Sequence = (), engine=None) -> Path:
    """Train ``start`` (a model folder or spec) with GRPO on ``data.unlabeled``'s prompts and ``method``'s rewards,
    under ``cfg.grpo`` (``GRPOSettings``); returns the trained model's folder ``out_dir``. ``engine``: the loop's
    running ``Engine``, which ``rollouts: engine`` samples with instead of starting a vLLM engine of its own.

    Resumes from ``<out_dir>.checkpoints`` after a kill; a finished ``out_dir`` is returned as it is."""
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    from hsir.models import load_model
    from hsir.precision import to_bf16_with_masters

    settings = grpo_settings(cfg)  # first: a bad setting fails before any work
    out = Path(out_dir)
    if (out / "model.safetensors").exists():
        return out
    rows = grpo_dataset(data.task, data.unlabeled)
    settings = resolve_bf16(settings)
    rollouts = resolve_rollouts(settings.rollouts)
    batch = settings.trl_batch(int(os.environ.get("WORLD_SIZE", "1")))
    if rollouts == "engine" and batch["num_processes"] > 1:  # one engine and one weight folder per run
        if settings.rollouts != "auto":
            raise ValueError("grpo: rollouts 'engine' runs in one process; use vllm-server or vllm-colocate for "
                             f"{batch['num_processes']} processes")
        rollouts = "transformers"
    ckpt_dir = out.parent / f"{out.name}.checkpoints"

    score_completion_tokens_only()
    gpu = torch.cuda.is_available()
    settings = replace(settings, weights="bf16" if settings.dtype == "bf16" else resolve_weights(settings, gpu),
                       row_passes=not gpu if settings.row_passes is None else settings.row_passes)
    attn = None if settings.attn_implementation == "auto" else settings.attn_implementation  # "auto": set below
    model, tok = load_model(start, dtype=settings.dtype, device="cpu", attn_implementation=attn)
    settings = settle_attention(model, settings, batch["per_device_train_batch_size"],
                                lambda: longest_prompt(tok, rows) + settings.max_completion_length,
                                cpu_bf16=settings.bf16 and not gpu)
    # before the trainer: TRL builds the KL reference in the policy's dtype and attention
    masters = to_bf16_with_masters(model) if settings.weights == "bf16" and settings.dtype == "fp32" else {}
    model.train()
    rewards, weights = build_rewards(method, cfg, settings, data.task, model, tok)
    args = grpo_args(settings, ckpt_dir, weights, rollouts, batch)
    last = last_checkpoint(ckpt_dir)
    roll = (EngineRollouts(start, cfg, settings, ckpt_dir / "engine-weights", resumed=last is not None, engine=engine)
            if rollouts == "engine" else None)
    if roll is not None:
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func's "experimental" warning, once a run
    trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tok, rollout_func=roll,
                          callbacks=[*callbacks, *train_callbacks(f"GRPO {Path(out_dir).name}")])
    restore = use_masters(trainer, args, masters, model)
    if settings.row_passes:
        score_rows_unpadded(trainer)
    time_phases(trainer)
    indiv = next((r for r in rewards if getattr(r, "name", None) == "indiv"), None)

    def summary(result, seconds: float) -> dict:
        log = trainer.state.log_history
        return {
            "method": method.name, "start": str(start), "prompts": len(rows), "task": data.task.name,
            "settings": asdict(settings) | {"rollouts": rollouts}, "rewards": [list(r) for r in method.rewards],
            "rollout_engine": None if roll is None else roll.report(),
            "trl_batch": batch, "steps": result.global_step, "train_loss": result.training_loss,
            "seconds": round(seconds, 1), "resumed_from": last,
            "step_seconds": round(sum(e.get("step_time", 0.0) for e in log), 3),
            "indiv_seconds": None if indiv is None else round(indiv.seconds, 3),
            "indiv_calls": None if indiv is None else indiv.calls,
            "indiv_seconds_logged": None if indiv is None else round(sum(e.get("indiv/seconds", 0.0) for e in log), 3),
            "versions": versions(), "device": "cuda" if torch.cuda.is_available() else "cpu", "log": log}

    def cleanup() -> None:
        if restore is not None:
            restore()
        if roll is not None:
            roll.close()

    return run_trainer(trainer, tok, out, ckpt_dir, last, "grpo.json", summary, cleanup=cleanup)


def longest_prompt(tok, rows: Sequence[dict]) -> int:
    """Tokens of the longest chat-formatted prompt of ``rows`` (``grpo_dataset``'s)."""
    ids = tok.apply_chat_template(conversation=[r["prompt"] for r in rows], add_generation_prompt=True, tokenize=True,
                                  return_dict=True)["input_ids"]
    return max(map(len, ids))


def score_rows_unpadded(trainer) -> None:
    """Score each rollout in a pass of its own, cut to its tokens, instead of TRL's padded passes (``row_passes``).

    TRL pads a generation batch's prompts on the left and its completions on the right to the longest of the
    batch, and its forward passes (the policy's, with gradients, and the KL reference's) run over every padded
    position, which rollouts of very different lengths make a large share of the step. A row's
    tokens form one span of its attention mask; the pass over that span alone gives the same log-probabilities
    (RoPE depends on relative positions only, and TRL passes no position ids), which go back into TRL's padded
    layout with zeros where the completion mask is 0 (the loss reads only the mask's positions). On a CPU one row a
    pass costs nothing in throughput (SFT's one row a pass matched packed rows on AVX2); on a GPU the padded batch is
    the faster layout. Text models only: a call with images goes to TRL's own."""
    import torch
    import torch.nn.functional as F

    padded = trainer._get_per_token_logps_and_entropies

    def by_row(model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False,
               compute_aux_loss=False, **multimodal):
        if any(v is not None for v in multimodal.values()):
            return padded(model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                          compute_aux_loss, **multimodal)
        start = input_ids.size(1) - logits_to_keep  # the first completion column
        logps, entropies, aux = [], [], []
        for i in range(input_ids.size(0)):
            cols = attention_mask[i].nonzero().flatten()
            a, b = int(cols[0]), int(cols[-1]) + 1
            keep = max(b - start, 1)
            lp, ent, ax = padded(model, input_ids[i:i + 1, a:b], attention_mask[i:i + 1, a:b], keep,
                                 compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss)
            logps.append(F.pad(lp, (0, logits_to_keep - keep)))
            if ent is not None:
                entropies.append(F.pad(ent, (0, logits_to_keep - keep)))
            if ax is not None:
                aux.append(ax)
        return (torch.cat(logps), torch.cat(entropies) if compute_entropy else None,
                torch.stack(aux).mean() if aux else None)

    trainer._get_per_token_logps_and_entropies = by_row


# TRL's methods whose seconds each step logs as time/<phase>: the rollouts (TRL's generation or the engine's
# rollout_func), the rewards, and the whole generation batch (rollouts, rewards, and the no-grad passes that score
# the rollouts: the KL reference's log-probabilities). The rest of TRL's step_time is the update's forward and
# backward passes; the optimizer step itself runs outside TRL's step_time (transformers' loop), as it did before.
PHASES = {"_generate": "rollout", "_calculate_rewards": "rewards", "_generate_and_score_completions": "generation"}


def time_phases(trainer) -> None:
    """Log each step's seconds in the phases of ``PHASES`` with TRL's metrics (``time/rollout``, ...), so a step's
    time splits into rollout, rewards, scoring (generation − rollout − rewards) and update (step_time −
    generation): ``phase_split``."""
    def timer(fn, key: str):
        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                trainer._metrics["train" if trainer.model.training else "eval"][key].append(time.perf_counter() - t0)

        return timed

    for attr, phase in PHASES.items():
        setattr(trainer, attr, timer(getattr(trainer, attr), f"time/{phase}"))


def phase_split(entry: dict) -> dict | None:
    """One logged step's seconds split into rollout, rewards, scoring and update (``time_phases``); None for a
    step logged without them."""
    if not all(f"time/{p}" in entry for p in PHASES.values()) or "step_time" not in entry:
        return None
    rollout, rewards, generation = (entry[f"time/{p}"] for p in ("rollout", "rewards", "generation"))
    return {"rollout": rollout, "rewards": rewards, "scoring": generation - rollout - rewards,
            "update": entry["step_time"] - generation, "step": entry["step_time"]}


def grpo_report(model_dir: str | Path) -> dict:
    """What ``train_grpo`` recorded next to the model."""
    return read_json(Path(model_dir) / "grpo.json")


def ledger_entry(model_dir: str | Path) -> dict:
    """What a GRPO run cost, for the loop's ledger: optimizer steps, rollout tokens generated (Σ over the logged
    steps of mean completion length × completions per step) and the seconds the InDiv reward took."""
    rep = grpo_report(model_dir)
    per_step = rep["trl_batch"]["generation_batch_size"]
    tokens = sum(e.get("completions/mean_length", 0.0) * per_step for e in rep["log"] if "reward" in e)
    return {"steps": rep["steps"], "tokens": int(round(tokens)), "indiv_seconds": rep["indiv_seconds_logged"]}


def curves_from_log(log: Sequence[dict]) -> list[dict]:
    """One row per logged training step: the total reward, each reward part (``reward/<name>``), the mean
    completion length, the share cut by the limit, KL, loss and (H-GRPO) the mean raw InDiv."""
    keys = {"reward": "reward", "reward_std": "reward_std", "completions/mean_length": "completion_length",
            "completions/clipped_ratio": "clipped_ratio", "kl": "kl", "loss": "loss", "entropy": "entropy",
            "indiv/raw_mean": "indiv_raw", "indiv/seconds": "indiv_seconds", "step_time": "step_seconds"}
    rows = []
    for e in log:
        if "reward" not in e:  # the final train summary and any other non-step entry
            continue
        row = {"step": int(e["step"])}
        for k, v in e.items():
            if k in keys:
                row[keys[k]] = v
            elif k.startswith("rewards/") and k.endswith("/mean"):
                row[f"reward/{k[len('rewards/'):-len('/mean')]}"] = v
        rows.append(row)
    return rows


def training_curves(run_root: str | Path, methods: Sequence[str]):
    """Per-step curves of each method's GRPO run (``<run_root>/methods/<method>/iter_1/model/grpo.json``) as one
    DataFrame with a ``method`` column; methods without a finished run are left out."""
    import pandas as pd

    frames = []
    for name in methods:
        path = Path(run_root) / "methods" / name / "iter_1" / "model" / "grpo.json"
        if path.exists():
            frames.append(pd.DataFrame(curves_from_log(read_json(path)["log"])).assign(method=name))
    if not frames:
        return pd.DataFrame(columns=["method", "step", "reward", "completion_length", "kl"])
    df = pd.concat(frames, ignore_index=True)
    return df[["method", "step"] + [c for c in df.columns if c not in ("method", "step")]]

