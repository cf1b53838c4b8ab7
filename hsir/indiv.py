"""InDiv: intrinsic reasoning diversity from the model's own middle-layer states (paper Eq.4-5, DESIGN.md §2).

For one solution, H ∈ R^{n×d} holds the middle layer's hidden states of its n tokens (index L//2 of the L+1
states transformers returns). Each token vector is centred over its d features, Σ = H_c H_cᵀ / d (n×n), and

    InDiv = (1/n) Σ_i ln σ_i(Σ + αI),   α = 1e-3   (the INSIDE / EigenScore convention).

Repetitive reasoning gives correlated states, small eigenvalues and a low score. When n > d the d×d form is used:
logdet(AAᵀ + αI_n) = logdet(AᵀA + αI_d) + (n-d)·ln α. Eq.5 scales each token's row by an attention weight a_i
before that; ``weighting`` picks a_i (``self``: the largest over heads of A_ii, DESIGN's default reading;
``received``: the largest over heads of the mean attention later solution tokens pay to token i; ``none``) and
``norm`` divides by its max or mean. ``covariance`` is the length-robust row the analysis notebook compares:
(1/d) Σ ln eig(H_cᵀH_c / n + αI_d), which lacks the (n-d)/n·ln α length term. ``granularity="step"`` (the
kit's addition) first mean-pools the weighted token states of each reasoning step and applies Eq.4 to the m
step vectors: a restated step adds a near-duplicate row, whatever the solution's length.

The model pass runs only the layers up to the middle (a hook stops the forward there), computes the middle
layer's attention diagonal itself in row chunks (never a T×T map of every layer), runs a prompt shared by K
samples once and reuses its cache, and batches solutions of similar length, right-padded, so causal attention
needs no mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from hsir.config import INDIV_VARIANTS
from hsir.traces import step_spans

WEIGHTINGS = ("none", "self", "received")
NORMS = ("max", "mean")
GRANULARITIES = ("token", "step")
DEFAULT_WEIGHTING, DEFAULT_NORM, DEFAULT_GRANULARITY = "self", "max", "token"

# The variants the analysis notebook compares: name -> (weighting, norm, form, granularity). The table lives in
# hsir.config, so that a profile's settings are checked without importing torch.
VARIANTS = INDIV_VARIANTS


def indiv_of_states(hidden: torch.Tensor | np.ndarray, weights=None, alpha: float = 1e-3, form: str = "gram") -> float:
    """InDiv of one solution from its n×d hidden states (any float dtype), accumulated in float64."""
    h = torch.as_tensor(hidden).detach()
    h = h.to(torch.float64 if h.device.type in ("cpu", "cuda") else torch.float32)  # float64 where supported
    if h.ndim != 2 or h.shape[0] < 2:
        raise ValueError(f"InDiv needs an n×d matrix with n ≥ 2 tokens; got shape {tuple(h.shape)}")
    if not torch.isfinite(h).all():
        raise ValueError("hidden states contain NaN or inf")
    n, d = h.shape
    if weights is not None:
        w = torch.as_tensor(weights).detach().to(h.device, h.dtype).reshape(-1)
        if w.shape[0] != n or not torch.isfinite(w).all():
            raise ValueError(f"weights must be {n} finite numbers; got shape {tuple(w.shape)}")
        h = h * w[:, None]
    hc = h - h.mean(dim=1, keepdim=True)  # J_d: centre each token over its features
    if form == "covariance":
        c = hc.T @ hc / n
        return float(torch.log(torch.linalg.eigvalsh(c).clamp_min(0) + alpha).mean())
    if form != "gram":
        raise ValueError(f"unknown form {form!r}; use 'gram' or 'covariance'")
    a = hc / math.sqrt(d)
    small = a @ a.T if n <= d else a.T @ a  # the smaller of the two Gram matrices
    logdet = _logdet_plus(small, alpha)
    if n > d:
        logdet = logdet + (n - d) * math.log(alpha)
    return float(logdet / n)


def _logdet_plus(g: torch.Tensor, alpha: float) -> torch.Tensor:
    """ln det(G + αI) = Σ ln(σ_i + α) for a PSD G: via Cholesky (several times cheaper than eigenvalues), falling
    back to clipped eigenvalues when roundoff makes G + αI indefinite."""
    chol, info = torch.linalg.cholesky_ex(g + alpha * torch.eye(g.shape[0], dtype=g.dtype, device=g.device))
    if int(info) == 0:
        return 2 * torch.log(torch.diagonal(chol)).sum()
    return torch.log(torch.linalg.eigvalsh(g).clamp_min(0) + alpha).sum()


def normalise(a: torch.Tensor, norm: str = DEFAULT_NORM) -> torch.Tensor:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; use one of {NORMS}")
    scale = a.max() if norm == "max" else a.mean()
    return a / scale.clamp_min(1e-12)


class _Stop(Exception):
    """Raised after the middle layer: the later layers are never run."""


def _stop(*_):
    raise _Stop


def _attention_stats(attn, hidden, position_embeddings, lengths, starts, past_keys=None, chunk=256) -> list[dict]:
    """Per sequence, for its solution tokens, the max over heads of A_ii (``self``) and of the mean attention
    that later tokens pay to token i (``received``), computed in row chunks from the layer's own q and k.

    ``hidden`` holds positions ``P..`` of each sequence when ``past_keys`` (b × kv-heads × P × head-dim, the
    layer's cached prompt keys) is given, else positions ``0..``; ``lengths``/``starts`` count from position 0.
    """
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    if not (hasattr(attn, "q_proj") and hasattr(attn, "k_proj")):
        raise NotImplementedError(f"attention weighting needs q_proj/k_proj; {type(attn).__name__} has neither")
    b, t, _ = hidden.shape
    hd = attn.head_dim
    q = attn.q_proj(hidden).view(b, t, -1, hd).transpose(1, 2)
    k = attn.k_proj(hidden).view(b, t, -1, hd).transpose(1, 2)
    if hasattr(attn, "q_norm"):  # Qwen3-style per-head norms
        q, k = attn.q_norm(q), attn.k_norm(k)
    cos, sin = position_embeddings
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    offset = 0
    if past_keys is not None:
        offset = past_keys.shape[2]
        k = torch.cat([past_keys.to(k.dtype), k], dim=2)
    k = repeat_kv(k, q.shape[1] // k.shape[1])
    out = []
    for s in range(b):
        n, st = lengths[s], starts[s]
        qs, ks = q[s, :, : n - offset].float(), k[s, :, :n].float()
        dev = qs.device
        selfw = torch.empty(qs.shape[0], n - st, device=dev)
        recv = torch.zeros(qs.shape[0], n, device=dev)
        for i0 in range(st, n, chunk):
            i1 = min(n, i0 + chunk)
            logits = (qs[:, i0 - offset : i1 - offset] @ ks.transpose(1, 2)) * attn.scaling  # heads × rows × n
            causal = torch.arange(n, device=dev)[None, :] > torch.arange(i0, i1, device=dev)[:, None]
            probs = logits.masked_fill(causal, float("-inf")).softmax(-1)
            rows = torch.arange(i1 - i0, device=dev)
            selfw[:, i0 - st : i1 - st] = probs[:, rows, rows + i0]
            recv += probs.sum(1)
        later = torch.arange(n - st, 0, -1, dtype=torch.float32, device=dev)  # solution rows j ≥ i that see token i
        out.append({"self": selfw.max(0).values.cpu(), "received": (recv[:, st:] / later).max(0).values.cpu()})
    return out


def _middle(model):
    """The decoder stack and L//2: InDiv reads hidden_states[L//2], the output of layer L//2 - 1."""
    base = getattr(model, "model", model)
    return base, len(base.layers) // 2


def _to_middle(model, ids, lengths, starts, attention: bool, past=None):
    """One forward that stops after the middle layer: its output states and (with ``attention``) the weights.

    With ``past`` (a cache of the shared prompt's first layers), ``ids`` holds only the solutions, all starting
    at the same position; ``lengths``/``starts`` still count from position 0.
    """
    base, mid = _middle(model)
    layer = base.layers[mid - 1]  # hidden_states[L//2] of the L+1 tuple = this layer's output
    captured = {}

    def pre_hook(module, args, kwargs):
        hs = kwargs.get("hidden_states", args[0] if args else None)
        cache = kwargs.get("past_key_values")
        keys = cache.layers[module.layer_idx].keys if past is not None else None
        captured["w"] = _attention_stats(module, hs, kwargs["position_embeddings"], lengths, starts, keys)

    def hook(module, args, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    handles = [layer.register_forward_hook(hook)]
    if attention:
        handles.append(layer.self_attn.register_forward_pre_hook(pre_hook, with_kwargs=True))
    try:  # right padding + causal mask: no attention mask needed
        base(input_ids=ids.to(next(model.parameters()).device), past_key_values=past, use_cache=past is not None)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return captured["h"].float(), captured.get("w")


def _prompt_cache(model, prompt: list[int]):
    """The key/value cache of the layers up to the middle for one prompt (the rest is never needed)."""
    from transformers import DynamicCache

    base, mid = _middle(model)
    cache = DynamicCache(config=model.config)
    handle = base.layers[mid - 1].register_forward_hook(_stop)
    try:
        base(input_ids=torch.tensor([prompt], device=next(model.parameters()).device), past_key_values=cache,
             use_cache=True)
    except _Stop:
        pass
    finally:
        handle.remove()
    return [(lay.keys, lay.values) for lay in cache.layers[:mid]]


def _expand_cache(model, kv, b: int):
    from transformers import DynamicCache

    return DynamicCache([(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in kv], config=model.config)


def _batches(order: list[int], widths: list[int], max_batch_tokens: int):
    """Consecutive slices of ``order`` (longest first) with at most ``max_batch_tokens`` padded tokens each."""
    i = 0
    while i < len(order):
        size = max(1, max_batch_tokens // max(widths[order[i]], 1))
        yield order[i : i + size]
        i += size


def share_prompts_default(device: torch.device) -> bool:
    """Whether the K samples of a prompt should share its first layers' cache on ``device``: on a CPU it saves a
    third (``python -m hsir.bench scoring``, 2-core AVX2: 52 s against 79 s for 256 solutions); on an H200 the
    cache's gather and copies cost more than re-running the short prompts (1.49 s against 0.66 s)."""
    return device.type != "cuda"


@torch.inference_mode()
def middle_states(model, prompt_ids: Sequence[list[int]], solution_ids: Sequence[list[int]],
                  attention: bool = True, max_batch_tokens: int | None = None, max_tokens: int | None = None,
                  share_prompts: bool | None = None):
    """Middle-layer hidden states (n_i × d, float32) of each solution's tokens and, with ``attention``, their
    raw attention weights ``{"self": (n_i,), "received": (n_i,)}`` (else None).

    Solutions that share a prompt (HSIR's K samples) run the prompt once and reuse its cache of the first
    layers (``share_prompts``; None: ``share_prompts_default`` for the model's device); the others are batched by
    length. ``max_batch_tokens`` defaults to 1,024 on a
    CPU (measured fastest there: 19.3 s vs 22.8 s at 8,192 for 85k tokens) and 16,384 on a GPU.
    """
    device = next(model.parameters()).device
    if max_batch_tokens is None:
        max_batch_tokens = 16384 if device.type == "cuda" else 1024
    if share_prompts is None:
        share_prompts = share_prompts_default(device)
    prompts = [list(p) for p in prompt_ids]
    sols = [list(s)[:max_tokens] if max_tokens else list(s) for s in solution_ids]
    if len(prompts) != len(sols):
        raise ValueError(f"{len(prompts)} prompts for {len(sols)} solutions")
    states: list = [None] * len(sols)
    weights: list = [None] * len(sols)
    for j in (j for j, s in enumerate(sols) if not s):  # nothing to run; scored NaN downstream
        states[j] = torch.zeros(0, model.config.hidden_size, device=device)
        weights[j] = {"self": torch.zeros(0), "received": torch.zeros(0)} if attention else None

    def run(batch, width, offset, past=None):
        lengths = [len(prompts[j]) + len(sols[j]) for j in batch]
        starts = [len(prompts[j]) for j in batch]
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        for r, j in enumerate(batch):
            ids[r, : lengths[r] - offset] = torch.tensor((prompts[j] + sols[j])[offset:])
        h, w = _to_middle(model, ids, lengths, starts, attention, past)
        for r, j in enumerate(batch):
            states[j] = h[r, starts[r] - offset : lengths[r] - offset]
            weights[j] = w[r] if attention else None

    groups: dict[tuple, list[int]] = {}
    for j, p in enumerate(prompts):
        if sols[j]:
            groups.setdefault(tuple(p), []).append(j)
    shared = lambda g: share_prompts and len(g) > 1 and len(prompts[g[0]]) > 0
    singles = [j for g in groups.values() if not shared(g) for j in g]
    widths = [len(p) + len(s) for p, s in zip(prompts, sols, strict=True)]
    for batch in _batches(sorted(singles, key=lambda j: -widths[j]), widths, max_batch_tokens):
        run(batch, widths[batch[0]], 0)
    for g in filter(shared, groups.values()):
        offset = len(prompts[g[0]])
        kv = _prompt_cache(model, prompts[g[0]])
        # the cost of a row grows with the prompt it attends to, so batches count it too (measured faster)
        for batch in _batches(sorted(g, key=lambda j: -widths[j]), widths, max_batch_tokens):
            run(batch, widths[batch[0]] - offset, offset, _expand_cache(model, kv, len(batch)))
    return states, weights


def token_steps(tokenizer, text: str) -> np.ndarray:
    """The reasoning-step index of each token of ``text`` (-1 for tokens outside every step, e.g. tags)."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    spans = step_spans(text)
    ends = np.array([e for _, e in spans]) if spans else np.zeros(0)
    out = np.full(len(offsets), -1)
    for t, (a, b) in enumerate(offsets):
        k = int(np.searchsorted(ends, a, side="right")) if len(ends) else 0
        if k < len(spans) and a < spans[k][1] and b > spans[k][0]:
            out[t] = k
    return out


def pool_steps(h: torch.Tensor, steps: np.ndarray) -> torch.Tensor:
    """Mean of the token rows of each step, in step order (m × d)."""
    steps = np.asarray(steps)[: h.shape[0]]
    ids = [k for k in np.unique(steps) if k >= 0]
    if not ids:
        return h[:0]
    return torch.stack([h[torch.from_numpy(steps == k).to(h.device)].mean(0) for k in ids])


def encode(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, no special tokens added (prompts are already templated)."""
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def indiv_scores(model, tokenizer, prompts: Sequence[str], completions: Sequence[str],
                 weighting: str = DEFAULT_WEIGHTING, norm: str = DEFAULT_NORM, alpha: float = 1e-3,
                 form: str = "gram", granularity: str = DEFAULT_GRANULARITY, max_batch_tokens: int | None = None,
                 max_tokens: int | None = None, share_prompts: bool | None = None) -> list[float]:
    """InDiv of each completion given its prompt, under the model that wrote (or will learn) it.

    A completion of fewer than 2 tokens gets NaN, the one case without a score; callers drop it.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; use one of {WEIGHTINGS}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; use one of {GRANULARITIES}")
    states, raw = middle_states(model, encode(tokenizer, prompts), encode(tokenizer, completions), weighting != "none",
                                max_batch_tokens,
                                max_tokens, share_prompts)
    steps = [token_steps(tokenizer, c) if granularity == "step" else None for c in completions]
    return [score_states(h, w, weighting, norm, alpha, form, st) for h, w, st in zip(states, raw, steps, strict=True)]


def score_states(h: torch.Tensor, raw_weights: dict | None, weighting: str = DEFAULT_WEIGHTING,
                 norm: str = DEFAULT_NORM, alpha: float = 1e-3, form: str = "gram", steps=None) -> float:
    """InDiv of one solution from ``middle_states`` output; with ``steps`` (``token_steps``), over step means.

    NaN for a solution with fewer than 2 tokens (or 2 steps): the one case without a score.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; use one of {WEIGHTINGS}")
    if weighting != "none":
        h = h * normalise(raw_weights[weighting], norm).to(h.device)[:, None]
    if steps is not None:
        h = pool_steps(h, steps)
    if h.shape[0] < 2:
        return float("nan")
    return indiv_of_states(h, None, alpha, form)


def variant_scores(states, raw, steps, variants: dict = VARIANTS, alpha: float = 1e-3) -> dict[str, np.ndarray]:
    """Every variant's score for each solution, from one ``middle_states`` pass."""
    out = {}
    for name, (weighting, norm, form, granularity) in variants.items():
        out[name] = np.array([
            score_states(h, w, weighting, norm, alpha, form, st if granularity == "step" else None)
            for h, w, st in zip(states, raw, steps, strict=True)
        ])
    return out


def resolve_tau(scores: Sequence[float], tau: float | str) -> float:
    """A threshold from a number (paper: -0.5) or a quantile string ("q0.2": drop the lowest 20%)."""
    if isinstance(tau, str):
        if not tau.startswith("q"):
            raise ValueError(f"tau {tau!r}: use a number or a quantile like 'q0.2'")
        q = float(tau[1:])
        if not 0 <= q <= 1:
            raise ValueError(f"tau quantile {q} is outside [0, 1]")
        vals = np.asarray([s for s in scores if np.isfinite(s)], dtype=float)
        return float(np.quantile(vals, q)) if len(vals) else float("-inf")
    return float(tau)


def filter_by_indiv(candidates: Sequence[dict], tau: float | str = -0.5, key: str = "indiv") -> tuple[list[dict], float]:
    """Keep candidates whose InDiv ≥ tau; returns (kept, the numeric threshold used)."""
    threshold = resolve_tau([c[key] for c in candidates], tau)
    return [c for c in candidates if np.isfinite(c[key]) and c[key] >= threshold], threshold
