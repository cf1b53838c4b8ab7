"""What the kit is doing, for the person watching: stage lines, progress bars, and library logs kept out of sight.

- ``say``: one ``[hsir]`` line (a stage starts or ends, a finding). Shown in the notebook and on the console.
- ``bar``: a progress bar of generations, training steps or scored solutions. In JupyterLab it is tqdm's widget
  (ipywidgets); in a headless run (``HSIR_PROGRESS=lines``, which ``python -m hsir.reproduce`` sets for the
  kernel) it is a few ``[hsir]`` lines, one per quarter, so that the console stays on one screen.
- ``train_callbacks``: training steps and loss through the same channel.
- ``route_library_logs``: vLLM's and transformers' INFO logs to ``<log dir>/libraries.log``, their warnings and
  errors still on stderr. ``hsir`` calls it on import when ``$HSIR_LOG_DIR`` is set (the reproduce run sets it
  to ``runs/<profile>/logs``); vLLM reads its own logging set-up from ``VLLM_LOGGING_CONFIG_PATH``, written here.
  Warnings the kit knows to be harmless (``HARMLESS``: vLLM's line per weight loaded in another dtype, its
  start-up tips) go to the log file only; any other warning still shows in the notebook.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path

PREFIX = "[hsir]"
LIBRARIES = ("vllm", "transformers", "datasets", "accelerate", "trl", "sentence_transformers", "httpx", "filelock",
             "py.warnings")  # py.warnings: Python's warnings, captured (logging.captureWarnings) so HARMLESS applies
# Library warnings that say nothing the person running the kit can act on: to the log file only, never the notebook.
HARMLESS = (
    # vLLM, one line per weight when the checkpoint's dtype is not the engine's (the embedded model: 137 lines)
    re.compile(r"Attempted to load weight .* with dtype .* into parameter with dtype"),
    # vLLM's CPU start-up tips: performance advice for a machine set up differently from the kit's
    re.compile(r"is not found in LD_PRELOAD"),
    re.compile(r"Triton is not installed"),
    re.compile(r"Triton is installed, but doesn't include CPU backend"),
    re.compile(r"Model Runner V2 requires Triton"),
    re.compile(r"Reset SSM cache type to float32"),
    re.compile(r"CPU backend doesn't allow to use `torch.set_num_threads` after the thread binding"),
    # the kit runs vLLM in its own process on a CPU on purpose (README, Generation engines) and seeds every request
    re.compile(r"The global random seed is set to \d+\. Since VLLM_ENABLE_V1_MULTIPROCESSING is set to False"),
    # vLLM's weight reload (a new round's model into the running engine): the rotary embedding has no weights, and
    # the tied output head has none of its own, which the kit's WeightSwapWorker refreshes (hsir.vllm_backend). Any
    # other layer that loads nothing still shows.
    re.compile(r"^(RotaryEmbedding|ParallelLMHead): Failed to load weights$"),
    # a deprecation inside vLLM's own code (Python's warnings, captured into the py.warnings logger)
    re.compile(r"`torch.distributed.reduce_op` is deprecated"),
)


def say(msg: str) -> None:
    print(f"{PREFIX} {msg}", flush=True)


def lines_mode() -> bool:
    return os.environ.get("HSIR_PROGRESS") == "lines"


def clock(seconds: float) -> str:
    """Seconds as 42s, 3m05s or 1h02m03s (progress lines, the reproduce summary)."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class bar:  # noqa: N801 - used like tqdm: ``with bar(total, "sampling") as b: b.update(n)``
    """A progress bar: tqdm (a widget in JupyterLab) interactively, quarter-step ``[hsir]`` lines headless."""

    def __init__(self, total: int, desc: str, unit: str = "it"):
        self.total, self.desc, self.unit, self.done, self.t0 = max(int(total), 0), desc, unit, 0, time.perf_counter()
        self._quarter, self._tqdm, self.postfix = 0, None, ""
        if lines_mode():
            say(f"{desc}: 0/{self.total} {unit}")
        else:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=self.total, desc=desc, unit=unit)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
            return
        quarter = 4 * self.done // self.total if self.total else 4
        if quarter > self._quarter:
            self._quarter = quarter
            say(f"{self.desc}: {self.done}/{self.total} {self.unit} ({clock(time.perf_counter() - self.t0)})"
                f"{', ' + self.postfix if self.postfix else ''}")

    def note(self, text: str) -> None:
        """A short status shown beside the count (the last training loss)."""
        self.postfix = text
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(text, refresh=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


def train_callbacks(desc: str = "train") -> list:
    """Headless: a transformers ``TrainerCallback`` reporting steps and loss as ``[hsir]`` lines (TRL's SFT, DPO
    and GRPO; their own bars are off then). Interactive: none, transformers' own progress display shows both."""
    if not lines_mode():
        return []
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def __init__(self):
            self.bar = None

        def on_train_begin(self, args, state, control, **kw):
            self.bar = bar(state.max_steps, desc, unit="steps")
            self.bar.update(state.global_step)  # resumed runs start where they stopped

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs and self.bar is not None:
                self.bar.note(f"loss {logs['loss']:.3f}")

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.done)

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.__exit__()

    return [Progress()]


class KnownHarmless(logging.Filter):
    """A handler filter that holds back the warnings of ``HARMLESS``: on the console handler, they reach the log
    file (its own handler) and not the notebook. Errors always pass, whatever they say."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not harmless(record)


def harmless(record: logging.LogRecord) -> bool:
    """Is ``record`` a warning (or less) that ``HARMLESS`` knows?"""
    if record.levelno > logging.WARNING:
        return False
    try:
        msg = record.getMessage()
    except (TypeError, ValueError):  # a malformed record is not one we know
        return False
    return any(p.search(msg) for p in HARMLESS)


def vllm_logging_config(log_dir: Path) -> Path:
    """A ``logging.config.dictConfig`` file for vLLM (its engine processes read it too): INFO to ``libraries.log``,
    WARNING and above to stderr except the known-harmless ones (``KnownHarmless``)."""
    path = log_dir / "vllm-logging.json"
    config = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "filters": {"harmless": {"()": f"{__name__}.KnownHarmless"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(log_dir / "libraries.log"), "level": "INFO",
                     "formatter": "plain"},
            "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "level": "WARNING",
                        "formatter": "plain", "filters": ["harmless"]},
        },
        "loggers": {"vllm": {"handlers": ["file", "console"], "level": "INFO", "propagate": False}},
    }
    path.write_text(json.dumps(config, indent=1))
    return path


def route_library_logs(log_dir: str | Path) -> Path:
    """Send the libraries' INFO logs and known-harmless warnings to ``<log_dir>/libraries.log``; other warnings
    and errors reach stderr too."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", str(vllm_logging_config(log_dir)))
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    to_file = logging.FileHandler(log_dir / "libraries.log")
    to_file.setFormatter(fmt)
    to_err = logging.StreamHandler(sys.stderr)
    to_err.setLevel(logging.WARNING)
    to_err.setFormatter(fmt)
    to_err.addFilter(KnownHarmless())
    logging.captureWarnings(True)
    for name in LIBRARIES:
        lg = logging.getLogger(name)
        lg.handlers[:] = [to_file, to_err]
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:  # transformers keeps its own handler and level: make it use ours
        from transformers.utils import logging as hf_logging

        hf_logging.disable_default_handler()
        hf_logging.set_verbosity_info()
        if lines_mode():  # weight-loading bars are noise in a headless run
            hf_logging.disable_progress_bar()
    except ImportError:
        pass
    return log_dir / "libraries.log"
