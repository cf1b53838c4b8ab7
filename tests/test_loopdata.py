"""The loop's data as the paper draws it (D_s a seeded random draw, D_u the remaining queries), and the selection's
refusals and warnings where the data cannot give what a method asks for."""

import logging

import pytest

from hsir.config import load_config
from hsir.loopdata import Data, load_data, normalise, seed_draw
from hsir.methods import get_method
from hsir.selection import select, select_stage
from hsir.tasks import Problem, get_task


def test_paper_profile_du_excludes_ds_and_ds_is_a_seeded_draw(data_dir):
    cfg = load_config("paper", {"data_dir": str(data_dir), "n_seed": 100})
    data = load_data(cfg)
    seed_q = {normalise(p.question) for p in data.seed}
    assert len(data.seed) == 100 and not seed_q & {normalise(p.question) for p in data.unlabeled}
    pool = get_task("gsm8k", data_dir).load("seed")
    assert len(pool) > 100 and [p.qid for p in data.seed] != [p.qid for p in pool[:100]]  # not the first 100
    assert [p.qid for p in load_data(cfg).seed] == [p.qid for p in data.seed]  # the same draw every time
    other = load_data(load_config("paper", {"data_dir": str(data_dir), "n_seed": 100, "data_seed": 1}))
    assert [p.qid for p in other.seed] != [p.qid for p in data.seed]
    # every seed question is a GSM8K-train question, so D_u lost exactly those
    train = get_task("gsm8k", data_dir).load("train")
    assert len(data.unlabeled) == min(cfg.n_unlabeled, len(train) - len(seed_q & {normalise(p.question) for p in train}))
    assert data.excluded == len(seed_q & {normalise(p.question) for p in train}) > 0
    # which queries D_u holds is part of a cached generation's key once anything was left out
    from hsir.sampling import sampling_spec

    smoke = load_config("smoke")
    assert "qids" in sampling_spec(cfg, data) and "qids" not in sampling_spec(smoke, load_data(smoke))


def test_asking_for_more_seed_rows_than_exist_fails_naming_both_numbers(data_dir):
    n = len(get_task("gsm8k", data_dir).load("seed"))
    with pytest.raises(ValueError, match=rf"has {n} seed rows; the profile asks for n_seed=1000"):
        load_data(load_config("paper", {"data_dir": str(data_dir)}))
    assert len(load_data(load_config("paper", {"data_dir": str(data_dir), "allow_fewer_seed_rows": True})).seed) == n


def test_a_split_of_exactly_n_seed_rows_is_taken_whole_in_order():
    cfg = load_config("smoke")
    pool = [Problem(f"q{i}", f"question {i}", "1") for i in range(5)]
    assert seed_draw(pool, cfg, n=5) == pool
    drawn = seed_draw(pool, cfg, n=3)
    assert len(drawn) == 3 and drawn == sorted(drawn, key=pool.index)  # the split's order kept


def test_ties_of_eq3_are_broken_at_random_not_by_length():
    g = [{"qid": "a", "length": n, "readiv": 0.5, "why": "c", "text": f"t{n}"} for n in (1, 2, 3, 4, 5, 6)]
    picks = {select("high_readiv", g, seed)[0]["text"] for seed in range(40)}
    assert len(picks) > 2  # "highest" on a tie is not "shortest" by another name
    assert select("high_readiv", g, 3) == select("high_readiv", g, 3)  # seeded
    assert len({select("low_readiv", g, seed)[0]["text"] for seed in range(40)}) > 2


def smoke_data(reasoning: str | None = "trace") -> tuple:
    cfg = load_config("smoke", {"tau": 10.0})
    task = get_task("synthetic")
    seed = [Problem("s0", "1 + 1?", "2", reasoning="<think>\n1 + 1 = 2\n</think>\n<answer>\n2\n</answer>")]
    unlabeled = [Problem("u0", "2 + 2?", "4", reasoning=reasoning)]
    return cfg, Data(task, seed, unlabeled, [])


def test_a_filter_keeping_nothing_warns_and_records_it(caplog):
    cfg, data = smoke_data()
    cands = [{"qid": "u0", "origin": "sample", "req": 0, "sample": k, "text": "x", "correct": True} for k in range(3)]
    scores = [{"id": f"sample:0:{k}", "qid": "u0", "length": 5, "indiv": -1.0 + k} for k in range(3)]
    with caplog.at_level(logging.WARNING, logger="hsir.selection"):
        rows, report = select_stage(get_method("HSIR-SFT"), cfg, data, cands, scores)
    assert report["kept"] == 0 and "kept 0 of 3" in report["filter_kept_none"] and "tau 10.0" in report["filter_kept_none"]
    assert any("kept 0 of 3" in r.message for r in caplog.records)
    assert [r["origin"] for r in rows] == ["seed"]  # the round trains on D_s alone


def test_sft_oracle_without_du_traces_refuses_naming_the_source():
    cfg, data = smoke_data(reasoning=None)
    with pytest.raises(ValueError, match=r"SFT-Oracle trains on the gold traces of D_u, but 1 of 1"):
        select_stage(get_method("SFT-Oracle"), cfg, data, [], [])
    cfg, data = smoke_data()
    rows, _ = select_stage(get_method("SFT-Oracle"), cfg, data, [], [])
    assert [r["origin"] for r in rows] == ["seed", "oracle"]
