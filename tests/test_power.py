import math
import shutil

import numpy as np
import pytest

from hsir import power, results
from hsir.claims import CLAIMS, pooled_paired_difference
from hsir.config import ROOT
from hsir.power import Components
from tests.test_claims import fake_roots

SEEDS, N = 5, 400
TRUE = Components(problem=0.1**2, seed=0.03**2, interaction=0.3**2, seeds=SEEDS, n=N)
# right/wrong answers as the claims meet them: seed×problem dominates, seeds barely move
ANSWERS = Components(problem=0.05**2, seed=0.0, interaction=0.3**2, seeds=SEEDS, n=N)


def two_way(rng, c: Components = TRUE) -> np.ndarray:
    """Seeds × problems drawn from the two-way layout with ``c``'s variances."""
    return (rng.normal(0, math.sqrt(c.problem), N)[None, :] + rng.normal(0, math.sqrt(c.seed), SEEDS)[:, None]
            + rng.normal(0, math.sqrt(c.interaction), (SEEDS, N)))


def test_components_and_the_models_variance_match_the_spread_of_simulated_experiments():
    rng = np.random.default_rng(0)
    draws = [two_way(rng) for _ in range(400)]
    est = [power.components(d) for d in draws]
    assert np.mean([c.problem for c in est]) == pytest.approx(TRUE.problem, rel=0.1)
    assert np.mean([c.interaction for c in est]) == pytest.approx(TRUE.interaction, rel=0.02)
    assert np.mean([c.seed for c in est]) == pytest.approx(TRUE.seed, rel=0.25)  # five seeds: a coarse estimate
    # the pooled difference's spread over experiments is the model's variance (its standard error here: ~4%)
    assert np.std([d.mean() for d in draws]) == pytest.approx(math.sqrt(power.variance(TRUE, SEEDS, N, False)),
                                                              rel=0.12)


@pytest.mark.parametrize("c", [TRUE, ANSWERS], ids=["seeds-vary", "answers-vary"])
def test_the_bootstraps_expected_half_width_is_the_claims_interval(c):
    """The claims file's bootstrap (hsir.claims) counts seed×problem about (3S - 2) / S times: wider than the model
    where that part dominates, as on right/wrong answers."""
    rng = np.random.default_rng(1)
    widths = []
    for r in range(20):
        pairs = [({f"q{i}": v for i, v in enumerate(row)}, dict.fromkeys((f"q{i}" for i in range(N)), 0.0))
                 for row in two_way(rng, c)]
        lo, hi = pooled_paired_difference(pairs, n_boot=1000, seed=r)["diff_ci95"]
        widths.append((hi - lo) / 2)
    assert np.mean(widths) == pytest.approx(power.half_width(c, SEEDS, N), rel=0.08)
    if c is ANSWERS:
        assert np.mean(widths) > 1.4 * power.half_width(c, SEEDS, N, bootstrap=False)


def test_sizes_needed_are_the_smallest_that_resolve_the_distance():
    c = Components(problem=0.01, seed=0.0004, interaction=0.1, seeds=3, n=1000)
    s = power.seeds_needed(c, 1000, 0.01)
    assert s > power.MIN_SEEDS and power.half_width(c, s, 1000) < 0.01 <= power.half_width(c, s - 1, 1000)
    n = power.problems_needed(c, 3, 0.02)
    assert power.half_width(c, 3, n) < 0.02 <= power.half_width(c, 3, n - 1)
    assert power.seeds_needed(c, 1000, 0.5) == power.MIN_SEEDS  # already resolved at the fewest seeds
    # what the other dimension leaves: problems alone too wide for any seed count, seeds alone for any problem count
    assert power.seeds_needed(c, 100, 0.015) is None
    seeds_alone = power.Z95 * math.sqrt(c.seed * 2 / 9)  # the bootstrap's seed share at 3 seeds, (S - 1) / S²
    assert power.problems_needed(c, 3, 0.9 * seeds_alone) is None
    with pytest.raises(ValueError, match="distance must be positive"):
        power.problems_needed(c, 3, 0.0)


def test_one_seed_cannot_separate_seed_from_problem():
    with pytest.raises(ValueError, match="at least 2 of each"):
        power.components(np.zeros((1, 10)))


def test_distances_are_two_points_and_the_papers_side_of_the_threshold():
    claim = {c.key: c for c in CLAIMS}
    dpo = claim["Table 1b"]  # HSIR-DPO > IRPO, the paper's +4.43 points
    assert power.distances(dpo, dpo.comparisons[0]) == {"2 points": 0.02, "the paper's": pytest.approx(0.0443)}
    t1a = claim["Table 1a"]  # HSIR-SFT ≥ ReST-EM: the paper's +2.01 against the -2-point margin
    assert power.distances(t1a, t1a.comparisons[0])["the paper's"] == pytest.approx(0.0401)
    fig2 = claim["Fig. 2 (order)"]  # the paper prints no values
    assert power.distances(fig2, fig2.comparisons[0])["the paper's"] is None


def test_power_file_on_fake_run_folders_and_from_the_command_line(tmp_path, capsys):
    roots = fake_roots(tmp_path)  # IRPO at seeds 0 and 1; Table 7's combination never ran
    table = power.power_table(roots, n_boot=300)
    assert "Table 7" not in set(table["claim"]) and "Table 1a" not in set(table["claim"])
    assert not table["comparison"].str.contains("tokens").any()
    dpo = table.set_index("comparison").loc["HSIR-DPO > IRPO (accuracy)"]
    assert dpo["seeds"] == "0, 1" and dpo["n"] == 120
    assert dpo["verdict: claims.md / model's interval"] == "holds / holds"
    assert all(float(v) > 0 for v in dpo["± now: bootstrap / its expectation / model"].split(" / "))
    base = tmp_path / "cli"
    for s, root in roots.items():
        shutil.copytree(root, base if s == 0 else tmp_path / f"cli-seed{s}")
    out = tmp_path / "power.md"
    assert results.main(["--profile", "embedded", "--set", f'root="{base}"', "--power", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# What it would take to tell") and "| HSIR-DPO > IRPO (accuracy) |" in text
    assert capsys.readouterr().out.strip() == text.strip()
    one_seed = power.write_power({0: roots[0]}, tmp_path / "one.md")
    assert "No accuracy comparison has run on two seeds or more" in one_seed
    with pytest.raises(SystemExit) as stop:
        results.main(["--profile", "embedded", "--power", "--claims"])
    assert stop.value.code == 2


def test_the_readme_quotes_the_committed_power_file():
    """The README's "What it would take to tell" table is the committed power.md's, cell for cell, in the columns
    it keeps; rebuilding power.md without the README fails here."""
    def rows(text: str) -> list[list[str]]:
        return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
                if line.startswith("| ")]

    committed = rows((ROOT / "figures" / "embedded" / "power.md").read_text(encoding="utf-8")
                     .split("## Per comparison")[1])
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("**What it would take to tell**")[1]
    quoted = rows(readme.split("\n\n| comparison |")[1].split("\n\n")[0].join(["| comparison |", ""]))
    header = committed[0]
    keep = [header.index(c) for c in quoted[0]]
    assert len(quoted) == len(committed) > 10
    assert quoted[1:] == [[r[i] for i in keep] for r in committed[1:]]
