import logging
import os
from pathlib import Path

from hsir import progress


def test_headless_bar_prints_a_line_per_quarter(monkeypatch, capsys):
    monkeypatch.setenv("HSIR_PROGRESS", "lines")
    with progress.bar(1000, "generating x", unit="generations") as b:
        for _ in range(1000):
            b.update(1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(line.startswith("[hsir] generating x: ") for line in lines)
    assert lines[0].endswith("0/1000 generations") and "1000/1000 generations" in lines[-1]


def test_library_info_goes_to_the_log_file_and_warnings_still_show(tmp_path, capsys, monkeypatch):
    from transformers.utils import logging as hf_logging

    monkeypatch.setattr(os, "environ", dict(os.environ))  # the env defaults it sets end with the test
    verbosity = hf_logging.get_verbosity()
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in progress.LIBRARIES}
    try:
        log = progress.route_library_logs(tmp_path)
        logging.getLogger("vllm.engine").info("engine started with 123 blocks")
        logging.getLogger("transformers.trainer").warning("something to look at")
        for h in logging.getLogger("vllm").handlers:
            h.flush()
        err = capsys.readouterr().err
        text = log.read_text()
        assert "engine started with 123 blocks" in text and "engine started" not in err
        assert "something to look at" in err and "something to look at" in text
    finally:
        restore_logging(saved, verbosity)


WEIGHT_DTYPE = ("Attempted to load weight %s with dtype %s into parameter with dtype %s",
                "layers.9.mlp.down_proj.weight", "torch.float32", "torch.bfloat16")
STARTUP_TIP = ("%s is not found in LD_PRELOAD. For best performance, please follow the section `set LD_PRELOAD`.",
               "libtcmalloc")
UNKNOWN = ("the KV cache holds only %d tokens", 512)


def test_known_harmless_warnings_go_to_the_log_only_and_unknown_ones_still_show(tmp_path, capsys, monkeypatch):
    """What the notebook shows: vLLM's weight-dtype lines and its start-up tips land in the run's log only, in the
    kernel (route_library_logs) and in vLLM's engine processes (the dictConfig file they read); a warning the
    kit does not know lands in both."""
    import json
    import logging.config

    from transformers.utils import logging as hf_logging

    monkeypatch.setattr(os, "environ", dict(os.environ))
    verbosity = hf_logging.get_verbosity()
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in progress.LIBRARIES}
    try:
        log = progress.route_library_logs(tmp_path)
        logging.getLogger("vllm.model_executor.models.utils").warning(*WEIGHT_DTYPE)
        logging.getLogger("vllm.v1.worker.cpu_worker").warning(*STARTUP_TIP)
        logging.getLogger("vllm.v1.engine").warning(*UNKNOWN)
        reload = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
        for layer in ("RotaryEmbedding", "ParallelLMHead", "QKVParallelLinear"):
            reload.warning("%s: Failed to load weights", layer)
        err, text = capsys.readouterr().err, log.read_text()
        assert "ParallelLMHead: Failed" in text and "RotaryEmbedding" not in err and "ParallelLMHead" not in err
        assert "QKVParallelLinear: Failed to load weights" in err  # a layer with weights of its own still shows
        assert "Attempted to load weight layers.9.mlp.down_proj.weight" in text and "Attempted to load" not in err
        assert "libtcmalloc is not found in LD_PRELOAD" in text and "LD_PRELOAD" not in err
        assert "the KV cache holds only 512 tokens" in err and "the KV cache holds only 512 tokens" in text
        # Python's warnings too: vLLM's own deprecation to the log only, one the kit does not know still shows
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("`torch.distributed.reduce_op` is deprecated, please use ReduceOp", FutureWarning, stacklevel=1)
            warnings.warn("a brand-new library warning", UserWarning, stacklevel=1)
        err, text = capsys.readouterr().err, log.read_text()
        assert "reduce_op" in text and "reduce_op" not in err
        assert "a brand-new library warning" in err and "a brand-new library warning" in text
        # an engine process configures its logging from the file route_library_logs wrote
        config_path = os.environ["VLLM_LOGGING_CONFIG_PATH"]
        logging.config.dictConfig(json.loads(Path(config_path).read_text()))
        engine_log = logging.getLogger("vllm.model_executor.models.utils")
        engine_log.warning(WEIGHT_DTYPE[0], "lm_head.weight", *WEIGHT_DTYPE[2:])
        engine_log.warning(UNKNOWN[0], 256)
        engine_log.error(WEIGHT_DTYPE[0], "w", "a", "b")
        for h in logging.getLogger("vllm").handlers:
            h.flush()
        err, text = capsys.readouterr().err, log.read_text()
        assert "lm_head.weight" in text and "lm_head.weight" not in err
        assert "holds only 256 tokens" in err and "holds only 256 tokens" in text
        assert "ERROR" in err and "weight w with dtype a" in err  # an error always shows, whatever it says
    finally:
        restore_logging(saved, verbosity)


def restore_logging(saved: dict, verbosity: int) -> None:
    """Give the libraries' loggers back the handlers and levels they had before a routing test."""
    from transformers.utils import logging as hf_logging

    logging.captureWarnings(False)
    for n, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(n)
        lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
    hf_logging.enable_default_handler()
    hf_logging.set_verbosity(verbosity)
