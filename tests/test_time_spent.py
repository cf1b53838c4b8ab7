"""Where a run's time went (hsir.time_spent): each piece of work counted once, in the notebook attempt that did it."""

import json
import os
from datetime import datetime

import pytest

from hsir import reproduce
from hsir.time_spent import PARTS, breakdown, breakdown_table, work_entries


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
    got, skipped = breakdown(ATTEMPTS, work_entries([root, seed]))
    assert skipped == []
    rows = {r["notebook"]: r for r in got}
    nb1, nb2 = rows["01_preliminary_analysis"], rows["02_hsir_sft"]
    assert (nb1["training"], nb1["sampling"], nb1["evaluation"]) == (300, 200, 0)
    assert nb1["other"] == 1200 - 500
    # the generation, not the stages wrapping it; the trainer's report, not an old run's nor a copy's
    assert (nb2["sampling"], nb2["scoring and selection"], nb2["training"], nb2["evaluation"]) == (400, 30, 880, 120)
    assert nb2["seconds"] == 2400 and nb2["other"] == 2400 - 1430
    table = breakdown_table(*breakdown(ATTEMPTS, work_entries([root])))
    assert "| 02_hsir_sft | 14m40s | 2m00s | 6m40s | 30s | 16m10s | 40m00s |" in table
    assert "| **all** | 19m40s (33%) | 2m00s (3%) | 10m00s (17%) | 30s (1%) | 27m50s (46%) | 1h00m00s |" in table


def test_the_breakdowns_total_is_run_mds_each_notebook_rounded_first():
    """run.md's first table sums each notebook's rounded seconds; its second table's total must read the same."""
    rows = [{"notebook": nb, "seconds": 10.4, "timed": True} | dict.fromkeys(PARTS, 0.0) | {"other": 10.4}
            for nb in ("01", "02")]
    all_row = next(line for line in breakdown_table(rows).splitlines() if line.startswith("| **all** |"))
    assert all_row.endswith("| 20s |")  # 10s + 10s, as run.md's total; not 20.8 s rounded to 21s


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
    rows, skipped = breakdown(attempts, work_entries([root]), reproduce.KILLED, reproduce.HEARTBEAT_EVERY)
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
    table = breakdown_table(*breakdown(over, work_entries([root])))
    assert "| 01_preliminary_analysis | 0s | 0s | 1m40s | 0s | -40s | 1m00s |" in table
    none = [{"notebook": "01_preliminary_analysis", "seconds": 60.0, "time": "2026-12-03T10:00:00", "outcome": "x"}]
    assert "No ledger entry or training report" in breakdown_table(*breakdown(none, work_entries([root])))


def test_a_finished_run_prices_the_next_plan_with_the_rates_it_measured(tmp_path, monkeypatch):
    """``--record ATTEMPTS --rates FILE``: each stage's tokens over its seconds, from the work of the counted attempts
    only (an earlier run's ledger entry and a resumed training are left out), written as the bench JSON that
    ``hsir.plan --bench`` prices a plan with."""
    from hsir import plan

    root = tmp_path / "runs" / "embedded"
    _ledger(root / "generations" / "m0" / "ledger.jsonl",
            {"stage": "samples-aa", "backend": "vllm", "tokens": 60_000, "seconds": 100, "time": "2026-12-02T10:05:00"},
            {"stage": "samples-old", "backend": "vllm", "tokens": 1, "seconds": 99, "time": "2026-11-01T10:00:00"})
    _ledger(root / "methods" / "ReST-EM" / "iter_1" / "ledger.jsonl",
            {"stage": "eval_synthetic", "backend": "vllm", "tokens": 40_000, "seconds": 50, "time": "2026-12-02T10:40:00"},
            {"stage": "eval_synthetic", "backend": "vllm", "tokens": 40_000, "seconds": 30, "time": "2026-12-02T10:50:00"})

    def report(path, stage_fields, seconds, finished):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"seconds": seconds, "finished": finished} | stage_fields))

    report(root / "m0" / "sft.json", {"log": [{"num_tokens": 9_000}, {"num_tokens": 20_000}, {"loss": 0.1}]},
           100, "2026-12-02T10:15:00")
    report(root / "methods" / "ReST-EM" / "iter_1" / "model" / "sft.json",
           {"log": [{"num_tokens": 99_000}], "resumed_from": "checkpoint-10"}, 10, "2026-12-02T10:30:00")
    report(root / "methods" / "IRPO" / "iter_1" / "model" / "dpo.json", {"log": [{"num_tokens": 30_000}]}, 200,
           "2026-12-02T10:35:00")
    report(root / "methods" / "GRPO" / "iter_1" / "model" / "grpo.json",
           {"steps": 10, "settings": {"prompts_per_step": 2, "num_generations": 8},
            "log": [{"completions/mean_length": 90.0}, {"completions/mean_length": 110.0}, {"train_loss": 1.0}]},
           300, "2026-12-02T10:45:00")
    log = tmp_path / "reproduce.jsonl"
    box = {"cpu_model": "Intel Xeon", "cpu_capability": "AVX512", "amx": True, "avx512_bf16": True, "threads": 2}
    log.write_text("".join(json.dumps(a | {"box": box}) + "\n" for a in ATTEMPTS))
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path / "runs"))
    out = tmp_path / "rates.json"
    assert reproduce.main(["--profile", "embedded", "--record", str(log), "--rates", str(out)]) == 0
    rates = json.loads(out.read_text())
    assert rates["stages"] == {"generate": {"tokens_per_s": 600.0}, "eval": {"tokens_per_s": 1000.0},
                               "sft": {"tokens_per_s": 200.0}, "dpo": {"tokens_per_s": 150.0},
                               "grpo": {"seconds_per_step": 30.0, "tokens_per_step": 1600.0}}
    assert rates["counted"]["eval"] == {"entries": 2, "tokens": 80_000, "seconds": 80}
    assert "AMX True" in rates["device"] and rates["box"] == box
    bench = plan.load_bench(out)  # what hsir.plan --bench reads
    cell = plan.Cell("02", "x", {"sft": 200 * 3600, "eval": 1000 * 1800}, grpo_steps=10)
    cell.tokens["rollout"] = 10 * 1600 * 2  # twice the bench's rollout tokens a step: twice its step time
    hours, missing = plan.cell_hours(cell, bench)
    assert hours == pytest.approx(1.5 + 600 / 3600) and missing == set()
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "embedded", "--rates", str(out)])  # the rates are of a recorded run
