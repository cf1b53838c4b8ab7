"""Settings: where things live, the typed settings of every stage, and a profile's loop settings.

A leaf: it imports nothing from the kit, so the loop, the reports and the benches all read a profile's settings
without importing each other. Settings are frozen dataclasses built strictly (``settings_from``): an unknown key
fails, naming it and the valid ones, before any work starts.

Where things live: the kit's folder (``ROOT``), the cache of models and data (``$HSIR_CACHE_DIR``, default
``~/.cache/hsir``), a profile's runs (``$HSIR_RUNS_DIR/<profile>``, default ``runs/<profile>``) and figures
(``$HSIR_FIGURES_DIR/<profile>``, default ``figures/<profile>``). The two variables let a test or a second
checkout run a profile's notebooks without touching the kit's own folders.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Models and data fetched or converted once (``$HSIR_CACHE_DIR``, default ``~/.cache/hsir``)."""
    return Path(os.environ.get("HSIR_CACHE_DIR") or Path.home() / ".cache" / "hsir")


def runs_dir(profile: str) -> Path:
    """A profile's run artifacts: ``$HSIR_RUNS_DIR/<profile>``, default ``runs/<profile>`` in the kit."""
    return Path(os.environ.get("HSIR_RUNS_DIR") or ROOT / "runs") / profile


def figures_dir(profile: str) -> Path:
    """A profile's figures and tables: ``$HSIR_FIGURES_DIR/<profile>``, default ``figures/<profile>``."""
    return Path(os.environ.get("HSIR_FIGURES_DIR") or ROOT / "figures") / profile


def kit_path(path: str | Path) -> str:
    """A path as reports print it: relative to the kit where it lies inside, else whole."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def settings_from(cls, values: dict | None, where: str = "settings"):
    """A settings dataclass from a dict; an unknown key is an error naming it and the valid ones."""
    values = dict(values or {})
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {valid}")
    return cls(**values)


def digest(obj) -> str:
    """A short, stable hash of a JSON-able object (the key of a cached generation or score file)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def parse_sets(items: Sequence[str]) -> dict:
    """``KEY=VALUE`` overrides of the loop settings; a VALUE that parses as JSON is taken as such (T=2, sft={...})."""
    overrides = {}
    for item in items:
        k, _, v = item.partition("=")
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    return overrides


# ------------------------------------------------------------------------------------------------ names

STEP_TESTS = ("text", "result")  # VeriExit's step tests (hsir.answers.states_answer): the paper's text match, a result match

# InDiv's variants (hsir.indiv), the ones the analysis notebook compares: name -> (weighting, norm, form, granularity).
INDIV_VARIANTS = {
    "token/plain": ("none", "max", "gram", "token"),
    "token/self-max (default)": ("self", "max", "gram", "token"),
    "token/self-mean": ("self", "mean", "gram", "token"),
    "token/received-max": ("received", "max", "gram", "token"),
    "token/received-mean": ("received", "mean", "gram", "token"),
    "token/covariance": ("none", "max", "covariance", "token"),
    "step/plain": ("none", "max", "gram", "step"),
    "step/self-max": ("self", "max", "gram", "step"),
    "step/received-max": ("received", "max", "gram", "step"),
}


# ------------------------------------------------------------------------------------------------ training

WEIGHTS = ("auto", "fp32", "bf16")  # SFTSettings.weights


