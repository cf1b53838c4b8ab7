"""Preflight: what the machine lacks for a profile, in one screen, before anything starts.

``python -m hsir.preflight --profile paper`` lists a GPU, vLLM, each model and data split the profile needs (here,
cached, or from a reachable hub; ``HF_HUB_OFFLINE=1`` counts as no hub) and free disk against the plan's estimate
(``hsir.plan``); it exits 1 when something required is missing. ``python -m hsir.reproduce`` runs it first and
stops there. It never imports torch or vLLM, and asks the hub once, for at most 2 s, so it answers in about a
second on a CPU box without the hub.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from hsir import config, hub
from hsir.data import profile_needs, where
from hsir.plan import model_params, notebook_params, plan
from hsir.tasks import get_task


@dataclass(frozen=True)
class Finding:
    what: str
    ok: bool
    detail: str
    required: bool = True  # False: a warning; the run can start


def gpu_name() -> str | None:
    """The GPUs ``nvidia-smi -L`` lists (2 s at most), else the driver's folder; None without an NVIDIA GPU."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=2).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    gpus = Path("/proc/driver/nvidia/gpus")
    return out.replace("\n", "; ") or (f"{len(list(gpus.iterdir()))} NVIDIA GPU(s)" if gpus.is_dir() else None)


def hub_off(timeout: float = 2.0) -> str | None:
    """None when the hub accepts a connection within ``timeout``; else why not (HF_HUB_OFFLINE=1: off)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "off (HF_HUB_OFFLINE=1)"
    host = re.sub(r"^https?://", "", os.environ.get("HF_ENDPOINT", "https://huggingface.co")).split("/")[0]
    result = [f"{host}: no answer within {timeout:.0f} s"]

    def connect():  # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result[0] = None
        except OSError as e:
            result[0] = f"{host} unreachable ({e.__class__.__name__})"
    (t := threading.Thread(target=connect, daemon=True)).start()
    t.join(timeout)
    return result[0]


def model_where(spec: str) -> str | None:
    """Where a model loads from without the hub ('built in', 'local folder', 'hub cache'), or None."""
    if spec.startswith(("embedded:", "smoke:")):
        return "built in (make setup)"
    if Path(spec).expanduser().is_dir():
        return "local folder"
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    snaps = Path(os.environ.get("HF_HUB_CACHE") or home / "hub") / f"models--{spec.replace('/', '--')}" / "snapshots"
    return "hub cache" if snaps.is_dir() and any(snaps.glob("*/config.json")) else None


def preflight(profile: str) -> list[Finding]:
    """What the machine has and lacks for ``profile`` before anything starts (no torch, no vLLM, ≤ 2 s on the hub)."""
    cfg, nbs = config.load_config(profile), notebook_params(profile)
    backends = {cfg.backend} | {p.get("backend") for p, _ in nbs.values()}
    models = [cfg.model, cfg.embedder] + [p[k] for p, _ in nbs.values() for k in ("model", "embedder") if p.get(k)]
    needs_gpu, gpu = "vllm" in backends or model_params(cfg.model) >= 1e9, gpu_name()
    vllm = importlib.util.find_spec("vllm") is not None  # installed, without importing it (seconds)
    out = [Finding("GPU", bool(gpu) or not needs_gpu, (gpu or "none (nvidia-smi, /proc/driver/nvidia)")
                   + ("" if gpu else f": the {profile} profile runs on one" if needs_gpu else ": a CPU run")),
           Finding("vLLM", vllm or "vllm" not in backends, "installed" if vllm else "not installed (pip install -e .[gpu])")]
    hub_state: list[str | None] = []

    def via_hub(what: str, here: str | None, fix: str) -> Finding:
        """Here, else from the hub: asked once, and only when something needs it."""
        if not here and not hub_state:
            hub_state.append(hub_off())
        off = None if here else hub_state[0]
        return Finding(what, not off, here or (f"not here; hub {off}: {fix}" if off else "not here; the hub has it"))
    out += [via_hub(f"model {m}", model_where(m), "download it where the hub is, or pass a local folder")
            for m in dict.fromkeys(models)]
    for task, split in profile_needs(profile):
        status, source = where(task, split), get_task(task).hub_source(split)
        out.append(Finding(f"data {task}/{split}", False, "no local file and no hub id: put its files in the data folder")
                   if status == "missing" and source is None else via_hub(
                       f"data {task}/{split}", None if status == "missing" else status,
                       f"{hub.fetch_command(task, split)} where the hub is, then copy $HSIR_CACHE_DIR/data"))
    p, free_at = plan(profile), config.runs_dir(profile)
    while not free_at.exists():
        free_at = free_at.parent
    free, need = shutil.disk_usage(free_at).free / 2**30, p.disk_gib()
    out.append(Finding("disk", free >= need, f"{free:.0f} GiB free at {free_at}; the plan writes ~{need:.0f} GiB"))
    if p.seed_rows is not None and p.seed_rows < cfg.n_seed:
        out.append(Finding(f"data {cfg.task}/{cfg.seed_split}", False, f"{p.seed_rows} rows here; the profile asks "
                           f"n_seed={cfg.n_seed}" + ("" if cfg.allow_fewer_seed_rows else
                                                     " (the loop refuses; allow_fewer_seed_rows: true trains on these)"),
                           required=not cfg.allow_fewer_seed_rows))
    return out


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.required and not f.ok]


def preflight_text(profile: str, findings: list[Finding]) -> str:
    miss, warn = len(blocking(findings)), sum(not f.ok and not f.required for f in findings)
    head = f"[preflight] {profile}: " + (f"{miss} required thing(s) missing" if miss else "ready")
    marks = [("ok  " if f.ok else "MISS" if f.required else "warn") for f in findings]
    return "\n".join([head + (f", {warn} warning(s)" if warn else "")]
                     + [f"  {m} {f.what:<30} {f.detail}" for m, f in zip(marks, findings, strict=True)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="What the machine lacks for a profile, before anything starts.")
    ap.add_argument("--profile", default="paper")
    args = ap.parse_args(argv)
    print(preflight_text(args.profile, findings := preflight(args.profile)))
    return 1 if blocking(findings) else 0


if __name__ == "__main__":
    sys.exit(main())
