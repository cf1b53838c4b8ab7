"""The hub and the kit's data cache: where a split with no local file comes from.

``$HSIR_CACHE_DIR/data/<task>/<split>.jsonl`` holds the hub's rows of one split, written once by ``download`` and
read afterwards offline with the same reader and row converter as a local file (``hsir.tasks``). ``hub_rows``
is the only place the kit downloads data (tests replace it with a local stand-in). GPQA is never written here:
its rows stay in the password-protected zip or in the ``datasets`` cache of the user's own gated access.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hsir.config import cache_dir

NOT_CACHED = {"gpqa"}  # stays encrypted at rest


def cache_root() -> Path:
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


def jsonable(v):
    """A hub row's value as JSON can hold it (dates and other objects as their text)."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def download(task: str, split: str, source: tuple[str, str | None, str], force: bool = False) -> Path:
    """Write the rows of ``source`` = (hub id, config, hub split) to the cache file of ``task``/``split``,
    atomically (a killed download leaves nothing); returns the file. Already cached: nothing is downloaded unless
    ``force``."""
    if task in NOT_CACHED:
        raise ValueError(f"{task} is not cached in plain text: it loads from its local zip or from the hub "
                         "through your own gated access each time")
    out = cached_path(task, split)
    if out.exists() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    hub_id, config, hub_split = source
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            n = 0
            for row in hub_rows(hub_id, config, hub_split):
                f.write(json.dumps(jsonable(row), ensure_ascii=False) + "\n")
                n += 1
        if n == 0:
            raise ValueError(f"hub id {hub_id!r} (split {hub_split!r}) gave no rows")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
