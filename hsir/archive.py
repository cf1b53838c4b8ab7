"""What of a run outlives its machine: every evaluated round's small artifacts, kept beside the figures.

A run folder holds models (GBs) and lives on the machine that trained them; the verdict per claim (``hsir.claims``)
reads only a round's ``metrics.json`` and its greedy ``eval_<task>.jsonl``. So after every run ``hsir.reproduce``
(or ``python -m hsir.results --archive``) copies those (the evaluation rows gzipped, with ``sampling.json`` and
``selection.json``), and those of notebook 06's out-of-distribution evaluations (Table 6, Fig. 4), of every seed
root into ``figures/<profile>/rounds/<root name>/``, the run folder's layout,
with ``m0.json``: the digest of the weights of the M0 the root's rounds start from. Committed, the archive lets a
later session, on another machine, pool its seeds with the ones this machine ran
(``python -m hsir.results --claims --archived``).

Rounds are only ever added or refreshed, never deleted. An archived root refuses rounds from another M0 (its
``m0.json`` names other weights): one root's rows always share one M0, as ``hsir.seeds`` requires. Another machine
that rebuilt M0 with other weights so keeps the first machine's rounds of that root and adds the roots it alone ran
(its other seeds); the claims file then says the seeds start from several M0s (``m0_note``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from hsir.config import LoopConfig, figures_dir
from hsir.runs import read_json, write_bytes, write_json
from hsir.seeds import RECORD as SHARED_RECORD
from hsir.seeds import m0_digest, seed_roots

KEPT = ("sampling.json", "selection.json")  # with the gzipped eval_<task>.jsonl, then metrics.json, the round's marker
RECORD = "m0.json"
_digests: dict[tuple, str] = {}  # (real path, size, mtime) of a weights file -> its digest: hashed once per process


def archive_dir(cfg: LoopConfig) -> Path:
    """Where a profile's evaluated rounds are archived: ``figures/<profile>/rounds/``."""
    return figures_dir(cfg.profile) / "rounds"


