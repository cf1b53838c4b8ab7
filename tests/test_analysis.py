"""The analysis helpers behind notebooks 01 and 07: the tau recommendation round trip, the level split, and
the per-variant scoring pass."""

import numpy as np
import pandas as pd

from hsir.analysis import level_split, population_table, recommend_cut, recommendation, score_all
from hsir.indiv import VARIANTS, filter_by_indiv, resolve_tau


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
