"""The analysis helpers behind notebooks 01, 04 and 07: the tau recommendation round trip and loop, the labels and
populations InDiv is read on, the level split and correct-count summary, the paper-ordered rows and GRPO curve
means, and the per-variant scoring pass."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hsir.analysis import (
    correct_count_summary,
    curve_means,
    in_paper_order,
    indiv_populations,
    level_split,
    planted_redundancy,
    population_table,
    recheck_labels,
    recommend_cut,
    recommend_cuts,
    recommendation,
    reference_traces,
    sample_prompts,
    score_all,
    subset_size,
    tau_recommendation,
    two_classes,
)
from hsir.indiv import VARIANTS, filter_by_indiv, resolve_tau
from hsir.tasks import get_task


class _PromptTask:
    """A task whose prompt names the query, so a test can see which problem each prompt was built for."""

    def prompt(self, p, tokenizer) -> str:
        return f"{tokenizer}|{p.qid}"


def test_recommended_quantile_tau_reproduces_the_cut_on_the_same_scores():
    rng = np.random.default_rng(0)
    clean, redundant = rng.normal(0.0, 1.0, 80), rng.normal(-2.0, 1.0, 20)
    scores = np.concatenate([clean, redundant, [np.nan]])
    labels = np.array([0] * 80 + [1] * 20 + [1])
    rec = recommend_cut(labels, scores, tau=-0.5)
    assert rec["flagged re-checking"] > 0.7 and rec["flagged clean"] < 0.2
    # the loop's filter, given the recommended tau string, drops exactly the flagged samples
    finite = scores[np.isfinite(scores)]
    cands = [{"indiv": float(s)} for s in finite]
    kept, threshold = filter_by_indiv(cands, rec["tau"])
    assert len(kept) == int(np.sum(finite >= rec["youden cut"]))
    assert threshold <= rec["youden cut"] and resolve_tau(finite, rec["tau"]) == threshold
    assert rec["quantile of tau"] == np.mean(finite < -0.5)
    assert recommend_cut([0, 0, 0], [1.0, 2.0, 3.0]) is None  # one class only: no cut


def test_recommendation_picks_the_variant_that_separates_best():
    rec = pd.DataFrame({("a", "M0"): {"flagged re-checking": 0.9, "flagged clean": 0.3, "tau": "q0.3"},
                        ("b", "M0"): {"flagged re-checking": 0.8, "flagged clean": 0.05, "tau": "q0.2"},
                        ("b", "seed"): {"flagged re-checking": 1.0, "flagged clean": 0.0, "tau": "q0.5"}}).T
    best, r = recommendation(rec, "M0")
    assert best == "b" and r["tau"] == "q0.2"


def test_level_split_is_hardest_first_and_counts_the_data():
    counts = {f"q{i}": c for i, c in enumerate([0, 0, 1, 2, 3, 5, 8, 8])}
    levels = level_split(counts)
    assert list(levels["queries"]) == [2, 2, 2, 2]
    assert list(levels["correct solutions"]) == [0, 3, 8, 16]
    assert levels["share of data"].sum() == 1.0 and levels.loc[1, "correct per query"] == "0-0"


def test_population_table_ignores_nan():
    t = population_table({"x": np.array([-1.0, 0.0, 1.0, np.nan])}, tau=0.5)
    assert t.loc["x", "n"] == 3 and abs(t.loc["x", "quantile of tau"] - 2 / 3) < 1e-12


def test_score_all_gives_every_variant_and_length(smoke_model):
    model, tok = smoke_model
    prompts = ["Q: 2+2?\n"] * 2
    texts = ["<think>\n2 + 2 = 4.\n\nSo 4.\n</think>\n<answer>\n4\n</answer>", "<think>\nfour\n</think>\n<answer>\n4\n</answer>"]
    scores, lengths = score_all(model, tok, prompts, texts)
    assert set(VARIANTS) <= set(scores) and "Eq.3 ReaDiv" not in scores
    assert list(lengths) == [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert np.array_equal(scores["length (negated)"], -lengths.astype(float))
    assert np.isfinite(scores["token/self-max (default)"]).all()


def test_planted_redundancy_pairs_each_prompt_with_its_clean_then_redundant_trace():
    problems = get_task("synthetic").load("seed", limit=5)
    prompts, texts, labels = planted_redundancy(_PromptTask(), problems, "tok")
    assert prompts == [f"tok|{p.qid}" for p in problems] * 2
    assert texts[:5] == [p.meta["clean_trace"] for p in problems]
    assert texts[5:] == [p.meta["redundant_trace"] for p in problems]
    assert labels.tolist() == [0] * 5 + [1] * 5
    # the self-generated label agrees with the planted one on the planted traces
    assert recheck_labels(texts).tolist() == labels.tolist()


def test_reference_traces_give_the_shipped_reasoning():
    problems = [SimpleNamespace(qid="a", reasoning="r1 a"), SimpleNamespace(qid="b", reasoning="r1 b")]
    assert reference_traces(_PromptTask(), problems, "t") == (["t|a", "t|b"], ["r1 a", "r1 b"])


def test_sample_prompts_keeps_the_task_queries_and_with_correct_only_the_correct_samples():
    problems = [SimpleNamespace(qid="a"), SimpleNamespace(qid="b")]
    rows = [{"qid": "a", "text": "a1", "correct": True}, {"qid": "z", "text": "z1", "correct": True},
            {"qid": "b", "text": "b1", "correct": False}, {"qid": "b", "text": "b2", "correct": True}]
    assert sample_prompts(_PromptTask(), problems, rows, "t") == (["t|a", "t|b", "t|b"], ["a1", "b1", "b2"])
    assert sample_prompts(_PromptTask(), problems, rows, "t", correct_only=True) == (["t|a", "t|b"], ["a1", "b2"])


def test_two_classes():
    assert two_classes([0, 1, 0]) and not two_classes([1, 1]) and not two_classes([0, 0]) and not two_classes([])


def test_indiv_populations_split_by_label_for_the_variant_asked():
    v = "token/self-max (default)"
    syn = {v: np.array([1.0, 2.0, 3.0, 4.0]), "other": np.zeros(4)}
    m0 = {v: np.array([10.0, 20.0, 30.0])}
    pops = indiv_populations(v, syn, [0, 1, 0, 1], {v: np.array([5.0])}, {v: np.array([6.0, 7.0])}, m0, [1, 0, 1])
    assert pops["synthetic clean (base)"].tolist() == [1.0, 3.0]
    assert pops["synthetic redundant (base)"].tolist() == [2.0, 4.0]
    assert pops["R1 traces (base)"].tolist() == [5.0] and pops["zero-shot samples (base)"].tolist() == [6.0, 7.0]
    assert pops["M0 correct samples"].tolist() == [10.0, 20.0, 30.0]
    assert pops["M0 correct, re-checking"].tolist() == [10.0, 30.0]


def _constructed_sources():
    # M0: redundant samples score 1, 2, 3 and 6, clean ones 4, 5, 7, 8, 9, 10. "s < 4" flags 3/4 of the redundant
    # and none of the clean (J = 0.75), better than "s < 7" (1 - 2/6): the cut is 4, i.e. quantile 0.3.
    m0_y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    m0 = {"a": np.array([1.0, 2.0, 3.0, 6.0, 4.0, 5.0, 7.0, 8.0, 9.0, 10.0]),
          "b": np.array([1.0, 9.0, 3.0, 10.0, 2.0, 5.0, 7.0, 8.0, 6.0, 4.0])}
    syn_y = np.array([0, 0, 1, 1])
    syn = {"a": np.array([5.0, 6.0, 1.0, 2.0]), "b": np.array([5.0, 6.0, 1.0, 2.0])}
    return {"M0 correct samples": (m0, m0_y), "synthetic seed traces": (syn, syn_y)}


def test_recommend_cuts_picks_the_youden_quantile_per_variant_and_source():
    rec = recommend_cuts(_constructed_sources(), ["a", "b"], tau=4.5)
    assert list(rec.index) == [("a", "M0 correct samples"), ("a", "synthetic seed traces"),
                               ("b", "M0 correct samples"), ("b", "synthetic seed traces")]
    assert list(rec.index.names) == ["variant", "source"] and rec["youden cut"].dtype.kind == "f"
    a = rec.loc[("a", "M0 correct samples")]
    assert a["youden cut"] == 4.0 and a["as quantile"] == pytest.approx(0.3) and a["tau"] == "q0.3000"
    assert a["flagged re-checking"] == 0.75 and a["flagged clean"] == 0.0
    assert a["quantile of tau"] == pytest.approx(0.4)  # 1, 2, 3, 4 lie below tau = 4.5
    # the tau string, resolved on the same scores, flags exactly the samples below the cut
    assert resolve_tau(_constructed_sources()["M0 correct samples"][0]["a"], a["tau"]) <= 4.0
    assert rec.loc[("a", "synthetic seed traces"), "tau"] == "q0.5000"


def test_recommend_cuts_leaves_out_a_source_with_one_class():
    sources = _constructed_sources()
    m0, _ = sources["M0 correct samples"]
    sources["M0 correct samples"] = (m0, np.zeros(10, dtype=int))
    rec = recommend_cuts(sources, ["a"], tau=0.0)
    assert list(rec.index) == [("a", "synthetic seed traces")]


def test_tau_recommendation_prefers_m0_samples_and_falls_back_to_the_seed_traces():
    rec = recommend_cuts(_constructed_sources(), ["a", "b"], tau=4.5)
    r = tau_recommendation(rec, ["M0 correct samples", "synthetic seed traces"], reference="a")
    assert r["source"] == "M0 correct samples" and r["variant"] == "a" and r["tau"] == "q0.3000"
    assert r["paper tau quantile"] == pytest.approx(0.4)
    one_class = recommend_cuts({"M0 correct samples": (_constructed_sources()["M0 correct samples"][0], np.ones(10)),
                                "synthetic seed traces": _constructed_sources()["synthetic seed traces"]}, ["a", "b"])
    r = tau_recommendation(one_class, ["M0 correct samples", "synthetic seed traces"], reference="a")
    assert r["source"] == "synthetic seed traces" and r["tau"] == "q0.5000"
    with pytest.raises(ValueError, match="no cut"):
        tau_recommendation(recommend_cuts({}, ["a"]), ["M0 correct samples"])


def test_correct_count_summary_counts_hopeless_and_solved_queries():
    t = correct_count_summary({"base": {"q1": 0, "q2": 0, "q3": 1}, "M0": {"q1": 4, "q2": 3, "q3": 0, "q4": 1}}, k=4)
    assert list(t.index) == ["base", "M0"]
    assert t.loc["base", "queries with 0 correct"] == 2 and t.loc["base", "queries with all correct"] == 0
    assert t.loc["M0", "queries with all correct"] == 1
    assert t["queries with 0 correct"].dtype.kind == "i"  # counts print as counts, not 2.0
    assert t.loc["M0", "queries with 0 correct"] == 1
    assert t.loc["base", "sample accuracy"] == pytest.approx(1 / 12) and t.loc["M0", "sample accuracy"] == 0.5


def test_subset_size_keeps_at_least_one_row():
    assert subset_size(400, 0.25) == 100 and subset_size(3, 0.25) == 1 and subset_size(10, 0.33) == 3


def test_in_paper_order_follows_the_paper_table_not_the_run_order():
    order = ["HSIR-SFT", "HSIR-SFT+H-GRPO", "H-GRPO", "GRPO"]
    assert in_paper_order("5", order) == ["GRPO", "H-GRPO"]
    assert in_paper_order("7", order) == ["HSIR-SFT", "H-GRPO", "HSIR-SFT+H-GRPO"]
    with pytest.raises(ValueError, match="paper table"):
        in_paper_order("9", order)


def test_curve_means_average_each_method_over_its_steps():
    curves = pd.DataFrame({"method": ["H-GRPO"] * 2 + ["GRPO"] * 2, "step": [1, 2, 1, 2],
                           "reward": [1.0, 2.0, 3.0, 5.0], "reward/accuracy": [0.0, 1.0, 1.0, 1.0],
                           "completion_length": [10.0, 20.0, 30.0, 40.0], "clipped_ratio": [0.0] * 4})
    m = curve_means(curves)
    assert list(m.index) == ["H-GRPO", "GRPO"] and list(m.columns) == ["reward/accuracy", "completion_length"]
    assert m.loc["H-GRPO", "completion_length"] == 15.0 and m.loc["GRPO", "reward/accuracy"] == 1.0
