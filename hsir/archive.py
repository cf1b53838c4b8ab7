"""What of a run outlives its machine: every evaluated round's small artifacts, kept beside the figures.

A run folder holds models (GBs) and lives on the machine that trained them; the tables and the verdict per claim
(``hsir.results``, ``hsir.claims``) read only a round's ``metrics.json`` and its greedy ``eval_<task>.jsonl``. So
``python -m hsir.results --archive`` copies those (the evaluation rows gzipped, with ``sampling.json`` and
``selection.json``) of every seed root into ``figures/<profile>/rounds/<root name>/``, the run folder's layout, and
records which M0 the root's rounds start from by the digest of its weights (``m0.json``). Committed, the archive
lets a later session, on another machine, pool its seeds with the ones this machine ran
(``python -m hsir.results --claims --archived``).

Rounds are only ever added or refreshed, never deleted, and an archived root is refused a round from another M0
(its ``m0.json`` names a different weights digest): one root's rows always share one M0, as ``hsir.seeds``
requires. Whether two seed roots share one M0 is stated in the claims file (``m0_note``).
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path

from hsir.runs import file_digest, read_json, write_json

KEPT = ("metrics.json", "sampling.json", "selection.json")  # beside the gzipped eval_<task>.jsonl
RECORD = "m0.json"


def m0_weights(root: Path) -> str | None:
    """Which M0 a run root's rounds start from: the digest of its weights (``m0/model.safetensors``), read from
    the archived record in an archived root; None where neither exists."""
    if (root / RECORD).exists():
        return read_json(root / RECORD)["weights"]
    weights = root / "m0" / "model.safetensors"
    return file_digest(weights) if weights.exists() else None


def _write_bytes(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless ``path`` already holds it; True when written."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def archive_root(root: Path, dest: Path) -> list[Path]:
    """Copy every evaluated round of ``root`` (``methods/<m>/iter_<t>/metrics.json`` present) into ``dest``; returns
    the files written (unchanged ones are skipped). Raises, naming both, if ``dest`` holds rounds of another M0."""
    weights = m0_weights(root)
    if weights is None:
        raise FileNotFoundError(f"{root / 'm0' / 'model.safetensors'}: no M0 in this run root, nothing to archive")
    if (dest / RECORD).exists() and (had := read_json(dest / RECORD)["weights"]) != weights:
        raise RuntimeError(f"{dest} holds rounds from the M0 with weights digest {had}; {root / 'm0'} is {weights}. "
                           f"Archive this root elsewhere (--archive-to), or delete {dest} to replace its rounds.")
    written = []
    for metrics in sorted(root.glob("methods/*/iter_*/metrics.json")):
        it = metrics.parent
        out = dest / it.relative_to(root)
        for name in KEPT:
            if (it / name).exists() and _write_bytes(out / name, (it / name).read_bytes()):
                written.append(out / name)
        for rows in sorted(it.glob("eval_*.jsonl")):
            # mtime=0: the same rows give the same bytes, so a rerun of the archive changes nothing in git
            packed = gzip.compress(rows.read_bytes(), compresslevel=9, mtime=0)
            if _write_bytes(out / (rows.name + ".gz"), packed):
                written.append(out / (rows.name + ".gz"))
    if not (dest / RECORD).exists():  # the first archive of the root names its M0; a rebuilt M0 of equal weights
        report = root / "m0" / "sft.json"  # (a rerun on another machine) keeps the first report
        write_json(dest / RECORD, {"weights": weights} | ({"m0_report": read_json(report)} if report.exists() else {}))
        written.append(dest / RECORD)
    return written


def archive_roots(roots: Mapping[int, Path], dest: Path) -> dict[int, list[Path]]:
    """``archive_root`` for every seed's root (``hsir.seeds.seed_roots``) into ``dest/<root name>``; seed -> files
    written. Roots without an M0 (a seed never started) are skipped."""
    return {s: archive_root(Path(r), dest / Path(r).name) for s, r in roots.items()
            if m0_weights(Path(r)) is not None}


def archived_roots(roots: Mapping[int, Path], dest: Path) -> dict[int, Path]:
    """The archived counterparts of ``roots`` (seed -> ``dest/<root name>``), for the seeds archived."""
    return {s: dest / Path(r).name for s, r in roots.items() if (dest / Path(r).name / RECORD).exists()}


def m0_note(roots: Mapping[int, Path]) -> str:
    """One sentence on the M0 behind each seed's rounds: one shared M0, or several (whose intervals then also span
    M0's own training noise)."""
    digests = {s: m0_weights(Path(r)) for s, r in roots.items()}
    known = {s: d for s, d in digests.items() if d}
    if not known:
        return ""
    if len(set(known.values())) == 1:
        return f"Every seed starts from one M0 (weights digest {next(iter(known.values()))})."
    each = ", ".join(f"seed {s}: {d}" for s, d in known.items())
    return (f"The seeds start from {len(set(known.values()))} different M0 builds ({each}): a pooled interval then "
            "also spans M0's own training noise.")
