import json
import re
import shutil

import numpy as np
import pytest

from hsir import claims, results
from hsir.claims import CONTRADICTED, HOLDS, NOT_RUN, UNRESOLVED
from hsir.config import ROOT
from hsir.evaluate import paired_difference
from hsir.methods import METHODS
from hsir.traces import format_trace

PAPER = ROOT.parent / "shared" / "paper" / "hsir-paper.txt"


def test_verdict_rule_on_constructed_intervals():
    assert claims.verdict(0.05, (0.01, 0.09), ">") == HOLDS
    assert claims.verdict(-0.05, (-0.09, -0.01), ">") == CONTRADICTED
    assert claims.verdict(0.02, (-0.01, 0.05), ">") == UNRESOLVED
    assert claims.verdict(0.04, (0.0, 0.08), ">") == UNRESOLVED  # touching the threshold is not beyond it
    assert claims.verdict(-0.05, (-0.09, -0.01), "<") == HOLDS
    assert claims.verdict(-30.0, (-45.0, -12.0), "<") == HOLDS  # fewer tokens
    assert claims.verdict(float("nan"), (float("nan"), float("nan")), ">") == NOT_RUN


def test_non_inferiority_margin_moves_the_threshold():
    # A a little worse than B, resolved: "A ≥ B" holds within a 2-point margin, a strict "A > B" is contradicted
    assert claims.verdict(-0.01, (-0.015, -0.005), ">=", margin=0.02) == HOLDS
    assert claims.verdict(-0.01, (-0.015, -0.005), ">") == CONTRADICTED
    assert claims.verdict(-0.04, (-0.05, -0.03), ">=", margin=0.02) == CONTRADICTED
    assert claims.verdict(-0.01, (-0.03, 0.01), ">=", margin=0.02) == UNRESOLVED
    assert "-2.0 points" in claims.rule_text(0.02) and "-3.0 points" in claims.rule_text(0.03)


def test_a_claims_verdict_needs_every_comparison():
    assert claims.combine([HOLDS, HOLDS]) == HOLDS
    assert claims.combine([HOLDS, UNRESOLVED]) == UNRESOLVED
    assert claims.combine([HOLDS, CONTRADICTED]) == CONTRADICTED
    assert claims.combine([UNRESOLVED, NOT_RUN]) == NOT_RUN
    assert claims.combine([CONTRADICTED, NOT_RUN]) == CONTRADICTED


def seed_pair(n: int, a_only: int, b_only: int, seed: int) -> tuple[dict, dict]:
    """qid -> correct for B (right on a random half) and A (B with a_only wrong answers fixed, b_only broken)."""
    rng = np.random.default_rng(seed)
    b = rng.random(n) < 0.5
    a = b.copy()
    a[rng.choice(np.flatnonzero(~b), a_only, replace=False)] = True
    a[rng.choice(np.flatnonzero(b), b_only, replace=False)] = False
    return ({f"q{i}": bool(x) for i, x in enumerate(a)}, {f"q{i}": bool(x) for i, x in enumerate(b)})


def test_pooled_difference_is_the_mean_of_the_seeds_paired_differences():
    pairs = [seed_pair(200, 30, 10, 0), seed_pair(200, 20, 10, 1), seed_pair(200, 40, 10, 2)]
    res = claims.pooled_paired_difference(pairs, n_boot=500)
    assert res["per_seed"] == pytest.approx([0.10, 0.05, 0.15])
    assert res["diff"] == pytest.approx(0.10)
    assert res["n"] == 200 and res["seeds"] == 3 and res["a_only"] == [30, 20, 40] and res["b_only"] == [10] * 3
    lo, hi = res["diff_ci95"]
    assert lo < 0.10 < hi


def test_one_seed_and_identical_seeds_give_the_one_seed_paired_interval():
    a, b = seed_pair(256, 30, 12, 5)
    one = paired_difference(a, b, n_boot=1000, seed=3)
    for copies in (1, 3):
        res = claims.pooled_paired_difference([(a, b)] * copies, n_boot=1000, seed=3)
        assert res["diff"] == pytest.approx(one["diff"])
        assert res["diff_ci95"] == pytest.approx(one["diff_ci95"])  # not narrowed by the copies' count


