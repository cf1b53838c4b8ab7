import numpy as np
import pytest
import torch

from hsir.analysis import auc_ci, matched_length_pairs, roc_auc, spearman
from hsir.diversity import length_driven_filter, load_embedder, readiv, readiv_scores


def test_reasoning_diversity_drops_near_duplicates_in_order():
    e = torch.tensor([[1.0, 0, 0], [0.99, 0.1, 0], [0, 1.0, 0], [0, 0.98, 0.05], [0, 0, 1.0]])
    assert readiv(e) == pytest.approx(3 / 5)
    assert readiv(e, threshold=0.999) == 1.0
    assert readiv(e[:1]) == 1.0
    with pytest.raises(ValueError):
        readiv(torch.zeros(0, 3))


def test_readiv_with_the_embedded_embedder_sees_restated_steps():
    emb = load_embedder()
    clean = "<think>\nMia has 3 apples.\n\nShe buys 4 more, so 7.\n\nSo the answer is 7.\n</think>\n<answer>\n7\n</answer>"
    redundant = clean.replace("So the answer is 7.", "So the answer is 7.\n\nWait, let me double-check.\n\n"
                              "Mia has 3 apples.\n\nShe buys 4 more, so 7.\n\nSo the answer is 7.")
    c, r = readiv_scores([clean, redundant], emb)
    assert c == 1.0 and r < 0.8


def test_length_driven_filter_per_query():
    cands = [{"qid": "a", "n_tokens": n} for n in (100, 120, 200)] + [{"qid": "b", "n_tokens": 50}]
    kept = length_driven_filter(cands)
    assert sorted(c["n_tokens"] for c in kept) == [50, 100, 120]


def test_auc_spearman_and_matching():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2]) == 1.0
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5
    auc, lo, hi = auc_ci([1] * 20 + [0] * 20, list(range(40, 20, -1)) + list(range(20)))
    assert auc == 1.0 and lo == 1.0
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    pairs = matched_length_pairs([100, 200, 300], [98, 210, 500, 301], tolerance=0.05)
    assert sorted(pairs) == [(0, 0), (1, 1), (2, 3)]


def test_correlation_table_skips_nan_and_names_its_columns():
    from hsir.analysis import correlation_table

    sc = {"v": np.array([1.0, 2.0, np.nan, 4.0, 5.0]), "Eq.3 ReaDiv": np.array([2.0, 4.0, 6.0, 8.0, 10.0]),
          "length (negated)": -np.array([50.0, 40.0, 30.0, 20.0, 10.0])}
    t = correlation_table({"src": sc}, ["v"])
    row = t.iloc[0]
    assert row["n"] == 4 and row["spearman vs Eq.3 ReaDiv"] == pytest.approx(1.0)
    assert row["spearman vs length"] == pytest.approx(-1.0)
