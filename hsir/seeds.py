"""Seeds of a profile: the claim rows again with other sampling and training seeds, from the same M0.

Seed ``cfg.seed`` runs in the profile's run root; seed s in the sibling ``<run root>-seed<s>`` with ``seed: s``,
which reseeds D_u's samples, VeriExit's continuations, the selections' tie-breaks, the SFT/DPO row order and the
GRPO rollouts. D_s stays the same draw (``data_seed``), and **M0 is shared**: a seed's root links ``m0`` and
SFT-Initial's evaluated round to the first seed's. Every seed's methods so start from one M0, as the paper's do,
and the interval of a difference between two methods (``hsir.claims``) spans what a seed changes in them, not M0's
own training noise. Where the time cannot hold every row three times, the claim rows get the seeds: only the methods
the claims compare (``hsir.claims.claim_methods``) run on the seeds after the first
(``hsir.selfimprove.run_seeds``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from hsir.claims import claim_methods
from hsir.config import LoopConfig

SHARED = ("m0", "methods/SFT-Initial")  # what every seed's root links to the first seed's


def seed_root(cfg: LoopConfig, seed: int) -> Path:
    """``cfg``'s run root for seed ``cfg.seed``, the sibling ``<run root>-seed<s>`` for any other."""
    base = cfg.run_root
    return base if seed == cfg.seed else base.parent / f"{base.name}-seed{seed}"


def seed_config(cfg: LoopConfig, seed: int) -> LoopConfig:
    """``cfg`` for seed ``seed``: its seed and its root (``seed_root``); ``cfg`` itself for its own seed."""
    return cfg if seed == cfg.seed else replace(cfg, seed=seed, root=str(seed_root(cfg, seed)))


def seed_roots(cfg: LoopConfig, seeds: Sequence[int] = ()) -> dict[int, Path]:
    """seed -> run root for ``seeds``; with none given, ``cfg.seed`` and every ``<run root>-seed<N>`` that exists."""
    if not seeds:
        base = cfg.run_root
        found = sorted(int(p.name.rsplit("-seed", 1)[1]) for p in base.parent.glob(f"{base.name}-seed*")
                       if p.name.rsplit("-seed", 1)[1].isdigit())
        seeds = [cfg.seed, *(s for s in found if s != cfg.seed)]
    return {s: seed_root(cfg, s) for s in seeds}


def share_m0(cfg: LoopConfig, seed_cfg: LoopConfig) -> list[Path]:
    """Link ``seed_cfg``'s ``m0`` (and SFT-Initial's round, once evaluated) to ``cfg``'s; returns the links made.

    A link is made atomically (a temporary link renamed into place); a folder already there is left alone, so a
    seed root that trained its own M0 keeps it (``build_m0`` then checks it as usual)."""
    made = []
    for part in SHARED:
        target, link = cfg.run_root / part, seed_cfg.run_root / part
        if not target.exists() or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.link-tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(target, link.parent), tmp, target_is_directory=True)
        os.replace(tmp, link)
        made.append(link)
    return made


def seed_methods(names: Sequence[str], first: bool) -> list[str]:
    """The methods a seed runs: all of ``names`` on the first seed, the claim rows among them on the others."""
    return list(names) if first else [n for n in names if n in claim_methods()]