def test_interval_widens_with_the_spread_between_seeds():
    same = [seed_pair(300, 30, 15, s) for s in range(3)]  # each seed +5 points
    spread = [seed_pair(300, 15, 30, 3), seed_pair(300, 30, 15, 4), seed_pair(300, 75, 15, 5)]  # -5, +5, +20 points
    width = {}
    for name, pairs in (("same", same), ("spread", spread)):
        lo, hi = claims.pooled_paired_difference(pairs, n_boot=2000)["diff_ci95"]
        width[name] = hi - lo
    assert width["spread"] > 1.5 * width["same"]


def test_pooling_keeps_the_problems_every_seed_evaluated_and_pools_tokens():
    a0, b0 = seed_pair(100, 10, 0, 0)
    a1, b1 = seed_pair(120, 10, 0, 1)  # a seed with 20 more problems: they are not paired in every seed
    tok = [({q: 50.0 for q in a0}, {q: 80.0 for q in b0}), ({q: 60.0 for q in a1}, {q: 70.0 for q in b1})]
    res = claims.pooled_paired_difference([(a0, b0), (a1, b1)], tokens=tok, n_boot=300)
    assert res["n"] == 100
    assert res["tokens_per_seed"] == [-30.0, -10.0] and res["tokens_diff"] == -20.0
    assert res["tokens_ci95"][0] <= -20.0 <= res["tokens_ci95"][1] < 0
    with pytest.raises(ValueError):
        claims.pooled_paired_difference([({"x": True}, {"y": True})])


def test_claims_name_real_methods_and_quote_the_paper():
    for claim in claims.CLAIMS:
        assert claim.comparisons and claim.sentence
        for comp in claim.comparisons:
            assert comp.a in METHODS and comp.b in METHODS, comp
    keys = [c.key for c in claims.CLAIMS]
    assert keys == ["Fig. 2 (order)", "Fig. 2 (shortest)", "Table 1a", "Table 1b", "Table 3 (a)", "Table 3 (b)",
                    "Table 3 (c)", "Table 5", "Table 7"]  # issue 26's list, and Table 3's "removing ... degradation"
    if not PAPER.exists():
        pytest.skip(f"no paper text at {PAPER}")
    text = re.sub(r"\s+", " ", PAPER.read_text(encoding="utf-8"))
    for claim in claims.CLAIMS:
        for quote in claim.sentence.split(" … "):
            assert quote in text, quote


N_OPS = {f"q{i}": 2 for i in range(120)}