@dataclass(frozen=True)
class SFTSettings:
    """One SFT run (paper Eq.1) with TRL (``hsir.train``)."""

    lr: float = 1e-4
    epochs: float = 1.0
    batch_size: int = 8  # rows per optimizer step, per process
    grad_accum: int = 1
    # Rows per forward pass; the step still averages over batch_size rows (accumulated), so the update is the
    # same. None: on a GPU the rows that fit its free memory (hsir.train.gpu_pass_plan, hsir.memory); on a CPU two
    # padding-free rows packed a pass (hsir.train.CPU_PACKED_ROWS, +5-18% on AVX512-BF16), one for padded rows; one
    # row at a time was the fastest and smallest on AVX2
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
    # instead of padded to the longest: the same loss without the padding's compute. ``python -m hsir.bench train``.
    # It needs a varlen attention kernel (flash-attention) to pay on a GPU: with SDPA, transformers masks the whole
    # concatenated pass, 2.8x slower than padded passes grouped by length on an H200 (bench/paper-shape-h200.json)
    padding_free: bool = True
    # transformers' attention: None for the model's own (SDPA); "eager" was +4-15% on a 2-core AVX512-BF16 CPU
    # (bench/train-avx512bf16.json) but holds the row length squared per layer; on a GPU e.g. "flash_attention_2".
    # "auto": eager on a CPU with native bf16 where a pass's attention matrices fit EAGER_ATTENTION_GIB
    # (hsir.train), else the model's own
    attn_implementation: str | None = "auto"
    # the weights the passes run on: "fp32" (bf16 autocast where the hardware has bf16), "bf16" (bf16 weights, fp32
    # master copies in the optimizer: hsir.precision), "auto" (bf16 on a CPU with native bf16, else fp32)
    weights: str = "auto"
    # each step is still a random draw of batch_size rows (a seeded permutation per epoch, cut into steps), but its
    # passes take them longest first, so a padded pass holds rows of similar length (hsir.train.StepSortedSampler;
    # the paper profile's GPU layout). SFT only: TRL's DPO pairs are padded as they come
    group_by_length: bool = False
    # torch.compile of the passes (transformers' ``torch_compile``). Off: on a 2-core AVX512-BF16 CPU a real embedded
    # SFT round (68 steps) took 388.7 s eager, 393.4 s compiled on a warm compile cache and 581.2 s on an empty one
    # (compiled steps 1.10x; first step 50 s warm, 229 s cold; README "Training speed"): repaid after ~70 steps warm,
    # ~400 cold, where the embedded profile's runs have 13-99. ``python -m hsir.bench train --only default
    # default-compiled default-compiled-warm`` measures it with its compilation
    torch_compile: bool = False

    def __post_init__(self):
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights {self.weights!r} unknown; valid: {list(WEIGHTS)}")


@dataclass(frozen=True)
class DPOSettings(SFTSettings):
    """DPO + NLL (paper Eq.2): L = -log σ(β·margin) + α·NLL(winner), the policy and the reference both M_{t-1}."""

    lr: float = 1e-6  # paper: 1e-6 (2e-7 at 7-8B)
    batch_size: int = 16  # paper: 16
    padding_free: bool = False  # not passed to TRL's DPOTrainer: its pairs are padded
    beta: float = 0.1
    nll_weight: float = 0.5  # α
    epochs: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        if self.group_by_length:
            raise ValueError("dpo: group_by_length is for SFT rows; TRL's DPO pairs have no single length to sort by")


GRPO_ROLLOUTS = ("auto", "transformers", "vllm-colocate", "vllm-server", "engine")
GRPO_DTYPES = ("fp32", "bf16")
GRPO_PROMPTS = ("all", "learnable")


