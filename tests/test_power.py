import math
import shutil

import numpy as np
import pytest

from hsir import power, results
from hsir.claims import CLAIMS, CONTRADICTED, HOLDS, NOT_RUN, UNRESOLVED, pooled_paired_difference
from hsir.config import ROOT
from hsir.power import Components
from tests.test_claims import fake_roots

SEEDS, N = 5, 200
MIXED = Components(problem=0.1**2, seed=0.03**2, interaction=0.3**2, seeds=SEEDS, n=N)
# right/wrong answers as the claims mostly meet them: seed×problem dominates, whole seeds barely move
ANSWERS = Components(problem=0.05**2, seed=0.0, interaction=0.3**2, seeds=SEEDS, n=N)
SEED_HEAVY = Components(problem=0.02**2, seed=0.05**2, interaction=0.1**2, seeds=SEEDS, n=N)
PROBLEMS_ONLY = Components(problem=0.1**2, seed=0.0, interaction=0.0, seeds=SEEDS, n=N)


def two_way(rng, c: Components, seeds: int = SEEDS, n: int = N) -> np.ndarray:
    """Seeds × problems drawn from the two-way layout with ``c``'s variances."""
    return (rng.normal(0, math.sqrt(c.problem), n)[None, :] + rng.normal(0, math.sqrt(c.seed), seeds)[:, None]
            + rng.normal(0, math.sqrt(c.interaction), (seeds, n)))


@pytest.mark.parametrize("c", [MIXED, Components(problem=0.05**2, seed=0.3**2, interaction=0.3**2, seeds=3, n=400)],
                         ids=["mixed", "seeds-as-large-as-answers"])
def test_components_are_unbiased_and_the_models_variance_is_the_spread_of_experiments(c):
    rng = np.random.default_rng(0)
    draws = [two_way(rng, c, c.seeds, c.n) for _ in range(400)]
    est = [power.components(d) for d in draws]
    assert np.mean([e.interaction for e in est]) == pytest.approx(c.interaction, rel=0.03)
    assert np.mean([e.problem for e in est]) == pytest.approx(c.problem, rel=0.15)
    assert np.mean([e.seed for e in est]) == pytest.approx(c.seed, rel=0.2)  # a few seeds: a coarse estimate
    # the pooled difference's spread over experiments is the model's variance (its standard error here: ~4%)
    assert np.std([d.mean() for d in draws]) == pytest.approx(math.sqrt(power.variance(c, c.seeds, c.n, False)),
                                                              rel=0.12)


@pytest.mark.parametrize("c", [MIXED, ANSWERS, SEED_HEAVY, PROBLEMS_ONLY],
                         ids=["mixed", "answers-vary", "seeds-vary", "problems-only"])
def test_the_bootstraps_expected_variance_is_the_claims_interval(c):
    """The claims file's bootstrap (hsir.claims) counts seed×problem (3S - 2) / S times and the seed part (S - 1) / S
    times: wider than the model where seed×problem dominates, narrower where whole seeds do."""
    rng = np.random.default_rng(1)
    var = []
    for r in range(200):
        pairs = [({f"q{i}": v for i, v in enumerate(row)}, dict.fromkeys((f"q{i}" for i in range(N)), 0.0))
                 for row in two_way(rng, c)]
        lo, hi = pooled_paired_difference(pairs, n_boot=1000, seed=r)["diff_ci95"]
        var.append(((hi - lo) / 2 / power.Z95) ** 2)
    assert np.mean(var) == pytest.approx(power.variance(c, SEEDS, N), rel=0.12)
    model = power.variance(c, SEEDS, N, bootstrap=False)
    if c is ANSWERS:
        assert np.mean(var) > 2 * model
    if c is SEED_HEAVY:
        assert np.mean(var) < 0.9 * model