def _weights_digest(files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        key = (os.path.realpath(f), st.st_size, st.st_mtime_ns)
        if key not in _digests:
            with open(f, "rb") as fh:
                _digests[key] = hashlib.file_digest(fh, "sha256").hexdigest()
        h.update(_digests[key].encode())
    return h.hexdigest()[:16]


def m0_weights(root: Path) -> str | None:
    """Which M0 a root's rounds start from: the digest of its weights (``m0/model*.safetensors``, shards included),
    or the archived record in an archived root; None where neither exists. A seed root whose linked M0 was rebuilt
    since its rounds ran (``hsir.seeds``' ``shared.json`` names another) is refused: its weights are not its rounds'."""
    if (root / RECORD).exists():
        return read_json(root / RECORD)["weights"]
    files = sorted((root / "m0").glob("model*.safetensors"))
    if not files:
        return None
    if (root / SHARED_RECORD).exists() and (had := read_json(root / SHARED_RECORD)["m0"]) != m0_digest(root):
        raise RuntimeError(f"{root} ran from the M0 whose report has digest {had}; {root / 'm0'} is now another "
                           f"({m0_digest(root)}): its rounds cannot be credited to these weights")
    return _weights_digest(files)


def _same(path: Path, data: bytes) -> bool:
    """Whether ``path`` already holds ``data`` (a ``.gz`` compared decompressed: zlib builds differ in their bytes)."""
    if not path.exists():
        return False
    return (gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()) == data


# where a root's greedy evaluations lie: each round's test split, and each round on notebook 06's out-of-distribution
# sets (``hsir.generalization``: <root>/generalization/<method>/iter_<t>/<task>-<split>/, Table 6 and Fig. 4)
EVALUATIONS = ("methods/*/iter_*/metrics.json", "generalization/*/iter_*/*/metrics.json")


def evaluated_rounds(root: Path) -> list[Path]:
    """A root's folders with a greedy evaluation (``EVALUATIONS``): ``metrics.json`` and its first entry's
    ``eval_<label>.jsonl``. A method folder that is a link (SFT-Initial in a seed root, ``hsir.seeds.SHARED``) is the
    first seed's, not this root's."""
    out = []
    for pattern in EVALUATIONS:
        for metrics in sorted(root.glob(pattern)):
            it = metrics.parent
            method = root.joinpath(*it.relative_to(root).parts[:2])  # methods/<m> or generalization/<m>
            if not method.is_symlink() and (it / f"eval_{next(iter(read_json(metrics)))}.jsonl").exists():
                out.append(it)
    return out


def archive_root(root: Path, dest: Path) -> list[Path]:
    """Copy every evaluated round of ``root`` into ``dest``; returns the files written (unchanged ones are skipped).
    A root without one writes nothing. Raises, naming both digests, if ``dest`` holds rounds of another M0. Within
    a round ``metrics.json`` is written last, so that a stop mid-archive leaves no round without its rows."""
    rounds = evaluated_rounds(root)
    if not rounds:
        return []
    weights = m0_weights(root)
    if weights is None:
        raise FileNotFoundError(f"{root / 'm0'}: no M0 weights behind this root's rounds")
    written = []
    if (dest / RECORD).exists():
        if (had := read_json(dest / RECORD)["weights"]) != weights:
            raise RuntimeError(f"{dest} holds rounds from the M0 with weights digest {had}; {root / 'm0'} is "
                               f"{weights}. Its archived rounds are kept; delete {dest} to replace them.")
    else:
        report = root / "m0" / "sft.json"
        write_json(dest / RECORD, {"weights": weights} | ({"m0_report": read_json(report)} if report.exists() else {}))
        written.append(dest / RECORD)
    for it in rounds:
        out = dest / it.relative_to(root)
        files = [(out / (p.name + ".gz"), p) for p in sorted(it.glob("eval_*.jsonl"))]
        files += [(out / name, it / name) for name in (*KEPT, "metrics.json") if (it / name).exists()]
        for target, source in files:
            data = source.read_bytes()
            if not _same(target, data):
                # mtime=0: no timestamp in the header, so the same rows give the same bytes on one build of zlib
                write_bytes(target, gzip.compress(data, compresslevel=9, mtime=0) if target.suffix == ".gz" else data)
                written.append(target)
    return written


def archive_roots(roots: Mapping[int, Path], dest: Path) -> tuple[dict[int, list[Path]], dict[int, str]]:
    """``archive_root`` for every seed's root into ``dest/<root name>``: (seed -> files written, seed -> why a root
    was refused). One root's refusal does not stop the others."""
    written, refused = {}, {}
    for s, r in roots.items():
        try:
            written[s] = archive_root(Path(r), dest / Path(r).name)
        except (RuntimeError, FileNotFoundError) as e:
            refused[s] = str(e)
    return written, refused


def archived_roots(cfg: LoopConfig, dest: Path, seeds: Sequence[int] = ()) -> dict[int, Path]:
    """seed -> archived root under ``dest`` (``hsir.seeds.seed_roots`` of the archive: with no ``seeds``, every
    seed archived). Raises, naming them, when a requested seed, or every seed, is missing from the archive."""
    roots = seed_roots(replace(cfg, root=str(dest / cfg.run_root.name)), seeds)
    found = {s: r for s, r in roots.items() if (r / RECORD).exists()}
    if not found or (seeds and len(found) < len(roots)):
        missing = [str(r) for s, r in roots.items() if s not in found]
        raise FileNotFoundError(f"no archived rounds for seed root(s) {', '.join(missing)} "
                                "(python -m hsir.results --archive writes them from a run's folders)")
    return found


def m0_note(roots: Mapping[int, Path]) -> str:
    """One sentence on the M0 behind each seed's rounds: one shared M0, or several (whose intervals then also span
    M0's own training noise)."""
    known = {}
    for s, r in roots.items():
        try:
            if d := m0_weights(Path(r)):
                known[s] = d
        except RuntimeError as e:
            known[s] = f"unknown ({e})"
    if not known:
        return ""
    if len(set(known.values())) == 1:
        return f"Every seed starts from one M0 (weights digest {next(iter(known.values()))})."
    each = ", ".join(f"seed {s}: {d}" for s, d in known.items())
    return (f"The seeds start from {len(set(known.values()))} different M0 builds ({each}): a pooled interval then "
            "also spans M0's own training noise.")