def write_round(root, method: str, correct: dict, tokens: float, steps: int) -> None:
    """A finished first round with an evaluation: ``steps`` computation steps per solution (N_OPS says 2)."""
    it = root / "methods" / method / "iter_1"
    it.mkdir(parents=True)
    (it / "metrics.json").write_text(json.dumps({"synthetic": {"accuracy": float(np.mean(list(correct.values())))}}))
    text = format_trace(["Start with 3."] + [f"{k} + 1 = {k + 1}." for k in range(3, 3 + steps)], "5")
    rows = [{"qid": q, "correct": c, "n_tokens": tokens, "text": text} for q, c in correct.items()]
    (it / "eval_synthetic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def fake_roots(tmp_path) -> dict:
    roots = {}
    for s in range(3):
        root = roots[s] = tmp_path / f"seed{s}"
        better, base = seed_pair(120, 40, 2, s)  # about +32 points
        write_round(root, "HSIR-DPO", better, 100, 2)
        if s != 2:  # IRPO did not run at seed 2: Table 1b pools seeds 0 and 1
            write_round(root, "IRPO", base, 150, 3)
        write_round(root, "VeriExit-only", base, 100, 1)
        write_round(root, "answer-driven", better, 100, 2)
        close, other = seed_pair(120, 6, 5, 10 + s)  # about +1 point: unresolved at 120 problems
        write_round(root, "InDiv-only", close, 100, 2)
        write_round(root, "length-driven", other, 100, 2)
        write_round(root, "H-GRPO", base, 90 + s, 2)  # the same answers with fewer tokens
        write_round(root, "GRPO", base, 120, 2)
        write_round(root, "HSIR-SFT", base, 100, 2)  # Table 7's combination never ran
    return roots


def test_claims_table_on_fake_run_folders(tmp_path):
    table = claims.claims_table(fake_roots(tmp_path), n_ops=N_OPS, n_boot=500)
    verdicts = dict(zip(table["claim"], table["claim verdict"], strict=True))
    assert verdicts == {"Fig. 2 (order)": NOT_RUN, "Fig. 2 (shortest)": NOT_RUN, "Table 1a": NOT_RUN,
                        "Table 1b": HOLDS, "Table 3 (a)": CONTRADICTED, "Table 3 (b)": UNRESOLVED,
                        "Table 3 (c)": UNRESOLVED, "Table 5": HOLDS, "Table 7": NOT_RUN}
    dpo = table[table["claim"] == "Table 1b"].iloc[0]
    assert dpo["seeds"] == "0, 1" and dpo["n"] == 120 and dpo["diff"] == pytest.approx(38 / 120)
    assert dpo["per seed"].startswith("0: +31.7, 1: +31.7")
    assert dpo[claims.STEPS_A] == "0.0 / 0.0" and dpo[claims.STEPS_B] == "0.0 / 100.0"  # IRPO adds a step
    veriexit = table[table["claim"] == "Table 3 (a)"].iloc[0]
    assert veriexit[claims.STEPS_A] == "100.0 / 0.0"  # skipped an operation in every solution
    grpo_tokens = table[(table["claim"] == "Table 5") & (table["comparison"] == "H-GRPO fewer tokens than GRPO")].iloc[0]
    assert grpo_tokens["diff"] == pytest.approx(-29.0) and grpo_tokens["per seed"] == "0: -30.0, 1: -29.0, 2: -28.0"
    assert set(table.loc[table["claim"] == "Table 1a", "difference [95% CI]"]) == {NOT_RUN}


def test_write_claims_states_the_rule_and_a_row_per_claim(tmp_path):
    out = tmp_path / "figures" / "claims.md"
    text = claims.write_claims(fake_roots(tmp_path), out, n_ops=N_OPS, command="python -m hsir.results --claims",
                               n_boot=300)
    assert out.read_text(encoding="utf-8") == text
    assert text.startswith("# The paper's claims, tested") and claims.RULE in text
    assert text.index("## Rule") < text.index("## Verdict per claim") < text.index("## Comparisons, per seed")
    summary = text.split("## Verdict per claim")[1].split("## Comparisons")[0]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| claim")]
    assert len(rows) == len(claims.CLAIMS)
    assert "Verdicts: 2 holds, 1 contradicted, 2 unresolved at this size, 4 not run" in text
    assert "outperforms the IRPO by a clear margin" in summary and "`python -m hsir.results --claims`" in text


def test_a_greedy_rows_seeds_are_said_to_share_its_candidates(tmp_path):
    """STaR samples greedily from the shared M0: its seeds differ in training order alone, which claims.md says,
    and only where STaR ran on several seeds."""
    roots = fake_roots(tmp_path)
    for s in (0, 1):
        write_round(roots[s], "STaR", {f"q{i}": i % 3 == 0 for i in range(120)}, 120, 2)
    note = "STaR: greedy from M0, so the seeds that share an M0"
    assert note in claims.write_claims(roots, tmp_path / "claims.md", N_OPS, n_boot=100)
    shutil.rmtree(roots[1] / "methods" / "STaR")
    assert note not in claims.write_claims(roots, tmp_path / "claims.md", N_OPS, n_boot=100)
    assert claims.seed_invariant_rows({(0, "STaR"): None, (1, "STaR"): None, (1, "ReST-EM"): None,
                                       (2, "ReST-EM"): None}, ["ReST-EM", "STaR"]) == ["STaR"]


def test_each_row_against_m0_reads_the_shared_m0_from_the_first_seed(tmp_path):
    """The room table pairs every seed's row with the one M0 the seeds share: a seed root without M0's round (an
    archived seed) still gets its row; a row that moves M0 is above or below it, one that does not is neither."""
    better, m0 = seed_pair(200, 60, 2, 0)  # +29 points over M0
    worse = {q: c and i % 4 != 0 for i, (q, c) in enumerate(m0.items())}  # M0 with a quarter of its right ones broken
    roots = {s: tmp_path / f"seed{s}" for s in range(3)}
    write_round(roots[0], "SFT-Initial", m0, 100, 2)
    write_round(roots[0], "SFT-Oracle", better, 110, 2)
    for s, root in roots.items():
        write_round(root, "ReST-EM", better, 90, 2)
        write_round(root, "IRPO", m0, 80 - s, 2)
        write_round(root, "GRPO", worse, 100, 2)
    room = claims.against_m0(roots, n_boot=400).set_index("row")
    assert list(room.index) == ["SFT-Oracle", "ReST-EM", "IRPO", "GRPO"]  # the oracle first, then the claims' order
    assert room.attrs["m0 accuracy %"] == pytest.approx(100 * np.mean(list(m0.values())))
    assert room.loc["SFT-Oracle", "seeds"] == "0" and room.loc["ReST-EM", "seeds"] == "0, 1, 2"
    assert room.loc["SFT-Oracle", "n_seeds"] == 1 and room.loc["ReST-EM", "n_seeds"] == 3
    assert room.loc["ReST-EM", "diff"] == pytest.approx(58 / 200) and room.loc["ReST-EM", "vs M0"] == claims.ABOVE
    assert room.loc["GRPO", "vs M0"] == claims.BELOW and room.loc["IRPO", "vs M0"] == claims.WITHIN
    assert room.loc["IRPO", "tokens vs M0"] == "-21.0"  # 80, 79, 78 tokens against M0's 100
    text = claims.write_claims(roots, tmp_path / "claims.md", n_boot=200)
    assert "## Each row against M0" in text and "| ReST-EM | 0, 1, 2 | 200 |" in text
    shutil.rmtree(roots[0] / "methods" / "SFT-Initial")
    assert claims.against_m0(roots, n_boot=100).empty  # no M0, nothing to compare with
    assert "## Each row against M0" not in claims.write_claims(roots, tmp_path / "claims.md", n_boot=100)


def test_claims_on_part_of_the_test_problems_read_only_those(tmp_path):
    """A grown test set looked at in parts (``--problems``): each part's verdicts come from its problems alone."""
    root = tmp_path / "seed0"
    first = {f"q{i}": i < 60 for i in range(120)}  # right on the first 60 problems only
    second = {f"q{i}": i >= 60 for i in range(120)}  # right on the last 60 only
    write_round(root, "HSIR-DPO", first, 100, 2)
    write_round(root, "IRPO", second, 100, 3)
    whole = claims.claims_table({0: root}, N_OPS, n_boot=300).set_index("claim").loc["Table 1b"]
    assert whole["n"] == 120 and whole["diff"] == 0 and whole["verdict"] == UNRESOLVED
    text = claims.write_claims({0: root}, tmp_path / "part.md", N_OPS, n_boot=300, note="first 60 only",
                               only={f"q{i}" for i in range(60)})
    row = next(line for line in text.splitlines() if line.startswith("| Table 1b | HSIR-DPO > IRPO"))
    assert "+100.0 pts" in row and "| 60 |" in row and f"| {HOLDS} |" in row and "first 60 only" in text
    assert "0.0 / 0.0 | 0.0 / 100.0" in row  # the step columns read the same 60 problems


def test_the_problems_option_names_a_bad_range():
    from hsir.config import load_config
    from hsir.results import claims_file, main

    with pytest.raises(ValueError, match="problems 900:1200: the synthetic test split has 1000 problems"):
        claims_file(load_config("embedded"), problems=(900, 1200))
    with pytest.raises(SystemExit):
        main(["--profile", "embedded", "--claims", "--problems", "512"])
    with pytest.raises(SystemExit):
        main(["--profile", "embedded", "--problems", "0:10"])  # --problems goes with --claims


def test_the_tables_pool_the_rows_that_ran_on_several_seeds(tmp_path):
    """`python -m hsir.results`: each table of the profile's seed is followed by its rows over every seed root beside
    it (`<root>-seed<N>`): mean accuracy with each seed's, the paired difference with M0 pooled over the seeds that
    ran the row; a table whose rows ran on one seed only gets no such section."""
    from hsir.results import main

    base = tmp_path / "run"
    roots = {0: base, 1: tmp_path / "run-seed1", 2: tmp_path / "run-seed2"}
    right, m0 = seed_pair(120, 30, 0, 0)  # +25 points over M0 at seed 0
    write_round(base, "SFT-Initial", m0, 100, 2)
    write_round(base, "IRPO", m0, 70, 2)  # one seed only: Table 1b has no pooled rows
    gains = {s: {q: c or (right[q] and i % 3 != s) for i, (q, c) in enumerate(m0.items())} for s in roots}
    for s, root in roots.items():  # each seed fixes two thirds of M0's fixable problems, a different two thirds
        write_round(root, "ReST-EM", gains[s], 90, 2)
    for it in base.glob("methods/*/iter_1"):  # a results table reads what an evaluation writes
        acc = json.loads((it / "metrics.json").read_text())["synthetic"]["accuracy"]
        (it / "metrics.json").write_text(json.dumps({"synthetic": {
            "accuracy": acc, "accuracy_ci95": [acc - 0.05, acc + 0.05], "mean_tokens": 90.0, "truncation_rate": 0.0,
            "format_rate": 1.0, "extracted_rate": 1.0, "n": 120, "backend": "hf", "dtype": "fp32"}}))
    out = tmp_path / "tables.md"
    assert main(["--profile", "embedded", "--set", f'root="{base}"', "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    table_1a, rest = text.split("## Table 1a")[1].split("## Table 1b")
    assert "Over seeds" in table_1a and "seed 2: `" in text
    row = next(line for line in table_1a.splitlines() if line.startswith("| ReST-EM | 0, 1, 2 | 120 |"))
    per_seed = [100 * sum(c and not m0[q] for q, c in gains[s].items()) / 120 for s in roots]
    assert f"+{np.mean(per_seed):.1f} [" in row and "| above M0 |" in row
    assert "0: " + f"+{per_seed[0]:.1f}" in row and "| 90.0 | -10.0 |" in row  # mean tokens, and against M0's 100
    assert "Over seeds" not in rest.split("##")[0]  # Table 1b: IRPO ran on seed 0 alone
    main(["--profile", "embedded", "--set", f'root="{base}"', "--seeds", "0", "--out", str(out)])
    assert "Over seeds" not in out.read_text(encoding="utf-8")  # one seed asked for: nothing to pool


def test_the_papers_own_difference_is_read_from_its_printed_numbers(tmp_path):
    """Beside each verdict, the paper's A - B from its tables, in the aggregate its sentences quote, and whether our
    interval holds it: no part of the verdict, a yardstick of size."""
    size = {(c.key, comp.text()): claims.paper_difference(c, comp) for c in claims.CLAIMS for comp in c.comparisons}
    assert size["Table 3 (a)", "VeriExit-only > answer-driven (accuracy)"] == 2.14  # "by 2.14% average ... gains"
    assert size["Table 1b", "HSIR-DPO > IRPO (accuracy)"] == pytest.approx(70.86 - 66.43)  # Overall, round 1
    assert size["Table 7", "HSIR-SFT+H-GRPO > H-GRPO (accuracy)"] == pytest.approx(
        np.mean([76.72 - 74.60, 87.11 - 83.09, 91.58 - 91.43]), abs=0.005)
    assert size["Fig. 2 (shortest)", "select-shortest < select-random (accuracy)"] is None  # a chart, no values
    assert size["Table 5", "H-GRPO fewer tokens than GRPO"] is None
    table = claims.claims_table(fake_roots(tmp_path), n_ops=N_OPS, n_boot=300).set_index("comparison")
    dpo = table.loc["HSIR-DPO > IRPO (accuracy)"]  # +31.7 points, resolved: the paper's +4.43 lies below it
    assert dpo[claims.PAPER_DIFF] == "+4.43 pts" and dpo[claims.PAPER_SEEN] == "excluded"
    close = table.loc["InDiv-only > length-driven (accuracy)"]  # about +1 point, wide: holds the paper's +0.49
    assert close["lo"] * 100 < 0.49 < close["hi"] * 100 and close[claims.PAPER_SEEN] == "inside"
    assert table.loc["HSIR-SFT ≥ ReST-EM (accuracy)", claims.PAPER_SEEN] == ""  # not run
    assert table.loc["H-GRPO fewer tokens than GRPO", claims.PAPER_DIFF] == "not compared (tokens)"
    text = claims.write_claims(fake_roots(tmp_path / "again"), tmp_path / "claims.md", N_OPS, n_boot=300)
    assert "Of the " in text and " comparisons run whose difference the paper prints" in text


def _table_rows(section: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| claim")]


def test_the_readme_quotes_the_committed_claims_file():
    """The README's findings are the committed claims.md's, word for word: its tally and, per comparison, the
    difference, the seeds, the verdict and the paper's difference. Rebuilding claims.md without the README fails here."""
    committed = (ROOT / "figures" / "embedded" / "claims.md").read_text(encoding="utf-8")
    found = (ROOT / "README.md").read_text(encoding="utf-8").split("## What the embedded experiment found")[1]
    found = found.split("\n## ")[0]
    tally = re.search(r"Verdicts: ([^.]*)\.", committed).group(1)
    assert f"**Claims: {tally}.**" in found
    readme = found.split("\n\n| claim |")[1].split("\n\n")[0]  # the section's first table, the claims'
    per_comparison = committed.split("## Comparisons, per seed")[1].split("\n## ")[0]
    expected = [[r[0], r[1], r[2], r[4], r[8], r[9]] for r in _table_rows(per_comparison)]
    assert expected and _table_rows(readme) == expected


def test_any_two_rows_compare_pooled_over_the_seeds_that_ran_both(tmp_path, capsys):
    """``--compare A B``: the claims' pooling for a comparison no claim names, without a verdict; a bad row or a
    pair no seed ran is a clear error naming them."""
    roots = fake_roots(tmp_path)  # IRPO ran at seeds 0 and 1 only
    res = results.compare(roots, "HSIR-DPO", "IRPO", n_boot=300)
    table = claims.claims_table(roots, n_boot=300).set_index("comparison").loc["HSIR-DPO > IRPO (accuracy)"]
    assert res["seeds"] == [0, 1] and res["diff"] == pytest.approx(table["diff"])
    assert res["diff_ci95"] == pytest.approx([table["lo"], table["hi"]])
    assert res["tokens_diff"] == pytest.approx(-50.0)  # 100 against 150 tokens
    line = results.compare_text("HSIR-DPO", "IRPO", res)
    assert line.startswith("HSIR-DPO - IRPO (seeds 0, 1, 120 problems): accuracy +31.7 pts [") and "tokens -50.0" in line
    with pytest.raises(ValueError, match="unknown row 'Nope'"):
        results.compare(roots, "HSIR-DPO", "Nope")
    with pytest.raises(ValueError, match=r"no seed ran both 'STaR' \(seeds \[\]\) and 'IRPO' \(seeds \[0, 1\]\)"):
        results.compare(roots, "STaR", "IRPO")
    # the command line: a profile's seed roots (<root>, <root>-seed<N>), the line printed, a bad pair exits 2
    base = tmp_path / "cli"
    for s, root in roots.items():
        shutil.copytree(root, base if s == 0 else tmp_path / f"cli-seed{s}")
    cli = ["--profile", "embedded", "--set", f'root="{base}"', "--compare"]
    assert results.main([*cli, "HSIR-DPO", "IRPO"]) == 0
    assert capsys.readouterr().out.strip() == line
    with pytest.raises(SystemExit) as stop:
        results.main([*cli, "STaR", "IRPO"])
    assert stop.value.code == 2 and "no seed ran both 'STaR'" in capsys.readouterr().err
