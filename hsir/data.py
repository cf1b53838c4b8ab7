"""Data on any machine: the local data folder first, then the kit's cache, then a one-time download from the hub.

A task's split is read from, in order:
1. its files in the data folder (the ``data_dir`` argument, ``$HSIR_DATA_DIR``, or ``../shared/data`` beside the
   repository), in the layout ``tasks.TASKS`` names;
2. ``$HSIR_CACHE_DIR/data/<task>/<split>.jsonl``: the hub's rows for that split, written once (``hsir.hub``) and
   read afterwards offline with the same JSONL reader and the same row converter as a local file;
3. the hub, only to fill the cache (``fetch`` here, or the first load of a split that has neither).

``python -m hsir.data fetch --profile embedded`` (``make data``, part of ``make setup``) fills the cache with what a
profile's notebooks read (``params/<profile>/data.yaml``), so that ``make reproduce`` then runs with the hub offline.

GPQA is never written to the cache: its rows stay in the password-protected zip or in the ``datasets`` cache of
the user's own gated hub access. Medbullets has no hub copy the kit knows of; it needs the local file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from hsir import hub
from hsir.config import ROOT
from hsir.tasks import get_task


def fetch(task_name: str, split: str, force: bool = False) -> Path:
    """Download one split from its hub id into the cache (atomically: a killed download leaves nothing); returns
    the cached file. Already cached: nothing is downloaded unless ``force``."""
    task = get_task(task_name)
    source = task.hub_source(split)
    if source is None:
        raise FileNotFoundError(f"{task_name}/{split}: this task has no hub id; put its local files "
                                f"{task.local_files(split)} in the data folder")
    return hub.download(task_name, split, source, force)


def profile_needs(profile: str) -> list[tuple[str, str]]:
    """The (task, split) pairs a profile's notebooks read from files: ``params/<profile>/data.yaml``."""
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
    task = get_task(task_name)
    if task.has_local(split):
        return "local"
    return "cache" if hub.cached_path(task_name, split).exists() else "missing"


def ensure(needs: list[tuple[str, str]], log=print) -> dict[str, str]:
    """Fetch every needed split that has neither a local file nor a cached copy; returns where each one is."""
    status = {}
    for task, split in needs:
        key = f"{task}/{split}"
        status[key] = where(task, split)
        if status[key] == "missing":
            log(f"[data] {key}: fetching into {hub.cached_path(task, split)} ...")
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
