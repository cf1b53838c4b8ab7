"""Seeds of a profile: the claim rows again with other sampling and training seeds, from the same M0.

Seed ``cfg.seed`` runs in the profile's run root; seed s in the sibling ``<run root>-seed<s>`` with ``seed: s``
(D_u's samples, VeriExit's continuations, the selections' tie-breaks, the GRPO rollouts) and the SFT and DPO
rounds' ``seed: s`` (their row order). D_s stays the same draw (``data_seed``), and **M0 is shared**: a seed's root
links ``m0`` and SFT-Initial's round to the first seed's, and records which M0 it linked (``shared.json``: a seed
root whose M0 was since rebuilt is refused, not mixed). Every seed's methods so start from one M0, as the paper's do,
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
from hsir.runs import file_digest, read_json, write_json

# what every seed's root links to the first seed's. SFT-Initial is never a claim row, so a seed never runs it (its
# run.json, seed 0's, would refuse another seed) and nothing writes through the link.
SHARED = ("m0", "methods/SFT-Initial")
RECORD = "shared.json"  # in a seed's root: the M0 it links, by its training report's digest


def seed_root(cfg: LoopConfig, seed: int) -> Path:
    """``cfg``'s run root for seed ``cfg.seed``, the sibling ``<run root>-seed<s>`` for any other."""
    base = cfg.run_root
    return base if seed == cfg.seed else base.parent / f"{base.name}-seed{seed}"


def seed_config(cfg: LoopConfig, seed: int) -> LoopConfig:
    """``cfg`` for seed ``seed``: its seed, its SFT and DPO rounds' seed, its root (``seed_root``); ``cfg`` itself for
    its own seed. M0's settings (``m0_sft``) stay: the seeds share M0."""
    if seed == cfg.seed:
        return cfg
    return replace(cfg, seed=seed, root=str(seed_root(cfg, seed)), sft=cfg.sft | {"seed": seed},
                   dpo=cfg.dpo | {"seed": seed})


def seed_roots(cfg: LoopConfig, seeds: Sequence[int] = ()) -> dict[int, Path]:
    """seed -> run root for ``seeds``; with none given, ``cfg.seed`` and every ``<run root>-seed<N>`` that exists."""
    if not seeds:
        base = cfg.run_root
        found = sorted(int(p.name.rsplit("-seed", 1)[1]) for p in base.parent.glob(f"{base.name}-seed*")
                       if p.name.rsplit("-seed", 1)[1].isdigit())
        seeds = [cfg.seed, *(s for s in found if s != cfg.seed)]
    return {s: seed_root(cfg, s) for s in seeds}


def m0_digest(root: Path) -> str:
    """Which M0 a root holds: the digest of its training report (``m0/sft.json``: settings, rows, losses, time)."""
    return file_digest(root / "m0" / "sft.json")


def share_m0(cfg: LoopConfig, seed_cfg: LoopConfig) -> list[Path]:
    """Link ``seed_cfg``'s ``m0`` (and SFT-Initial's round, once evaluated) to ``cfg``'s, which must have a trained
    M0; returns the links made. A link is made atomically (a temporary link renamed into place). The first link
    records the M0 in ``shared.json``; a seed root whose record names another M0 (the first root's was rebuilt since)
    or whose link dangles is refused, naming both, so that no seed mixes rounds from two M0s. A seed root that
    trained an M0 of its own keeps it (``build_m0`` then checks it as usual)."""
    digest, record = m0_digest(cfg.run_root), seed_cfg.run_root / RECORD
    m0_link = seed_cfg.run_root / "m0"
    if m0_link.is_symlink() and not m0_link.exists():
        raise RuntimeError(f"{m0_link} links to {os.readlink(m0_link)}, which is gone: the seed's rounds were trained "
                           f"from an M0 that no longer exists. Delete {seed_cfg.run_root} to rerun the seed.")
    if record.exists() and (got := read_json(record)["m0"]) != digest:
        raise RuntimeError(f"{seed_cfg.run_root} was run from the M0 with digest {got}, and {cfg.run_root / 'm0'} is "
                           f"now {digest}: it was rebuilt. Delete {seed_cfg.run_root} to rerun the seed from it.")
    made = []
    for part in SHARED:
        target, link = cfg.run_root / part, seed_cfg.run_root / part
        ready = (target / "iter_1" / "metrics.json").exists() if part.startswith("methods/") else target.exists()
        if not ready or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.link-tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(target, link.parent), tmp, target_is_directory=True)
        os.replace(tmp, link)
        made.append(link)
    if m0_link.is_symlink() and not record.exists():
        write_json(record, {"m0": digest, "from": str(cfg.run_root / "m0")})
    return made


def seed_methods(names: Sequence[str], first: bool) -> list[str]:
    """The methods a seed runs: all of ``names`` on the first seed, the claim rows among them on the others."""
    claimed = claim_methods()
    return list(names) if first else [n for n in names if n in claimed]
