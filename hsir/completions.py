"""What generation takes and gives, shared by both backends (``hsir.generate``'s hf, ``hsir.vllm_backend``'s vLLM).

A leaf of the engine side: the sampling settings, a ``Completion`` and the running ``GenStats``, and ``finish``,
which cuts a raw generation at its stop string or EOS the same way in both backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hsir.traces import ANSWER_CLOSE

Prompt = str | list[int]


@dataclass(frozen=True)
class SamplingConfig:
    n: int = 1
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0
    stop: tuple[str, ...] = (ANSWER_CLOSE,)


def greedy(max_new_tokens: int = 512, **kw) -> SamplingConfig:
    return SamplingConfig(n=1, temperature=0.0, max_new_tokens=max_new_tokens, **kw)


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    n_tokens: int  # generated tokens, EOS included when the model emitted it
    truncated: bool  # cut by max_new_tokens: never scored as correct
    finish_reason: str  # "stop" (a stop string), "eos", or "length"


@dataclass
class GenStats:
    """Running totals a stage copies into the ledger."""

    tokens: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0
    calls: int = 0
    extra: dict = field(default_factory=dict)


def finish(text: str, ids: list[int], eos_ids: set[int], stops: Sequence[str], limit: int) -> Completion:
    """Cut a raw generation at its first stop string (kept) or EOS, and label how it ended."""
    body = until_eos(ids, eos_ids)
    hits = [(text.find(s), s) for s in stops if s in text]
    if hits:  # anything after the stop string is padding
        pos, s = min(hits)
        return Completion(text[: pos + len(s)], body, len(body), False, "stop")
    if len(body) < len(ids):
        body = ids[: len(body) + 1]
        return Completion(text, body, len(body), False, "eos")
    truncated = len(ids) >= limit
    return Completion(text, ids, len(ids), truncated, "length" if truncated else "eos")


def until_eos(ids: list[int], eos_ids: set[int]) -> list[int]:
    for k, t in enumerate(ids):
        if t in eos_ids:
            return ids[:k]
    return ids


def free_memory() -> None:
    """Give a closed model's memory back (and the CUDA cache, on a GPU) before the next one loads."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
