import logging
import os

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
        for n, (handlers, level, propagate) in saved.items():
            lg = logging.getLogger(n)
            lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
        hf_logging.enable_default_handler()
        hf_logging.set_verbosity(verbosity)
