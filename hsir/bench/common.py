"""What the benches share: the measured matrix-product rate (the ceiling every ratio is taken against), peak
memory of a process tree, and the facts of the machine a figure came from."""

from __future__ import annotations

import platform
import re
import time

import torch


def matmul_flops(dtype: torch.dtype = torch.bfloat16, n: int = 2048, seconds: float = 3.0) -> float:
    """Measured dense matrix-product rate (FLOP/s) on this machine's CPU, or the GPU where there is one."""
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(n, n, dtype=dtype, device=dev)
    b = torch.randn(n, n, dtype=dtype, device=dev)
    for _ in range(3):
        a @ b
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        done += 1
        if dev == "cuda":
            torch.cuda.synchronize()
    return 2 * n**3 * done / (time.perf_counter() - t0)


class TreeMemory:
    """Peak resident memory of this process and all its descendants (vLLM's engine and worker run as children),
    sampled every 0.2 s on a background thread."""

    def __init__(self, interval: float = 0.2):
        import threading

        self.peak, self.interval, self._stop = 0, interval, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_gib(self) -> float:
        return round(self.peak / 2**30, 3)


def machine() -> dict:
    """The box a figure came from: CPU model and capability (AMX, AVX512 with or without native bf16, AVX2), cores
    torch uses, and the GPU where there is one. Every bench JSON records it (``python -m hsir.bench``)."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), model)
        flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    except OSError:
        flags = []
    from hsir.models import native_bf16

    return {"cpu_model": model, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "amx": any(f.startswith("amx") for f in flags), "avx512_bf16": "avx512_bf16" in flags,
            "native_bf16": native_bf16("cpu"), "threads": torch.get_num_threads(), "openmp": openmp_runtime(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def describe(box: dict) -> str:
    """``machine()``'s box in words, as run.md's "Box:" line and a run's measured rates name it."""
    return (f"{box.get('cpu_model')}, capability {box.get('cpu_capability')}, AMX {box.get('amx')}, "
            f"AVX512-BF16 {box.get('avx512_bf16')}, {box.get('threads')} threads"
            + (f", GPU {box['gpu']}" if box.get("gpu") else ""))


def openmp_runtime() -> str:
    """The OpenMP runtime torch's parallel regions run on, as ``/proc/self/maps`` lists the loaded libraries:
    Intel's ``libiomp5`` when it is loaded (``LD_PRELOAD`` puts it ahead of torch's own, so its ``GOMP_*`` entry
    points win), else GNU's ``libgomp`` (also under a wheel's hashed name, ``libgomp-a34b3233.so.1``); "unknown"
    where the maps cannot be read (not Linux)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {m.group(1) for ln in f if (m := re.search(r"/(lib(?:iomp5|gomp))(?:-[0-9a-f]+)?\.so", ln))}
    except OSError:
        return "unknown"
    return next((lib for lib in ("libiomp5", "libgomp") if lib in libs), "none")