def test_sizes_needed_are_the_smallest_that_resolve_the_distance_with_80_percent_power():
    c = Components(problem=0.01, seed=0.0004, interaction=0.1, seeds=3, n=1000)

    def width(seeds: int, n: int) -> float:  # the interval's half-width plus 0.84 of the estimate's own spread
        return power.half_width(c, seeds, n) + power.Z_POWER * math.sqrt(power.variance(c, seeds, n, False))

    s = power.seeds_needed(c, 1000, 0.015)
    assert s > power.MIN_SEEDS and width(s, 1000) < 0.015 <= width(s - 1, 1000)
    n = power.problems_needed(c, 3, 0.04)
    assert width(3, n) < 0.04 <= width(3, n - 1)
    assert power.seeds_needed(c, 1000, 0.5) == power.MIN_SEEDS  # already resolved at the fewest seeds
    # what the other dimension leaves: problems alone too wide for any seed count, seeds alone for any problem count
    assert power.seeds_needed(c, 100, 0.02) is None
    seeds_alone = power.Z95 * math.sqrt(c.seed * 2 / 9) + power.Z_POWER * math.sqrt(c.seed / 3)  # at 3 seeds
    assert power.problems_needed(c, 3, 0.99 * seeds_alone) is None
    assert power.problems_needed(c, 3, 1.01 * seeds_alone) is not None
    problems_alone = (power.Z95 + power.Z_POWER) * math.sqrt(c.problem / 1000)  # the limit of many seeds
    assert power.seeds_needed(c, 1000, problems_alone * 1.0001) == power.MAX_SEEDS + 1  # past the cap: "more than"
    with pytest.raises(ValueError, match="distance must be positive"):
        power.problems_needed(c, 3, 0.0)


def test_at_the_size_needed_four_experiments_in_five_resolve():
    """The size ``problems_needed`` returns resolves the effect in 80% of experiments drawn from the two-way model,
    the interval's half-width taken as the bootstrap's expected one; where seed×problem dominates, sizing by the
    bootstrap's variance alone (which counts it 2.3 times at three seeds) would give ~90%."""
    rng = np.random.default_rng(3)
    c = Components(problem=0.05**2, seed=0.005**2, interaction=0.3**2, seeds=3, n=1000)
    n = power.problems_needed(c, 3, 0.03)
    hw = power.half_width(c, 3, n)
    means = [two_way(rng, c, 3, n).mean() + 0.03 for _ in range(3000)]
    assert np.mean([m - hw > 0 for m in means]) == pytest.approx(0.80, abs=0.025)


def test_a_claim_at_its_measured_differences_resolves_by_the_claims_rule():
    """Issue 26's bar asks whether half the claims resolve at 3 seeds: were each measured difference the truth, a
    comparison resolves on the side it fell at ``problems_needed`` problems, or at none when whole seeds alone are
    too wide; a claim then follows the claims rule (``combine``: one comparison against it contradicts it)."""
    c = Components(problem=0.01, seed=0.0, interaction=0.1, seeds=3, n=1000)
    assert power.resolvable(c, 0.03, ">") == (HOLDS, power.problems_needed(c, 3, 0.03))
    assert power.resolvable(c, -0.03, ">") == (CONTRADICTED, power.problems_needed(c, 3, 0.03))
    assert power.resolvable(c, 0.01, "<") == (CONTRADICTED, power.problems_needed(c, 3, 0.01))
    # "≥" against the -2-point margin: -1 point is 1 point on the paper's side; on the margin, no size tells
    assert power.resolvable(c, -0.01, ">=", 0.02) == (HOLDS, power.problems_needed(c, 3, 0.01))
    assert power.resolvable(c, -0.02, ">=", 0.02) == (UNRESOLVED, None)
    assert power.resolvable(c, 1e-15, ">") == (UNRESOLVED, None)  # a float step off the threshold is on it
    seed_heavy = Components(problem=0.0, seed=0.03**2, interaction=0.1, seeds=3, n=1000)
    assert power.resolvable(seed_heavy, 0.02, ">") == (UNRESOLVED, None)  # whole seeds alone: ~4.2 points at 3
    assert power.claim_resolvable([(HOLDS, 100), (HOLDS, 500)]) == (HOLDS, 500)  # every part must resolve
    # contradicted at the fewest problems of those against it, even beside a comparison that did not run
    assert power.claim_resolvable([(HOLDS, 100), (CONTRADICTED, 300), (NOT_RUN, None), (CONTRADICTED, 200)]) == \
        (CONTRADICTED, 200)
    assert power.claim_resolvable([(HOLDS, 100), (NOT_RUN, None)]) == (NOT_RUN, None)
    assert power.claim_resolvable([(HOLDS, 100), (UNRESOLVED, None)]) == (UNRESOLVED, None)
    claims = {c.key: c for c in CLAIMS}
    rows = [(claims["Table 5"], ["a"], HOLDS, 3_000), (claims["Table 7"], ["b"], CONTRADICTED, 600),
            (claims["Table 1b"], ["c"], UNRESOLVED, None)]
    assert "**2 of 3** claims could resolve at some size (each comparison with 80% probability), 1 of them at the " \
        "1,000 problems run; half (2) would need 3,000 problems." in power.at_measured_text(rows, 1000)
    assert "no test split resolves half (3)." in power.at_measured_text(rows + [rows[2]] * 2, 1000)
    past_cap = [(claims["Table 5"], ["a"], HOLDS, power.MAX_PROBLEMS + 1)]
    assert "half (1) would need more than 10,000,000 problems." in power.at_measured_text(past_cap, 1000)


