"""The cost plan's arithmetic on constructed settings and a constructed bench, and the preflight on this box."""

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hsir import plan as planmod
from hsir.config import LoopConfig
from hsir.plan import Assumptions, Cell, Planner, cell_hours, load_bench
from hsir.preflight import blocking, preflight, preflight_text

from .conftest import ROOT

# Round numbers so that every expected value below is worked out by hand.
CFG = LoopConfig(profile="t", model="x", n_seed=10, n_unlabeled=100, n_test=50, K=4, J=2, T=2, max_new_tokens=1000,
                 eval_max_new_tokens=2000, m0_sft={"epochs": 1.0}, sft={"epochs": 2.0, "max_length": 4096},
                 dpo={"epochs": 1.0, "max_length": 4096},
                 grpo={"steps": 10, "prompts_per_step": 2, "num_generations": 4, "max_completion_length": 500})
A = Assumptions(sample_fraction=0.5, eval_fraction=0.25, rollout_fraction=0.5, accuracy=0.5, failed_queries=0.5,
                prompt_tokens=100.0, seed_trace_tokens=400.0)
BENCH = {"gpu": "TestGPU", "model": "x", "stages": {"generate": {"tokens_per_s": 1000}, "sft": {"tokens_per_s": 500},
                                                    "dpo": {"tokens_per_s": 250},
                                                    "grpo": {"seconds_per_step": 36, "tokens_per_step": 4000}}}
SMI = Path("/proc/driver/nvidia").exists() or any(
    (Path(d) / "nvidia-smi").exists() for d in os.environ.get("PATH", "").split(os.pathsep))


def test_sft_dpo_and_grpo_cells_by_hand():
    pl = Planner(CFG, A)
    # ReST-EM round 1: 100 queries × K=4 samples of 0.5 × 1000 = 500 tokens; the first cell also pays for M0
    rest = pl.round_cell("02", "ReST-EM", 1)
    assert rest.tokens["generate"] == 400 * 500 == 200_000
    assert rest.tokens["eval"] == 50 * 0.25 * 2000 == 25_000
    m0 = 1.0 * 10 * (100 + 400)  # 1 epoch over 10 seed rows of prompt 100 + trace 400
    sft = 2.0 * (10 * (100 + 400) + 200 * (100 + 500))  # 2 epochs: the seed rows and 200 correct samples
    assert rest.tokens["sft"] == m0 + sft == 255_000
    assert rest.models == 2  # M0 and M_1
    # IRPO round 1: M0's samples are ReST-EM's (cached), so nothing is generated again; 200 winners, half of them
    # with an incorrect sample of their query: 100 pairs of (100 + 500) + (100 + 500) tokens, one epoch
    irpo = pl.round_cell("03", "IRPO", 1)
    assert irpo.tokens.get("generate", 0) == 0 and irpo.shared == ["02 ReST-EM t=1"]
    assert irpo.tokens["dpo"] == 100 * 1200 == 120_000
    # GRPO: 10 steps × 2 prompts × 4 rollouts of 0.5 × 500 = 250 tokens, each trained with its 100-token prompt
    grpo = pl.round_cell("04", "GRPO", 1)
    assert grpo.grpo_steps == 10
    assert grpo.tokens["rollout"] == 80 * 250 == 20_000
    assert grpo.tokens["grpo"] == 80 * 350 == 28_000
    # learnable prompts: M0's K samples, which ReST-EM already paid for above; alone, GRPO pays for them
    learn = Planner(replace(CFG, grpo=CFG.grpo | {"prompts": "learnable"}), A)
    assert learn.round_cell("04", "GRPO", 1).tokens["generate"] == 400 * 500
    assert learn.round_cell("04", "H-GRPO", 1).tokens.get("generate", 0) == 0  # the next GRPO row shares them
    # ReST-EM round 2 samples its own M_1: paid again
    assert pl.round_cell("02", "ReST-EM", 2).tokens["generate"] == 200_000
    # a method a later notebook reruns costs nothing there
    again = pl.round_cell("05", "ReST-EM", 1)
    assert again.total(("generate", "eval", "sft")) == 0 and again.shared == ["02 ReST-EM t=1"]

    # hours: 200 s sampling + 25 s greedy evaluation (at the sampling rate) + 255,000 / 500 = 510 s SFT
    h, missing = cell_hours(rest, BENCH)
    assert h == pytest.approx((200 + 25 + 510) / 3600) and not missing
    assert cell_hours(irpo, BENCH)[0] == pytest.approx((120_000 / 250 + 25) / 3600)
    # GRPO: the plan's 2,000 rollout tokens a step are half the bench's 4,000, so half of its 36 s a step
    assert cell_hours(grpo, BENCH)[0] == pytest.approx((10 * 36 * 0.5 + 25) / 3600)
    no_dpo = {"stages": {k: v for k, v in BENCH["stages"].items() if k != "dpo"}}
    assert cell_hours(irpo, no_dpo)[1] == {"dpo"}


