"""GRPO rewards in TRL's reward-function form (DESIGN.md §2: GRPO, H-GRPO, Long2Short, CosFn).

Each reward is a callable that TRL 1.x's ``GRPOTrainer`` calls with keywords only::

    fn(prompts=..., completions=..., completion_ids=..., **dataset_columns,
       trainer_state=..., log_extra=..., log_metric=...)      # (+ environments=... with environment_factory)

and that returns one float per completion. ``prompts`` and ``completions`` are strings (standard format) or lists
of message dicts (conversational: the completion's text is ``completion[0]["content"]``); ``completion_ids`` are
the generated token ids, cut after the first EOS (which is kept). The G rollouts of one prompt are contiguous
(TRL's ``RepeatSampler`` repeats each prompt G times in a row), so the group rewards below normalise each run of
``num_generations`` consecutive rows, after checking that the batch holds whole groups (its length a multiple of
G, one ``qid`` per group, or one prompt per group when there is no ``qid`` column) and raising ``ValueError``
otherwise. With several processes each one scores its own slice, so that slice must hold whole groups too.

The kit's GRPO dataset carries ``qid`` and ``answer`` (the gold answer as a string) columns and, for choice tasks,
``choices`` (label -> text; a dict, a JSON string, or the hub's ``{"label": [...], "text": [...]}``).

- ``accuracy``: 1.0 when the task's scorer accepts the completion, else 0.0. A rollout cut by the length limit
  scores 0.0 whatever it says: it is *truncated* when it has ``max_completion_length`` or more generated tokens and
  its last token is not an EOS (or pad) token (TRL's own clipped-rollout test is the last-token half of that).
  Without ``max_completion_length`` no rollout counts as truncated; without any EOS id (none given and no
  tokenizer) a rollout at the limit counts as truncated even if it stopped there.
- ``format``: 1.0 when the whole completion is the ``<think>…</think>\\n<answer>…</answer>`` layout
  (``hsir.traces.has_format``), else 0.0; text only.
- ``long2short`` (Kimi 1.5): ``λ_i = 0.5 - (len_i - min)/(max - min)`` over the group, λ when correct,
  ``min(0, λ)`` when wrong; a group whose lengths are all equal gets λ = 0 for all (the formula is 0/0 there,
  and no rollout is shorter than another). Only the length term: add ``accuracy`` beside it.
- ``cosine`` (CosFn, Yang et al. 2025): ``r(t) = r_T + ½(r_0 - r_T)(1 + cos(π t / T))`` with T =
  ``max_completion_length``; correct r_0 = 2 → r_T = 1, wrong r_0 = -10 → r_T = 0, and -10 for a rollout cut by
  the limit (t ≥ T or truncated). It already encodes correctness, so it replaces ``accuracy``.
- ``indiv`` (H-GRPO): ``InDivReward`` holds the policy and scores each rollout with the kit's InDiv pass
  (``hsir.indiv``), then ``normalise_group``: ``InDiv_i / max_j InDiv_j`` over the group, or min-max within the
  group when a score is non-positive; see ``normalise_group`` for ties and NaN. H-GRPO is ``accuracy + format +
  0.2·indiv`` (``H_GRPO``, given to TRL as ``reward_weights``).

"Length" (Long2Short, CosFn) is the number of generated tokens, not counting a final EOS/pad token.
The pure group maths (``long2short``, ``cosine_reward``, ``normalise_group``) takes plain lists, for hand checks.
``REWARDS`` names every reward for the methods table; ``make_reward(name, **context)`` builds one from a shared
context dict, passing each reward only the keywords it takes.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from hsir.indiv import GRANULARITIES, NORMS, VARIANTS, WEIGHTINGS, indiv_scores
from hsir.tasks import Problem, Task, as_choices, get_task
from hsir.traces import has_format

INDIV_WEIGHT = 0.2  # λ of the H-GRPO reward
H_GRPO = (("accuracy", 1.0), ("format", 1.0), ("indiv", INDIV_WEIGHT))  # (reward, TRL reward_weights entry)
PAPER_VARIANT = VARIANTS["token/self-max (default)"]  # the paper's reading of Eq.4-5 (DESIGN.md §2, §7)
EMBEDDED_VARIANT = VARIANTS["step/received-max"]  # the variant that holds at matched length on the 135M model

CORRECT_RANGE = (2.0, 1.0)  # CosFn (r_0, r_T) for a correct rollout
WRONG_RANGE = (-10.0, 0.0)  # CosFn (r_0, r_T) for a wrong one
EXCEED_REWARD = -10.0  # CosFn for a rollout cut by the length limit


# ---------------------------------------------------------------- pure group maths

def long2short(lengths: Sequence[float], correct: Sequence[bool]) -> list[float]:
    """Kimi 1.5's length reward for one group: λ_i = 0.5 - (len_i - min)/(max - min); λ if correct, min(0, λ) if
    wrong. When every length is equal (zero range, including a group of one) λ = 0 for all."""
    lens = np.asarray(lengths, dtype=float)
    if len(lens) != len(correct):
        raise ValueError(f"{len(lens)} lengths for {len(correct)} correctness flags")
    if len(lens) == 0:
        return []
    lo, hi = lens.min(), lens.max()
    lam = np.zeros_like(lens) if hi == lo else 0.5 - (lens - lo) / (hi - lo)
    return [float(x) if c else float(min(0.0, x)) for x, c in zip(lam, correct, strict=True)]


def cosine_reward(lengths: Sequence[float], correct: Sequence[bool], max_len: int,
                  truncated: Sequence[bool] | None = None, correct_range: tuple[float, float] = CORRECT_RANGE,
                  wrong_range: tuple[float, float] = WRONG_RANGE, exceed: float = EXCEED_REWARD) -> list[float]:
    """CosFn per rollout: r(t) = r_T + ½(r_0 - r_T)(1 + cos(π t / T)), T = ``max_len``; ``exceed`` when t ≥ T or
    the rollout is flagged ``truncated``."""
    if max_len <= 0:
        raise ValueError(f"max_len must be positive; got {max_len}")
    truncated = [False] * len(lengths) if truncated is None else list(truncated)
    if not len(lengths) == len(correct) == len(truncated):
        raise ValueError(f"{len(lengths)} lengths, {len(correct)} correctness flags, {len(truncated)} truncation flags")
    out = []
    for t, c, cut in zip(lengths, correct, truncated, strict=True):
        if cut or t >= max_len:
            out.append(float(exceed))
            continue
        r0, rt = correct_range if c else wrong_range
        out.append(float(rt + 0.5 * (r0 - rt) * (1 + math.cos(math.pi * t / max_len))))
    return out


def normalise_group(scores: Sequence[float]) -> list[float]:
    """One group's InDiv scores mapped to [0, 1] for the H-GRPO reward.

    - every finite score positive: ``s / max`` (the paper's ``InDiv_i / max_j InDiv_j``);
    - any finite score ≤ 0: min-max, ``(s - min)/(max - min)``, since a ratio to the max is meaningless there;
    - all finite scores equal (zero range, or one score): 1.0 each, which is what ``s / max`` gives for equal
      positive scores, so the two branches agree; a constant term moves no GRPO advantage anyway;
    - NaN (a rollout too short to score) → 0.0, and it takes no part in the max or min.
    """
    s = np.asarray(scores, dtype=float)
    ok = np.isfinite(s)
    out = np.zeros_like(s)
    if not ok.any():
        return out.tolist()
    good = s[ok]
    lo, hi = good.min(), good.max()
    if lo > 0:
        out[ok] = good / hi
    elif hi == lo:
        out[ok] = 1.0
    else:
        out[ok] = (good - lo) / (hi - lo)
    return out.tolist()


def check_groups(n: int, num_generations: int, qids: Sequence | None = None, prompts: Sequence | None = None) -> list[range]:
    """The consecutive groups of ``num_generations`` rows in a batch of ``n``; ``ValueError`` unless the batch holds
    whole groups: n a multiple of G, and one qid per group (or, without qids, one prompt per group)."""
    g = int(num_generations)
    if g < 1:
        raise ValueError(f"num_generations must be ≥ 1; got {num_generations}")
    if n % g:
        raise ValueError(f"a batch of {n} completions does not hold whole groups of num_generations={g}; group "
                         "rewards need every prompt's G rollouts in one call (single process, or a per-process "
                         "batch that is a multiple of G)")
    groups = [range(i, i + g) for i in range(0, n, g)]
    keys, what = (qids, "qid") if qids is not None else (prompts, "prompt")
    if keys is not None:
        if len(keys) != n:
            raise ValueError(f"{len(keys)} {what}s for {n} completions")
        for r in groups:
            first = keys[r.start]
            if any(keys[i] != first for i in r):
                bad = [str(keys[i])[:40] for i in r]
                raise ValueError(f"rows {r.start}..{r.stop - 1} should be one prompt's {g} rollouts but mix {what}s "
                                 f"{bad}; group rewards need each prompt's G rollouts contiguous")
    return groups


# ---------------------------------------------------------------- inputs

def completion_text(completion) -> str:
    """A completion's text: the string itself, or the content of the first message of a conversational one."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and completion and isinstance(completion[0], dict):
        content = completion[0].get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        return "" if content is None else str(content)
    raise TypeError(f"a completion must be a string or a list of message dicts; got {type(completion).__name__}")


def prompt_text(prompt, tokenizer, chat_template_kwargs: dict | None = None) -> str:
    """A prompt as text: a string as is; messages through the tokenizer's chat template with the generation prompt
    (what TRL feeds the model; without a template, the contents joined as ``Task.prompt`` does)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)) and all(isinstance(m, dict) for m in prompt):
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True,
                                                 **(chat_template_kwargs or {}))
        return "\n\n".join(completion_text([m]) for m in prompt) + "\n\n"
    raise TypeError(f"a prompt must be a string or a list of message dicts; got {type(prompt).__name__}")


def _as_dict_choices(raw) -> dict[str, str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = json.loads(raw)
    if isinstance(raw, dict) and not ("label" in raw and "text" in raw):
        raw = {k: v for k, v in raw.items() if v is not None}  # a datasets struct fills absent labels with None
    return as_choices(raw) or None


def _column(values, n: int, name: str) -> list:
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return values


class _Reward:
    """Shared plumbing: the name TRL logs, the length limit and the EOS ids that tell a truncated rollout."""

    name = "reward"

    def __init__(self, max_completion_length: int | None = None, eos_token_ids: int | Iterable[int] | None = None,
                 tokenizer=None):
        self.__name__ = self.name
        self.max_completion_length = max_completion_length
        self.tokenizer = tokenizer
        ids = [eos_token_ids] if isinstance(eos_token_ids, int) else list(eos_token_ids or [])
        if tokenizer is not None:
            for tid in (getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "pad_token_id", None)):
                if isinstance(tid, int):
                    ids.append(tid)
                elif tid is not None:
                    ids.extend(tid)
        self.eos_token_ids = frozenset(int(i) for i in ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r})"

    def _ids(self, texts: list[str], completion_ids) -> list[list[int]]:
        if completion_ids is not None:
            if len(completion_ids) != len(texts):
                raise ValueError(f"{len(completion_ids)} completion_ids for {len(texts)} completions")
            return [list(map(int, ids)) for ids in completion_ids]
        if self.tokenizer is None:
            raise ValueError(f"the {self.__name__} reward needs completion_ids (or a tokenizer) to measure lengths")
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    def truncated(self, completion_ids) -> list[bool]:
        """Cut by the length limit: at least ``max_completion_length`` tokens and no EOS/pad token at the end."""
        if self.max_completion_length is None:
            return [False] * len(completion_ids)
        return [len(ids) >= self.max_completion_length and (not len(ids) or int(ids[-1]) not in self.eos_token_ids)
                for ids in completion_ids]

    def lengths(self, ids: list[list[int]]) -> list[int]:
        """Generated tokens, not counting a final EOS/pad token."""
        return [len(x) - (1 if x and x[-1] in self.eos_token_ids else 0) for x in ids]


class _TaskReward(_Reward):
    """A reward that needs the task's scorer: builds ``Problem(qid, "", answer, choices)`` from the columns."""

    def __init__(self, task: str | Task, max_completion_length: int | None = None,
                 eos_token_ids: int | Iterable[int] | None = None, tokenizer=None):
        super().__init__(max_completion_length, eos_token_ids, tokenizer)
        self.task = get_task(task) if isinstance(task, str) else task

    def correct(self, texts: list[str], completion_ids, answer, qid, choices) -> list[bool]:
        n = len(texts)
        if answer is None:
            raise ValueError(f"the {self.__name__} reward needs the dataset's 'answer' column")
        answers, qids, choices = _column(answer, n, "answer"), _column(qid, n, "qid"), _column(choices, n, "choices")
        cut = self.truncated(completion_ids) if completion_ids is not None else [False] * n
        out = []
        for text, gold, q, ch, c in zip(texts, answers, qids, choices, cut, strict=True):
            ch = _as_dict_choices(ch)
            if self.task.kind == "choice" and not ch:
                raise ValueError(f"task {self.task.name!r} scores option labels: the dataset needs a 'choices' column")
            problem = Problem(qid="" if q is None else str(q), question="", answer=str(gold), choices=ch)
            out.append(not c and bool(self.task.score(problem, text)))
        return out


# ---------------------------------------------------------------- the rewards

class AccuracyReward(_TaskReward):
    """1.0 when the task's scorer accepts the completion and it was not cut by the length limit, else 0.0."""

    name = "accuracy"

    def __call__(self, prompts=None, completions=(), completion_ids=None, answer=None, qid=None, choices=None,
                 **_) -> list[float]:
        texts = [completion_text(c) for c in completions]
        return [float(c) for c in self.correct(texts, completion_ids, answer, qid, choices)]


class FormatReward(_Reward):
    """1.0 when the completion is exactly the ``<think>…</think>\\n<answer>…</answer>`` layout, else 0.0."""

    name = "format"

    def __init__(self):
        super().__init__()

    def __call__(self, prompts=None, completions=(), **_) -> list[float]:
        return [float(has_format(completion_text(c))) for c in completions]


class Long2ShortReward(_TaskReward):
    """Kimi 1.5's length reward over each group of ``num_generations`` rollouts (``long2short``)."""

    name = "long2short"

    def __init__(self, task: str | Task, num_generations: int = 8, max_completion_length: int | None = None,
                 eos_token_ids: int | Iterable[int] | None = None, tokenizer=None):
        super().__init__(task, max_completion_length, eos_token_ids, tokenizer)
        self.num_generations = num_generations

    def __call__(self, prompts=None, completions=(), completion_ids=None, answer=None, qid=None, choices=None,
                 **_) -> list[float]:
        texts = [completion_text(c) for c in completions]
        groups = check_groups(len(texts), self.num_generations, qid, prompts)
        lens = self.lengths(self._ids(texts, completion_ids))
        ok = self.correct(texts, completion_ids, answer, qid, choices)
        return [r for g in groups for r in long2short([lens[i] for i in g], [ok[i] for i in g])]


class CosineReward(_TaskReward):
    """CosFn per rollout (``cosine_reward``), T = ``max_completion_length``; replaces the accuracy reward."""

    name = "cosine"

    def __init__(self, task: str | Task, max_completion_length: int, eos_token_ids: int | Iterable[int] | None = None,
                 tokenizer=None, correct_range: tuple[float, float] = CORRECT_RANGE,
                 wrong_range: tuple[float, float] = WRONG_RANGE, exceed: float = EXCEED_REWARD):
        if not max_completion_length or max_completion_length <= 0:
            raise ValueError("the cosine reward needs max_completion_length (its T)")
        super().__init__(task, max_completion_length, eos_token_ids, tokenizer)
        self.correct_range, self.wrong_range, self.exceed = correct_range, wrong_range, exceed

    def __call__(self, prompts=None, completions=(), completion_ids=None, answer=None, qid=None, choices=None,
                 **_) -> list[float]:
        texts = [completion_text(c) for c in completions]
        ids = self._ids(texts, completion_ids)
        cut = self.truncated(ids) if completion_ids is not None else [False] * len(texts)
        ok = self.correct(texts, completion_ids, answer, qid, choices)
        return cosine_reward(self.lengths(ids), ok, self.max_completion_length, cut, self.correct_range,
                             self.wrong_range, self.exceed)


def _resolve_variant(variant) -> tuple[str, str, str, str]:
    if isinstance(variant, str):
        if variant not in VARIANTS:
            raise ValueError(f"unknown InDiv variant {variant!r}; names: {sorted(VARIANTS)}")
        variant = VARIANTS[variant]
    weighting, norm, form, granularity = variant
    if weighting not in WEIGHTINGS or norm not in NORMS or form not in ("gram", "covariance") \
            or granularity not in GRANULARITIES:
        raise ValueError(f"bad InDiv variant {variant!r}: (weighting in {WEIGHTINGS}, norm in {NORMS}, form in "
                         f"('gram', 'covariance'), granularity in {GRANULARITIES})")
    return weighting, norm, form, granularity


class InDivReward:
    """H-GRPO's diversity reward: each rollout's InDiv under the current policy, normalised within its group.

    TRL does not pass the model to reward functions; the trainer updates the model object in place, so holding
    the one given to ``GRPOTrainer`` (or ``trainer.model``) scores under the current policy. Each call puts the
    model in eval mode, runs the kit's InDiv pass (``hsir.indiv.indiv_scores``: the prompt text, chat template
    applied to messages, and the completion text, each tokenised without special tokens, then ``middle_states``
    and ``score_states``) under ``torch.no_grad``, restores every module's training flag, and maps each group of
    ``num_generations`` with ``normalise_group`` (a rollout too short to score gets 0.0). ``variant`` is
    (weighting, norm, form, granularity) or a name in ``hsir.indiv.VARIANTS``; the default is the paper's reading.

    ``seconds`` and ``calls`` add up the time spent and the calls made (the caller's measure of the reward's
    overhead on a GRPO step); ``last_raw`` keeps the last call's raw scores. With TRL's ``log_metric`` it also
    logs ``indiv/raw_mean`` and ``indiv/seconds``.
    """

    name = "indiv"

    def __init__(self, model, tokenizer, variant=PAPER_VARIANT, alpha: float = 1e-3, num_generations: int = 8,
                 max_tokens: int | None = None, max_batch_tokens: int | None = None,
                 chat_template_kwargs: dict | None = None):
        self.__name__ = self.name
        self.model, self.tokenizer = model, tokenizer
        self.variant = _resolve_variant(variant)
        self.alpha, self.num_generations = alpha, num_generations
        self.max_tokens, self.max_batch_tokens = max_tokens, max_batch_tokens
        self.chat_template_kwargs = chat_template_kwargs
        self.seconds, self.calls = 0.0, 0
        self.last_raw: list[float] = []

    def __repr__(self) -> str:
        return f"InDivReward(variant={self.variant}, alpha={self.alpha}, num_generations={self.num_generations})"

    def raw_scores(self, prompts: Sequence, completions: Sequence) -> list[float]:
        """InDiv of each completion under the held model (NaN where too short), training flags restored."""
        weighting, norm, form, granularity = self.variant
        ptexts = [prompt_text(p, self.tokenizer, self.chat_template_kwargs) for p in prompts]
        texts = [completion_text(c) for c in completions]
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        try:
            with torch.no_grad():
                return indiv_scores(self.model, self.tokenizer, ptexts, texts, weighting, norm, self.alpha, form,
                                    granularity, self.max_batch_tokens, self.max_tokens)
        finally:
            for m, was in modes:
                m.training = was

    def __call__(self, prompts=None, completions=(), completion_ids=None, qid=None, log_metric=None,
                 **_) -> list[float]:
        start = time.perf_counter()
        if prompts is None or len(prompts) != len(completions):
            raise ValueError("the indiv reward needs one prompt per completion")
        groups = check_groups(len(completions), self.num_generations, qid, prompts)
        raw = self.raw_scores(prompts, completions)
        out = [r for g in groups for r in normalise_group([raw[i] for i in g])]
        self.last_raw = raw
        spent = time.perf_counter() - start
        self.seconds += spent
        self.calls += 1
        if callable(log_metric):
            finite = [x for x in raw if math.isfinite(x)]
            if finite:
                log_metric("indiv/raw_mean", float(np.mean(finite)))
            log_metric("indiv/seconds", spent)
        return out


# ---------------------------------------------------------------- registry

REWARDS: dict[str, type] = {
    "accuracy": AccuracyReward,
    "format": FormatReward,
    "long2short": Long2ShortReward,
    "cosine": CosineReward,
    "indiv": InDivReward,
}


def make_reward(name: str, **context):
    """The reward called ``name``, given the keywords of ``context`` that it takes (so one context dict, e.g.
    task, num_generations, max_completion_length, tokenizer, model, variant, can build every reward)."""
    if name not in REWARDS:
        raise KeyError(f"unknown reward {name!r}; rewards: {', '.join(REWARDS)}")
    cls = REWARDS[name]
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in context.items() if k in params}
    missing = [k for k, p in params.items() if k != "self" and p.default is inspect.Parameter.empty and k not in kwargs]
    if missing:
        raise TypeError(f"reward {name!r} needs {', '.join(missing)}")
    return cls(**kwargs)


def make_rewards(names: Iterable[str], **context) -> list:
    """``make_reward`` for each name, in order (TRL's ``reward_funcs``)."""
    return [make_reward(n, **context) for n in names]
