"""Another M0 (hsir.replicate): a run with its own M0 read as one more seed of the shared M0's."""

import shutil

import numpy as np
import pytest

from hsir import replicate, results
from hsir.power import Components
from tests.test_claims import seed_pair, write_round
from tests.test_power import two_way


def test_a_seed_like_the_others_flags_five_percent_and_a_shifted_one_mostly():
    """Calibration: with the replicate drawn from the seeds' own two-way layout, the 95% prediction interval misses
    it about 5% of the time, at three seeds as at five; with the replicate moved by 8 points (4.4 SDs of a seed;
    another M0's effect), far more often, and most of the time at five seeds."""
    rng = np.random.default_rng(0)
    c = Components(problem=0.02, seed=0.0002, interaction=0.06, seeds=4, n=500)  # seed×problem dominates, as here
    rates = {}
    for seeds in (3, 5):
        for shift in (0.0, 0.08):
            flags = []
            for _ in range(600):
                d = two_way(rng, c, seeds=seeds + 1, n=500)
                _, _, t, crit = replicate.new_seed_t(d[:seeds], d[seeds] + shift)
                flags.append(abs(t) > crit)
            rates[seeds, shift] = np.mean(flags)
    assert 0.025 <= rates[3, 0.0] <= 0.075 and 0.025 <= rates[5, 0.0] <= 0.075, rates
    assert rates[3, 0.08] > 4 * rates[3, 0.0] and rates[5, 0.08] >= 0.8, rates


def test_the_rule_fires_by_chance_as_the_binomial_says():
    assert replicate.p_at_least(2, 13) == pytest.approx(1 - 0.95**13 - 13 * 0.05 * 0.95**12)
    assert replicate.p_at_least(0, 13) == pytest.approx(1.0)


def _roots(tmp_path):
    """Three seeds of Table 1b and Table 3 (b), and a replicate whose HSIR-DPO lost its gain (another M0's rows)."""
    roots = {}
    for s in range(3):
        root = roots[s] = tmp_path / f"seed{s}"
        better, base = seed_pair(400, 60 + 4 * s, 10, s)  # +12.5, +13.5, +14.5 points
        write_round(root, "HSIR-DPO", better, 100, 2)
        write_round(root, "IRPO", base, 100, 2)
        close, other = seed_pair(400, 12 + 2 * s, 8, 10 + s)  # +1.0, +1.5, +2.0 points
        write_round(root, "InDiv-only", close, 100, 2)
        write_round(root, "length-driven", other, 100, 2)
    rep = tmp_path / "replicate"
    better, base = seed_pair(400, 10, 10, 99)  # no gain at all
    write_round(rep, "HSIR-DPO", better, 100, 2)
    write_round(rep, "IRPO", base, 100, 2)
    close, other = seed_pair(400, 12, 8, 50)
    write_round(rep, "InDiv-only", close, 100, 2)
    write_round(rep, "length-driven", other, 100, 2)
    return roots, rep


def test_replicate_file_flags_the_comparison_another_m0_moved(tmp_path, capsys):
    roots, rep = _roots(tmp_path)
    table = replicate.replicate_table(roots, rep, n_boot=300).set_index("comparison")
    assert list(table.index) == ["HSIR-DPO > IRPO (accuracy)", "InDiv-only > length-driven (accuracy)"]
    dpo, indiv = table.loc["HSIR-DPO > IRPO (accuracy)"], table.loc["InDiv-only > length-driven (accuracy)"]
    assert dpo["flagged"] == "yes" and float(dpo["t"]) < -float(dpo["critical |t|"]) and dpo["n"] == 400
    assert dpo["replicate - pooled (pts)"] == "-13.5" and dpo["replicate [95% CI]"].startswith("+0.0 [")
    assert indiv["flagged"] == "no" and dpo["verdict: seeds / replicate alone"] == "holds / unresolved at this size"
    base = tmp_path / "cli"
    for s, root in roots.items():
        shutil.copytree(root, base if s == 0 else tmp_path / f"cli-seed{s}")
    out = tmp_path / "replicate.md"
    argv = ["--profile", "embedded", "--set", f'root="{base}"', "--replicate", str(rep), "--out", str(out)]
    assert results.main(argv) == 0
    text = out.read_text()
    assert "**1 of 2** accuracy comparisons flagged" in text and "does not show" in text
    assert "| HSIR-DPO | 0, 1, 2 |" in text  # the per-row table: each seed's accuracy beside the replicate's
    assert capsys.readouterr().out.strip() == text.strip()
    with pytest.raises(FileNotFoundError, match="not a run root"):
        results.replicate_file(results.load_config("embedded"), tmp_path / "nowhere")
    with pytest.raises(SystemExit):
        results.main(["--profile", "embedded", "--replicate", str(rep), "--power"])


def test_degenerate_and_refused_replicates(tmp_path):
    """Every answer wrong on every side: no spread anywhere, t and the naive z 0, no crash. A replicate that is one
    of the seeds' roots is refused; one comparison cannot meet a rule of two."""
    roots = {}
    wrong = {f"q{i}": False for i in range(50)}
    for s in range(3):
        roots[s] = tmp_path / f"seed{s}"
        write_round(roots[s], "HSIR-DPO", wrong, 100, 2)
        write_round(roots[s], "IRPO", wrong, 100, 2)
    rep = tmp_path / "replicate"
    write_round(rep, "HSIR-DPO", wrong, 100, 2)
    write_round(rep, "IRPO", wrong, 100, 2)
    row = replicate.replicate_table(roots, rep, n_boot=100).iloc[0]
    assert (row["t"], row["naive z"], row["flagged"]) == ("+0.00", "+0.00", "no")
    text = replicate.write_replicate(roots, rep, tmp_path / "r.md", n_boot=100)
    assert "fewer comparisons than the rule's 2, so it cannot decide" in text
    with pytest.raises(ValueError, match="needs an M0 of its own"):
        replicate.write_replicate(roots, roots[1], tmp_path / "r.md", n_boot=100)