def test_one_cell_for_each_piece_of_extra_work():
    pl = Planner(CFG, A)
    pl.m0(Cell("00", "setup"))
    hsir = pl.round_cell("02", "HSIR-SFT", 1)
    # 400 samples, 200 failed, 30% with a prefix, J=2 continuations of 0.1 × 500 tokens
    assert hsir.tokens["generate"] == 400 * 500 + 200 * 0.3 * 2 * 50
    assert hsir.tokens["score"] > 0  # InDiv under M0, paid once: HSIR-DPO reuses it
    dpo = pl.round_cell("03", "HSIR-DPO", 1)
    assert "score" not in dpo.tokens and dpo.shared == ["02 HSIR-SFT t=1"]


def test_answer_driven_resamples_and_the_veriexit_cap_by_hand():
    """Issue 26's run: the embedded plan priced notebook 05 at 1.41 h against 0.82 measured, its answer-driven cell
    assuming the paper's 80% right hints (the 135M model: 22%) and VeriExit's candidates all kept (the cap of K per
    query kept 78%). Both are assumptions now, and the cell's tokens follow them."""
    a = replace(A, hint_accuracy=0.25, hint_fraction=0.2, veriexit_cap_keep=0.5)
    pl = Planner(CFG, a)
    pl.m0(Cell("00", "setup"))
    ad = pl.round_cell("05", "answer-driven", 1)
    # 100 queries × 0.5 failed × J=2 hinted resamples of 0.2 × 1000 = 200 tokens, on top of 400 samples of 500
    assert ad.tokens["generate"] == 400 * 500 + 100 * 0.5 * 2 * 200
    # SFT, 2 epochs: the seed rows, 200 right samples (100 + 500) and 100 × 0.25 = 25 right hints (100 + 200)
    assert ad.tokens["sft"] == 2.0 * (10 * 500 + 200 * 600 + 25 * 300)
    ve = pl.round_cell("05", "VeriExit-only", 1)
    # the cap keeps half of the 200 right samples and of 200 × 0.3 × 2 = 120 continuations × 0.9 right = 108
    rows = 10 * 500 + 0.5 * (200 * 600 + 108 * (100 + 0.6 * 500))
    assert ve.tokens["sft"] == pytest.approx(2.0 * rows)


def test_the_paper_profile_plans_every_notebook_and_prints_tokens_without_a_bench(capsys):
    p = planmod.plan("paper")
    assert set(p.cells) >= {"00_quickstart", "02_hsir_sft", "03_hsir_dpo", "04_h_grpo", "05_ablations"}
    names = [c.name for c in p.cells["02_hsir_sft"]]
    assert "HSIR-SFT t=3" in names and "RFT t=2" not in names  # T=3 rounds for iterative methods, one for RFT
    assert p.total(("rollout",)) > 0 and p.total(("sft",)) > p.total(("dpo",)) > 0
    assert planmod.main(["--profile", "paper"]) == 0
    out = capsys.readouterr().out
    assert "hours need a bench JSON" in out and "HSIR-SFT t=1" in out and "sample_fraction=0.7" in out


def test_a_profile_with_measured_shares_plans_with_them_and_assume_sets_one(capsys):
    """The embedded profile's plan starts from its pilots' shares (a 135M model samples short and rarely right), not
    the paper's; --assume changes one field and keeps the rest."""
    measured = planmod.PROFILE_ASSUMPTIONS["embedded"]
    assert planmod.plan("embedded", measure=False).a == measured != Assumptions()
    assert planmod.main(["--profile", "embedded", "--assume", "accuracy=0.1"]) == 0
    out = capsys.readouterr().out
    assert "accuracy=0.1," in out and f"sample_fraction={measured.sample_fraction}" in out


def test_hours_from_a_bench_file_and_device_json_refused(tmp_path, capsys):
    path = tmp_path / "paper-shape-test.json"
    path.write_text(json.dumps(BENCH))
    assert planmod.main(["--profile", "smoke", "--bench", str(path)]) == 0
    assert "h on TestGPU" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no 'stages'"):
        load_bench(ROOT / "bench" / "device-h200.json")


def test_preflight_without_the_hub_lists_what_is_missing_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty hub cache: the paper's models are not here
    t0 = time.perf_counter()
    findings = preflight("paper")
    assert time.perf_counter() - t0 < 5
    missing = {f.what: f.detail for f in blocking(findings)}
    assert "HF_HUB_OFFLINE" in missing["model Qwen/Qwen2.5-1.5B-Instruct"]
    if not SMI:
        assert "GPU" in missing
    text = preflight_text("paper", findings)
    assert text.count("\n") < 25 and "MISS" in text  # one screen


