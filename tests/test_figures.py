"""The figure builders the notebooks call: each draws what its data says (bars, lines, thresholds), and ``save``
writes where ``hsir.config.figures_dir`` points."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from hsir import figures  # noqa: E402
from hsir.analysis import level_split, recommend_cuts  # noqa: E402
from hsir.config import figures_dir  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _bar_heights(ax) -> list[float]:
    return [p.get_height() for p in ax.patches]


def _vlines(ax) -> list[float]:
    return [line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]


def test_save_writes_png_and_pdf_under_the_profile_figures_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png = figures.save(fig, figures_dir("smoke"), "x")
    assert png == tmp_path / "smoke" / "x.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "smoke" / "x.pdf").read_bytes()[:4] == b"%PDF"


def test_correct_count_histogram_has_one_bar_per_count_and_is_paper_fig_2_left():
    fig = figures.correct_count_histogram({"a": 0, "b": 2, "c": 2, "d": 3}, k=3)
    ax = fig.axes[0]
    assert _bar_heights(ax) == [1, 0, 2, 1]
    assert ax.get_xlabel() == "correct samples out of K = 3" and "4 queries" in ax.get_title()
    assert ax.get_title().startswith("Fig. 2 (left): ")
    named = figures.correct_count_histogram({"a": 1}, k=2, title="M0 on synthetic/test")
    assert named.axes[0].get_title() == "Fig. 2 (left): M0 on synthetic/test"


def test_figure_2_draws_each_model_histogram_and_the_level_shares():
    hist = {"base": {"a": 0, "b": 0, "c": 1, "d": 2}, "M0": {"a": 1, "b": 2, "c": 2, "d": 2}}
    levels = level_split(hist["M0"], levels=2)
    ablation = pd.DataFrame({"method": ["select-random"], "accuracy": [0.5], "accuracy_ci95": [(0.4, 0.6)],
                             "mean_tokens": [100.0]})
    fig = figures.figure_2(hist, 2, levels, ablation)
    left, middle, right = fig.axes[:3]
    assert _bar_heights(left) == [2, 1, 1, 0, 1, 3]  # base's counts of 0, 1, 2 correct, then M0's
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["base", "M0"]
    assert _bar_heights(middle) == pytest.approx(list(levels["share of data"]))
    assert _bar_heights(right) == pytest.approx([50.0])


def _redundancy_table():
    return pd.DataFrame({"auc": [0.9, 0.6], "auc_ci95": [(0.85, 0.95), (0.5, 0.7)], "matched_auc": [0.5, 0.88],
                         "matched_ci95": [(0.4, 0.6), (0.8, 0.95)]}, index=["token/plain", "step/plain"])


def test_redundancy_auc_bars_all_and_matched_auc_per_score_with_chance_and_target():
    fig = figures.redundancy_auc(_redundancy_table(), target=0.85)
    ax = fig.axes[0]
    assert _bar_heights(ax) == [0.9, 0.6, 0.5, 0.88]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["token/plain", "step/plain"]
    hlines = sorted(line.get_ydata()[0] for line in ax.lines if len(set(line.get_ydata())) == 1)
    assert hlines == [0.5, 0.85]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["target 0.85", "all traces", "matched length"]


def test_indiv_distribution_marks_the_paper_tau_and_the_recommended_cut():
    scores = {"a": np.array([1.0, 2.0, 3.0, 6.0, 4.0, 5.0, 7.0, 8.0, 9.0, 10.0]), "b": np.arange(10.0)}
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    rec = recommend_cuts({"M0 correct samples": (scores, labels)}, ["a"], tau=-0.5)
    fig = figures.indiv_distribution(scores, labels, ["a", "b"], -0.5, rec, "M0 correct samples")
    a, b = fig.axes
    assert _vlines(a) == [-0.5, 4.0] and _vlines(b) == [-0.5]  # "b" has no cut in rec: only the paper's tau
    legend = [t.get_text() for t in a.get_legend().get_texts()]
    assert legend[:2] == ["M0 correct, clean (n=6)", "M0 correct, re-checking (n=4)"]
    assert "best cut = q0.30 of these" in legend
    assert sum(_bar_heights(a)) == 10 and a.get_xlabel() == "InDiv under M0, a"


def test_grpo_curves_draw_one_line_per_method_in_each_panel():
    curves = pd.DataFrame({"method": ["H-GRPO"] * 3 + ["GRPO"] * 3, "step": [3, 1, 2, 1, 2, 3],
                           "reward": [0.3, 0.1, 0.2, 1.0, 2.0, 3.0], "completion_length": [8.0, 10.0, 9.0, 20, 19, 18],
                           "kl": [0.2, 0.0, 0.1, 0.0, 0.3, np.nan]})
    fig = figures.grpo_curves(curves)
    assert [ax.get_ylabel() for ax in fig.axes] == ["reward (weighted sum)", "mean completion tokens", "KL to start"]
    assert all(ax.get_xlabel() == "GRPO step" for ax in fig.axes)
    for ax, col in zip(fig.axes, ["reward", "completion_length", "kl"], strict=True):
        assert [line.get_label() for line in ax.lines] == ["H-GRPO", "GRPO"]
        for line, (_, g) in zip(ax.lines, curves.groupby("method", sort=False), strict=True):
            g = g.sort_values("step")
            assert list(line.get_xdata()) == list(g["step"])
            np.testing.assert_array_equal(np.asarray(line.get_ydata(), dtype=float), g[col].to_numpy(dtype=float))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["H-GRPO", "GRPO"]
    assert fig.axes[1].get_legend() is None


def test_grpo_curves_without_runs_or_kl_leave_panels_empty():
    empty = pd.DataFrame(columns=["method", "step", "reward", "completion_length", "kl"])
    assert all(not ax.lines for ax in figures.grpo_curves(empty).axes)
    no_kl = pd.DataFrame({"method": ["GRPO"] * 2, "step": [1, 2], "reward": [0.0, 1.0], "completion_length": [5.0, 4.0]})
    fig = figures.grpo_curves(no_kl)
    assert [len(ax.lines) for ax in fig.axes] == [1, 1, 0]


def _ood_rows():
    return pd.DataFrame({"label": ["MedQA→GPQA", "MedQA→GPQA", "GSM8K→MedQA", "GSM8K→MedQA"],
                         "method": ["IRPO", "HSIR-DPO", "IRPO", "HSIR-DPO"], "accuracy (%)": [20.0, 30.0, 50.0, 55.0],
                         "ci_low": [15.0, 25.0, 45.0, 50.0], "ci_high": [26.0, 34.0, 54.0, 60.0]})


def test_figure_4_groups_bars_by_set_one_per_method_with_its_interval():
    fig = figures.figure_4(_ood_rows())
    ax = fig.axes[0]
    assert _bar_heights(ax) == [20.0, 50.0, 30.0, 55.0]  # IRPO's bars on both sets, then HSIR-DPO's
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MedQA→GPQA", "GSM8K→MedQA"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["IRPO", "HSIR-DPO"]
    lows, highs = [], []
    for container in ax.containers:  # each bar's error bar spans its interval
        segments = container.lines[2][0].get_segments() if isinstance(container, ErrorbarContainer) else []
        lows += [s[0][1] for s in segments]
        highs += [s[1][1] for s in segments]
    assert lows == [15.0, 45.0, 25.0, 50.0] and highs == [26.0, 54.0, 34.0, 60.0]
    bars = ax.patches
    assert bars[0].get_x() < bars[2].get_x() < bars[1].get_x() < bars[3].get_x()  # grouped by set, methods side by side
    assert "no out-of-distribution" in figures.figure_4(_ood_rows().iloc[:0]).axes[0].texts[0].get_text()


def test_paper_points_take_each_methods_last_printed_round():
    pts = figures.paper_points("1a").set_index("method")
    assert tuple(pts.loc["HSIR-SFT"]) == (71.33, 896) and tuple(pts.loc["SFT-Initial"]) == (62.45, 1536)
    assert tuple(figures.paper_points("3").set_index("method").loc["InDiv-only"]) == (71.34, 1256)  # GSM8K columns
    assert figures.paper_points("7")["tokens"].isna().all()


def _results(rows):
    return pd.DataFrame([{"method": m, "iteration": t, "accuracy": a, "accuracy_ci95": (a - 0.05, a + 0.1),
                          "mean_tokens": tok} for m, t, a, tok in rows])


def test_better_faster_plots_ours_last_round_per_method_beside_the_papers():
    res = _results([("SFT-Initial", 1, 0.40, 300.0), ("HSIR-DPO", 1, 0.45, 280.0), ("HSIR-DPO", 2, 0.50, 250.0)])
    fig = figures.better_faster(res, "1b")
    ours, theirs = fig.axes
    points = [tuple(c.lines[0].get_xydata()[0]) for c in ours.containers]
    assert points == [(300.0, 40.0), (250.0, 50.0)]  # HSIR-DPO's last round only
    bars = [c.lines[2][0].get_segments()[0] for c in ours.containers]
    assert [(s[0][1], s[1][1]) for s in bars] == [pytest.approx((35.0, 50.0)), pytest.approx((45.0, 60.0))]
    assert [t.get_text() for t in ours.get_legend().get_texts()] == ["SFT-Initial", "HSIR-DPO (iter 2)"]
    paper = {line.get_label(): tuple(line.get_xydata()[0]) for line in theirs.lines}
    assert paper == {"SFT-Initial": (1536.0, 62.45), "IRPO": (1271.0, 68.0), "HSIR-DPO": (885.0, 73.35)}
    colour = {c.get_label(): c.lines[0].get_color() for c in ours.containers}
    assert colour["HSIR-DPO (iter 2)"] == {line.get_label(): line.get_color() for line in theirs.lines}["HSIR-DPO"]
    assert all(ax.get_xlabel() == "mean output tokens (fewer is faster)" for ax in fig.axes)


def test_better_faster_says_what_is_missing():
    fig = figures.better_faster(_results([]), "7")
    ours, theirs = fig.axes
    assert ours.texts[0].get_text() == "no finished rounds" and not ours.containers
    assert theirs.texts[0].get_text() == "Table 7 prints no output tokens" and not theirs.lines
