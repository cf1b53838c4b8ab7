"""Where a run's time went (hsir.time_spent): each piece of work counted once, in the notebook attempt that did it."""

import json
import os
from datetime import datetime

from hsir import reproduce
from hsir.time_spent import breakdown, breakdown_table


def _ledger(path, *entries):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def _report(path, seconds, end):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": 10, "seconds": seconds}))
    t = datetime.fromisoformat(end).timestamp()
    os.utime(path, (t, t))


def _run_folder(root):
    """01 samples and trains M0 (10:00-10:20); 02 runs one round (10:20-11:00): sample stage wrapping a generation,
    select, train, eval stage wrapping a generation; plus work from an earlier run and a checkpoint's report."""
    _report(root / "m0" / "sft.json", 300, "2026-12-02T10:15:00")
    _ledger(root / "generations" / "m0" / "ledger.jsonl",
            {"stage": "samples-aa", "backend": "vllm", "seconds": 200, "generations": 80, "time": "2026-12-02T10:05:00"},
            {"stage": "samples-bb", "backend": "vllm", "seconds": 400, "generations": 80, "time": "2026-12-02T10:30:00"},
            {"stage": "samples-old", "backend": "vllm", "seconds": 99, "generations": 8, "time": "2026-11-01T10:00:00"})
    m = root / "methods" / "ReST-EM"
    _ledger(m / "ledger.jsonl",
            {"stage": "iter_1/sample", "seconds": 401, "generations": 80, "time": "2026-12-02T10:30:01"},
            {"stage": "iter_1/select", "seconds": 30, "time": "2026-12-02T10:31:00"},
            {"stage": "iter_1/train", "seconds": 900, "rows": 90, "time": "2026-12-02T10:46:00"},
            {"stage": "iter_1/eval", "seconds": 121, "time": "2026-12-02T10:48:01"})
    _ledger(m / "iter_1" / "ledger.jsonl",
            {"stage": "eval_synthetic", "backend": "vllm", "seconds": 120, "generations": 50,
             "time": "2026-12-02T10:48:00"})
    _report(m / "iter_1" / "model" / "sft.json", 880, "2026-12-02T10:46:00")
    _report(m / "iter_1" / "model" / "checkpoint-10" / "sft.json", 500, "2026-12-02T10:40:00")
    _report(m / "iter_1" / "old-model" / "dpo.json", 77, "2026-11-01T10:00:00")


ATTEMPTS = [{"notebook": "01_preliminary_analysis", "seconds": 1200.0, "outcome": "finished",
             "time": "2026-12-02T10:20:00", "commit": "a"},
            {"notebook": "02_hsir_sft", "seconds": 600.0, "outcome": "stopped: SystemExit",
             "time": "2026-12-02T10:30:00", "commit": "a"},
            {"notebook": "02_hsir_sft", "seconds": 1800.0, "outcome": "finished", "time": "2026-12-02T11:00:00",
             "commit": "a"}]


def test_each_piece_of_work_counts_once_in_the_attempt_that_did_it(tmp_path):
    root = tmp_path / "embedded"
    _run_folder(root)
    seed = tmp_path / "embedded-seed1"  # a seed root links to the shared M0: not its work, not counted twice
    seed.mkdir()
    os.symlink(root / "m0", seed / "m0")
    rows = {r["notebook"]: r for r in breakdown(ATTEMPTS, [root, seed])}
    nb1, nb2 = rows["01_preliminary_analysis"], rows["02_hsir_sft"]
    assert (nb1["training"], nb1["sampling"], nb1["evaluation"]) == (300, 200, 0)
    assert nb1["other"] == 1200 - 500
    # the generation, not the stages wrapping it; the trainer's report, not its checkpoint's nor an old run's
    assert (nb2["sampling"], nb2["scoring and selection"], nb2["training"], nb2["evaluation"]) == (400, 30, 880, 120)
    assert nb2["seconds"] == 2400 and nb2["other"] == 2400 - 1430
    table = breakdown_table(breakdown(ATTEMPTS, [root]))
    assert "| 02_hsir_sft | 14m40s | 2m00s | 6m40s | 30s | 16m10s | 40m00s |" in table
    assert "| **all** | 19m40s (33%) | 2m00s (3%) | 10m00s (17%) | 30s (1%) | 27m50s (46%) | 1h00m00s |" in table


def test_run_md_says_where_the_time_went(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    _run_folder(tmp_path / "embedded")
    text = reproduce.run_record("embedded", ATTEMPTS, {"cpu_model": "x"}, roots=reproduce.work_roots("embedded"))
    assert "## Where the time went" in text
    assert "| 01_preliminary_analysis | 5m00s | 0s | 3m20s | 0s | 11m40s | 20m00s |" in text
    assert "## Where the time went" not in reproduce.run_record("embedded", ATTEMPTS, {"cpu_model": "x"})