def test_reproduce_paper_stops_at_the_preflight(tmp_path):
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HSIR_RUNS_DIR": str(tmp_path / "runs")}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "hsir.reproduce", "--profile", "paper"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "[preflight] paper" in r.stdout and "MISS" in r.stdout and "stopped before any notebook" in r.stdout
    assert "[reproduce] 1/" not in r.stdout and not (tmp_path / "runs" / "paper" / "notebooks").exists()
    assert "Traceback" not in r.stderr and time.perf_counter() - t0 < 30


def test_other_seeds_pay_their_own_samples_and_training_for_the_claim_rows_only():
    pl = Planner(CFG, A)
    p = {"methods": ["SFT-Oracle", "ReST-EM", "HSIR-SFT"], "seeds": [0, 1]}
    cells = planmod.notebook_cells(pl, "02_hsir_sft", p, "")
    names = [c.name for c in cells]
    assert names == ["SFT-Oracle t=1", "ReST-EM t=1", "ReST-EM t=2", "HSIR-SFT t=1", "HSIR-SFT t=2",
                     "ReST-EM t=1 seed 1", "ReST-EM t=2 seed 1", "HSIR-SFT t=1 seed 1", "HSIR-SFT t=2 seed 1"]
    seed0, seed1 = cells[1], cells[5]
    assert seed0.tokens["generate"] == seed1.tokens["generate"] == 200_000  # seed 1 samples M0 again
    assert seed0.tokens["sft"] == seed1.tokens["sft"] == 2.0 * (10 * 500 + 200 * 600)  # and trains its own round
    assert seed1.models == 1 and cells[0].models == 2  # M0 once, paid by the first cell: the seeds share it


def test_histograms_on_the_first_queries_cost_that_many():
    pl = Planner(CFG, A)
    cells = planmod.notebook_cells(pl, "01", {"K_hist": 10, "hist_queries": 20}, "sample_model(")
    assert cells[1].tokens["generate"] == 3 * 20 * 10 * 500  # base, the quarter M0 and M0: 20 queries × 10 × 500


def test_rft_at_one_round_shares_m0s_samples():
    from dataclasses import replace

    pl = Planner(replace(CFG, T=1), A)
    pl.round_cell("02", "ReST-EM", 1)
    rft = pl.round_cell("02", "RFT", 1)  # K × T = K samples, the same prompts and seeds: ReST-EM's
    assert rft.tokens.get("generate", 0) == 0 and rft.shared == ["02 ReST-EM t=1"]
    two = Planner(CFG, A)  # T = 2: RFT's budget is 2K samples, its own
    two.round_cell("02", "ReST-EM", 1)
    assert two.round_cell("02", "RFT", 1).tokens["generate"] == 100 * 8 * 500


def test_the_plans_seeds_run_the_claim_rows_of_the_loop_notebooks_again():
    one, three = planmod.plan("embedded", A, measure=False), planmod.plan("embedded", A, measure=False, seeds=[1, 2])
    extra = {c.name for cs in three.cells.values() for c in cs} - {c.name for cs in one.cells.values() for c in cs}
    assert "HSIR-SFT t=1 seed 2" in extra and "select-random t=1 seed 1" in extra
    assert not any(n.startswith(("SFT-Oracle", "RFT", "ReGenesis", "GRPO+")) for n in extra)  # not claim rows
    assert three.total(["sft"]) > one.total(["sft"])


def test_own_reward_check_costs_fresh_samples_of_the_grpo_row_and_its_start_once():
    pl = Planner(CFG, A)
    p = {"methods": ["GRPO", "H-GRPO"], "reward_check": ["GRPO", "H-GRPO"]}
    cells = planmod.notebook_cells(pl, "04", p, "own_reward_table(cfg, reward_check)")
    assert [c.name for c in cells] == ["GRPO t=1", "H-GRPO t=1", "GRPO own reward", "H-GRPO own reward"]
    # learnable: 90% of queries solved at least once, 50% failed at least once, so 40% both; K fresh samples of each
    fresh = 100 * 0.4 * 4 * 500
    assert (A.solved_queries, A.failed_queries) == (0.9, 0.5)
    # the first check also pays M0's K samples (which queries are learnable) and M0's fresh samples
    assert cells[2].tokens["generate"] == pytest.approx(100 * 4 * 500 + 2 * fresh)
    assert cells[3].tokens["generate"] == pytest.approx(fresh)  # both start from M0: only the trained model's own samples
    assert planmod.notebook_cells(Planner(CFG, A), "04", p, "")[-1].name == "H-GRPO t=1"  # no check, no cost
