"""Where a run's time went (hsir.time_spent): each piece of work counted once, in the notebook attempt that did it."""

import json
import os
from datetime import datetime

from hsir import reproduce
from hsir.time_spent import breakdown, breakdown_table


def _ledger(path, *entries):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def _report(path, seconds, end, finished=None):
    """A training report written at ``end`` (its file time), with its ``finished`` field where given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": 10, "seconds": seconds} | ({"finished": finished} if finished else {})))
    t = datetime.fromisoformat(end).timestamp()
    os.utime(path, (t, t))


def _run_folder(root):
    """01 samples and trains M0 (10:00-10:20); 02 runs one round (10:20-11:00): sample stage wrapping a generation,
    select, train, eval stage wrapping a generation; plus work from an earlier run, and a report copied since
    (its file time moved, its ``finished`` time did not)."""
    _report(root / "m0" / "sft.json", 300, "2026-12-02T10:15:00")
    _report(root / "m0-copy" / "sft.json", 300, "2026-12-02T10:40:00", finished="2026-11-01T09:00:00")
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
    got, skipped = breakdown(ATTEMPTS, [root, seed])
    assert skipped == []
    rows = {r["notebook"]: r for r in got}
    nb1, nb2 = rows["01_preliminary_analysis"], rows["02_hsir_sft"]
    assert (nb1["training"], nb1["sampling"], nb1["evaluation"]) == (300, 200, 0)
    assert nb1["other"] == 1200 - 500
    # the generation, not the stages wrapping it; the trainer's report, not an old run's nor a copy's
    assert (nb2["sampling"], nb2["scoring and selection"], nb2["training"], nb2["evaluation"]) == (400, 30, 880, 120)
    assert nb2["seconds"] == 2400 and nb2["other"] == 2400 - 1430
    table = breakdown_table(*breakdown(ATTEMPTS, [root]))
    assert "| 02_hsir_sft | 14m40s | 2m00s | 6m40s | 30s | 16m10s | 40m00s |" in table
    assert "| **all** | 19m40s (33%) | 2m00s (3%) | 10m00s (17%) | 30s (1%) | 27m50s (46%) | 1h00m00s |" in table


def test_run_md_says_where_the_time_went(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    _run_folder(tmp_path / "embedded")
    text = reproduce.run_record("embedded", ATTEMPTS, {"cpu_model": "x"}, roots=reproduce.work_roots("embedded"))
    assert "## Where the time went" in text
    assert "| 01_preliminary_analysis | 5m00s | 0s | 3m20s | 0s | 11m40s | 20m00s |" in text
    assert "## Where the time went" not in reproduce.run_record("embedded", ATTEMPTS, {"cpu_model": "x"})


def test_unreadable_work_is_named_and_skipped_and_untimed_attempts_say_so(tmp_path):
    """A torn ledger line, an entry without its time, a report that is not JSON: skipped and named, the rest
    counted. An attempt whose time is not the kit's shows n/a; a killed one counts work up to a heartbeat later."""
    root = tmp_path / "embedded"
    _ledger(root / "generations" / "m0" / "ledger.jsonl",
            {"stage": "samples-aa", "backend": "vllm", "seconds": 100, "time": "2026-12-02T10:05:00"},
            {"stage": "samples-bb", "backend": "vllm", "seconds": 50},  # no time
            {"stage": "samples-cc", "backend": "vllm", "seconds": 70, "time": "2026-12-02T10:20:30"})
    with open(root / "generations" / "m0" / "ledger.jsonl", "a") as f:
        f.write('{"stage": "samples-dd", "backe\n')  # torn by a kill
    (root / "m1").mkdir()
    (root / "m1" / "dpo.json").write_text("{not json")
    attempts = [{"notebook": "01_preliminary_analysis", "seconds": 1200.0, "time": "2026-12-02T10:20:00",
                 "outcome": reproduce.KILLED},
                {"notebook": "02_hsir_sft", "seconds": 60.0, "time": "t2", "outcome": "finished"},
                {"notebook": "03_hsir_dpo", "seconds": 60.0, "outcome": "finished"}]
    rows, skipped = breakdown(attempts, [root], reproduce.KILLED, reproduce.HEARTBEAT_EVERY)
    assert rows[0]["sampling"] == 170 and rows[0]["other"] == 1030  # samples-cc ended 30 s after the heartbeat
    assert len(skipped) == 3 and any("ledger.jsonl:2" in s for s in skipped)
    assert any("ledger.jsonl" in s and "not valid JSON" in s for s in skipped)
    assert any("dpo.json" in s for s in skipped)
    table = breakdown_table(rows, skipped)
    assert "| 02_hsir_sft | n/a | n/a | n/a | n/a | n/a | 1m00s |" in table
    assert "| 03_hsir_dpo | n/a |" in table and "Unreadable, not counted (3)" in table
    # work from outside the run in its window (another shell's bench) makes other negative: shown with its sign
    over = [{"notebook": "01_preliminary_analysis", "seconds": 60.0, "time": "2026-12-02T10:05:30",
             "outcome": "finished"}]
    assert "| 01_preliminary_analysis | 0s | 0s | 1m40s | 0s | -40s | 1m00s |" in breakdown_table(*breakdown(over, [root]))
    none = [{"notebook": "01_preliminary_analysis", "seconds": 60.0, "time": "2026-12-03T10:00:00", "outcome": "x"}]
    assert "No ledger entry or training report" in breakdown_table(*breakdown(none, [root]))
