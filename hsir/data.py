"""Data on any machine: the local data folder first, then the kit's cache, then a one-time download from the hub.

A task's split is read from, in order:
1. its files in the data folder (the ``data_dir`` argument, ``$HSIR_DATA_DIR``, or ``../shared/data`` beside the
   repository), in the layout ``tasks.TASKS`` names;
2. ``$HSIR_CACHE_DIR/data/<task>/<split>.jsonl``: the hub's rows for that split, written once by ``fetch`` and read
   afterwards offline with the same JSONL reader and the same row converter as a local file;
3. the hub, only to fill the cache (``fetch``), the first time the split is needed.

``python -m hsir.data fetch --profile embedded`` (``make data``, part of ``make setup``) fills the cache with what a
profile's notebooks read (``params/<profile>/data.yaml``), so that ``make reproduce`` then runs with the hub offline.

GPQA is never written to the cache: its rows stay in the password-protected zip or in the ``datasets`` cache of
the user's own gated hub access. Medbullets has no hub copy the kit knows of; it needs the local file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

NOT_CACHED = {"gpqa"}  # stays encrypted at rest


def cache_root() -> Path:
    from hsir.models import cache_dir

    return cache_dir() / "data"


def cached_path(task: str, split: str) -> Path:
    return cache_root() / task / f"{split}.jsonl"


def fetch_command(task: str, split: str) -> str:
    return f"python -m hsir.data fetch {task} {split}"


def hub_rows(hub_id: str, config: str | None, split: str) -> Iterator[dict]:
    """Rows of one hub split through ``datasets`` (the only place the kit downloads data; tests replace it)."""
    import datasets

    for row in datasets.load_dataset(hub_id, config, split=split):
        yield dict(row)


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def fetch(task_name: str, split: str, force: bool = False) -> Path:
    """Download one split from its hub id into the cache (atomically: a killed download leaves nothing); returns
    the cached file. Already cached: nothing is downloaded unless ``force``."""
    from hsir.tasks import get_task

    task = get_task(task_name)
    source = task.hub_source(split)
    if source is None:
        raise FileNotFoundError(f"{task_name}/{split}: this task has no hub id; put its local files "
                                f"{task.local_files(split)} in the data folder")
    if task_name in NOT_CACHED:
        raise ValueError(f"{task_name} is not cached in plain text: it loads from its local zip or from the hub "
                         "through your own gated access each time")
    out = cached_path(task_name, split)
    if out.exists() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    hub_id, config, hub_split = source
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            n = 0
            for row in hub_rows(hub_id, config, hub_split):
                f.write(json.dumps(_jsonable(row), ensure_ascii=False) + "\n")
                n += 1
        if n == 0:
            raise ValueError(f"hub id {hub_id!r} (split {hub_split!r}) gave no rows")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def profile_needs(profile: str) -> list[tuple[str, str]]:
    """The (task, split) pairs a profile's notebooks read from files: ``params/<profile>/data.yaml``."""
    import yaml

    from hsir.reproduce import ROOT

    path = ROOT / "params" / profile / "data.yaml"
    if not path.exists():
        return []
    doc = yaml.safe_load(path.read_text()) or {}
    needs = []
    for i, item in enumerate(doc.get("needs", [])):
        if not isinstance(item, str) or "/" not in item:
            raise ValueError(f"{path}: needs[{i}] = {item!r}; expected 'task/split'")
        task, split = item.split("/", 1)
        needs.append((task, split))
    return needs


def where(task_name: str, split: str) -> str:
    """Where a split is read from now: 'local', 'cache', or 'missing'."""
    from hsir.tasks import get_task

    task = get_task(task_name)
    if task.has_local(split):
        return "local"
    return "cache" if cached_path(task_name, split).exists() else "missing"


def ensure(needs: list[tuple[str, str]], log=print) -> dict[str, str]:
    """Fetch every needed split that has neither a local file nor a cached copy; returns where each one is."""
    status = {}
    for task, split in needs:
        key = f"{task}/{split}"
        status[key] = where(task, split)
        if status[key] == "missing":
            log(f"[data] {key}: fetching into {cached_path(task, split)} ...")
            fetch(task, split)
            status[key] = "cache (fetched)"
        log(f"[data] {key}: {status[key]}")
    return status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fetch benchmark splits from the hub into the kit's cache.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch splits: TASK SPLIT, or every split a profile needs")
    f.add_argument("task", nargs="?")
    f.add_argument("split", nargs="?")
    f.add_argument("--profile", help="fetch what params/<profile>/data.yaml names")
    f.add_argument("--force", action="store_true", help="download again even when cached")
    args = ap.parse_args(argv)
    if args.profile:
        ensure(profile_needs(args.profile))
    elif args.task and args.split:
        print(f"[data] {args.task}/{args.split}: {fetch(args.task, args.split, force=args.force)}")
    else:
        ap.error("give TASK SPLIT or --profile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