@dataclass(frozen=True)
class GRPOSettings:
    """One GRPO run's settings (``LoopConfig.grpo``, i.e. the ``grpo:`` mapping of ``selfimprove.yaml``).

    ``max_completion_length`` and ``seed`` default to the loop's ``max_new_tokens`` and ``seed``
    (``hsir.grpo.grpo_settings``). The TRL batch sizes are derived, not set: see ``hsir.grpo``'s docstring."""

    steps: int = 300  # optimizer steps (paper: 300)
    lr: float = 1e-6  # paper: 1e-6
    prompts_per_step: int = 14  # prompts per optimizer step (the paper's "batch size 14")
    num_generations: int = 8  # G, rollouts per prompt (paper: 8)
    prompts_per_micro_batch: int = 1  # prompts (each with its G rollouts) per forward/backward pass
    beta: float = 0.04  # KL weight (k3 estimator)
    epsilon: float = 0.2  # clipping range
    loss_type: str = "dapo"  # token-level loss (paper Eq.6)
    max_completion_length: int | None = None  # None: the loop's max_new_tokens (paper: 2,048)
    temperature: float = 1.0  # rollout temperature
    warmup: float = 0.0  # a fraction of the steps
    weight_decay: float = 0.0
    save_every: int = 25  # optimizer steps between checkpoints a killed run resumes from
    seed: int | None = None  # None: the loop's seed
    bf16: bool | None = None  # autocast; None: where the hardware runs bf16 natively
    dtype: str = "fp32"  # the policy's (master) weights: fp32, or bf16 to save memory at the cost of small updates
    # the weights the policy's and the reference's passes run on, as SFTSettings.weights: "bf16" (bf16 weights, fp32
    # masters in the optimizer where dtype is fp32), "fp32", "auto" (bf16 on a CPU with native bf16, else fp32)
    weights: str = "auto"
    # as SFTSettings.attn_implementation; "auto" measures a pass as prompts_per_micro_batch × G rollouts of the
    # longest prompt plus max_completion_length tokens
    attn_implementation: str | None = "auto"
    # one forward pass per rollout, cut to its own tokens, instead of TRL's passes padded to the batch's longest
    # (hsir.grpo.score_rows_unpadded); None: on a CPU
    row_passes: bool | None = None
    rollouts: str = "auto"  # auto | transformers | vllm-colocate | vllm-server | engine
    vllm_gpu_memory_utilization: float = 0.3  # vllm-colocate: the GPU share vLLM may take
    vllm_server_url: str | None = None  # vllm-server: e.g. http://localhost:8000 (None: TRL's default host/port)
    # which D_u queries are prompts: "all", or "learnable": those where M0's K loop samples were neither all wrong nor
    # all right (hsir.grpo.learnable_problems), so that a group of G rollouts can have an advantage at all. The same
    # set for every GRPO row of a seed, whatever it starts from (M0's samples of that seed, shared with the SFT rows').
    prompts: str = "all"

    def __post_init__(self):
        for name in ("steps", "prompts_per_step", "prompts_per_micro_batch", "save_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"grpo: {name} must be ≥ 1; got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ValueError(f"grpo: num_generations must be ≥ 2 (a group's std needs two rollouts); got "
                             f"{self.num_generations}")
        if self.prompts_per_step % self.prompts_per_micro_batch:
            raise ValueError(f"grpo: prompts_per_step ({self.prompts_per_step}) must be a multiple of "
                             f"prompts_per_micro_batch ({self.prompts_per_micro_batch})")
        if self.rollouts not in GRPO_ROLLOUTS:
            raise ValueError(f"grpo: rollouts {self.rollouts!r} unknown; valid: {list(GRPO_ROLLOUTS)}")
        if self.prompts not in GRPO_PROMPTS:
            raise ValueError(f"grpo: prompts {self.prompts!r} unknown; valid: {list(GRPO_PROMPTS)}")
        if self.dtype not in GRPO_DTYPES:
            raise ValueError(f"grpo: dtype {self.dtype!r} unknown; valid: {list(GRPO_DTYPES)}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"grpo: weights {self.weights!r} unknown; valid: {list(WEIGHTS)}")
        if self.dtype == "bf16" and self.weights == "fp32":
            raise ValueError("grpo: weights 'fp32' needs dtype 'fp32' (dtype 'bf16' keeps bf16 weights)")
        if self.max_completion_length is not None and self.max_completion_length < 1:
            raise ValueError(f"grpo: max_completion_length must be ≥ 1; got {self.max_completion_length}")

    def trl_batch(self, num_processes: int = 1) -> dict:
        """TRL's batch arguments for this run on ``num_processes`` processes (see ``hsir.grpo``'s docstring)."""
        per_step = self.prompts_per_micro_batch * num_processes
        if self.prompts_per_step % per_step:
            raise ValueError(f"grpo: prompts_per_step ({self.prompts_per_step}) must be a multiple of "
                             f"prompts_per_micro_batch × processes ({self.prompts_per_micro_batch} × {num_processes})")
        return {"per_device_train_batch_size": self.prompts_per_micro_batch * self.num_generations,
                "gradient_accumulation_steps": self.prompts_per_step // per_step,
                "generation_batch_size": self.prompts_per_step * self.num_generations,
                "num_processes": num_processes}


# ------------------------------------------------------------------------------------------------ the loop

@dataclass(frozen=True)
class LoopConfig:
    """A profile's settings for the loop (``params/<profile>/selfimprove.yaml``); every knob the paper names."""

    profile: str = "smoke"
    model: str = "smoke:tiny-llama"  # M, the base model
    task: str = "synthetic"
    seed_split: str = "seed"  # D_s (has traces)
    unlabeled_split: str = "unlabeled"  # D_u (answers only)
    test_split: str = "test"
    n_seed: int = 400
    n_unlabeled: int = 128
    n_test: int = 128
    data_seed: int = 0  # which n_seed rows D_s draws (hsir.loopdata.seed_draw); not the sampling seed
    allow_fewer_seed_rows: bool = False  # train M0 on fewer seed rows than n_seed when the split has fewer
    K: int = 8  # samples per query (paper: 10)
    J: int = 4  # continuations per VeriExit prefix / hinted resamples per failed query (paper: 5)
    T: int = 1  # rounds of an iterative method (paper: 3 for Qwen2.5, else 1)
    temperature: float = 1.0
    max_new_tokens: int = 384  # sampling (paper: 2,048)
    eval_max_new_tokens: int = 384  # greedy evaluation (paper: 4,096)
    # test problems per generation call of the greedy evaluation, and the unit it resumes by. Greedy texts depend on
    # the batch a problem shares (vLLM on a CPU: 8 of 512 differed between 64 and 256), so a folder's answers are made
    # at one size: it is part of a folder's identity. Bigger calls fill the engine's batch; ``python -m hsir.bench
    # eval-chunk`` measures the speed and the agreement
    eval_chunk: int = 64
    extraction: str = "strict"  # the paper's: only the <answer> block counts | lenient: the kit's fallbacks too
    step_test: str = "text"  # VeriExit's "does this step state the answer": text (paper) | result
    indiv_variant: str = "token/self-max (default)"  # a key of INDIV_VARIANTS
    tau: float | str = -0.5  # a number (paper) or a quantile of the round's candidates ("q0.26")
    max_indiv_tokens: int | None = 2048
    length_cutoff: float = 0.5  # the length-driven ablation
    embedder: str = "embedded:all-minilm-l6-v2"  # Eq.3 (paper: BAAI/bge-m3)
    m0_sft: dict = field(default_factory=dict)  # SFTSettings of SFT-Initial (M0)
    sft: dict = field(default_factory=dict)  # SFTSettings of each round
    dpo: dict = field(default_factory=dict)  # DPOSettings of each DPO round (hsir.train)
    grpo: dict = field(default_factory=dict)  # GRPOSettings of a GRPO run (hsir.grpo)
    backend: str = "auto"
    dtype: str = "auto"
    engine: dict = field(default_factory=dict)  # extra arguments of the generation backend
    seed: int = 0
    data_dir: str | None = None
    root: str | None = None  # None: runs/<profile> (``runs_dir``)

    def __post_init__(self):
        if self.indiv_variant not in INDIV_VARIANTS:
            raise ValueError(f"indiv_variant {self.indiv_variant!r} unknown; valid: {list(INDIV_VARIANTS)}")
        if self.eval_chunk < 1:
            raise ValueError(f"eval_chunk must be at least 1, got {self.eval_chunk}")
        if self.extraction not in ("strict", "lenient"):
            raise ValueError(f"extraction {self.extraction!r} unknown; valid: ['strict', 'lenient']")
        if self.step_test not in STEP_TESTS:
            raise ValueError(f"step_test {self.step_test!r} unknown; valid: {list(STEP_TESTS)}")
        settings_from(SFTSettings, self.m0_sft, "m0_sft")
        settings_from(SFTSettings, self.sft, "sft")
        settings_from(DPOSettings, self.dpo, "dpo")
        settings_from(GRPOSettings, self.grpo, "grpo")

    @property
    def run_root(self) -> Path:
        return Path(self.root) if self.root else runs_dir(self.profile)


def load_config(profile: str, overrides: dict | None = None) -> LoopConfig:
    """``params/<profile>/selfimprove.yaml`` with ``overrides`` on top; an unknown key fails, naming it."""
    import yaml

    path = ROOT / "params" / profile / "selfimprove.yaml"
    if not path.exists():
        raise FileNotFoundError(f"profile {profile!r} has no loop settings: {path} is missing")
    values = (yaml.safe_load(path.read_text()) or {}) | {"profile": profile} | dict(overrides or {})
    return settings_from(LoopConfig, values, str(path))