def test_at_measured_on_fake_run_folders_reads_every_comparison_as_the_claims_file_does(tmp_path):
    roots = fake_roots(tmp_path)
    got = {claim.key: (lines, v, n) for claim, lines, v, n in power.at_measured(roots, n_boot=200)}
    assert got["Table 1b"][1] == HOLDS and got["Table 3 (a)"][1] == CONTRADICTED  # +32 and -32 points
    assert got["Table 7"][1] == NOT_RUN and got["Table 1a"][1] == NOT_RUN
    # Table 5: the same answers (0 points, 2 beyond the "≥" margin) and fewer tokens, a verdict the problems run reach
    lines, v, n = got["Table 5"]
    assert v == HOLDS and "H-GRPO fewer tokens than GRPO: -29.0 tokens, holds at 120" in lines
    assert "the paper's side" in lines[0]
    one_seed = {c.key: (ls, v) for c, ls, v, _ in power.at_measured({0: roots[0], 2: roots[2]}, n_boot=200)}
    assert one_seed["Table 1b"] == (["HSIR-DPO > IRPO (accuracy): +31.7 pts, one seed: its spread unknown"], NOT_RUN)


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
    at_measured = text.split("## Were the measured differences the truth")[1]
    assert "| Table 1b | HSIR-DPO > IRPO (accuracy): " in at_measured and "| Table 7 | " in at_measured
    assert "not run" in at_measured.split("| Table 7 | ")[1].splitlines()[0]  # its rows never ran
    one_seed = power.write_power({0: roots[0]}, tmp_path / "one.md")
    assert "No accuracy comparison has run on two seeds or more" in one_seed
    assert "Were the measured differences the truth" not in one_seed
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
                     .split("## Per comparison")[1].split("\n## ")[0])
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("**What it would take to tell**")[1]
    quoted = rows(readme.split("\n\n| comparison |")[1].split("\n\n")[0].join(["| comparison |", ""]))
    header = committed[0]
    keep = [header.index(c) for c in quoted[0]]
    assert len(quoted) == len(committed) > 10
    assert quoted[1:] == [[r[i] for i in keep] for r in committed[1:]]
    tally = next(line for line in (ROOT / "figures" / "embedded" / "power.md").read_text(encoding="utf-8").splitlines()
                 if line.startswith("At 3 seeds, were the measured differences the truth"))
    assert tally in readme  # the README's answer to issue 26's bar is the committed file's
