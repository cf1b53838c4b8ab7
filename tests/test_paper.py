"""The paper's numbers in ``hsir.paper`` against the paper's own text, cell by cell, and the arithmetic of every flag.

Each table is found in ``../shared/paper/hsir-paper.txt`` by its first line and the line after it; each row by its
printed label (and ``| Iteration t |`` under it), each number by its column. The flags' implied values are
recomputed here from the printed numbers, not read from ``hsir.paper``.
"""

import re

import pytest

from hsir import paper
from hsir.config import ROOT

PAPER = ROOT.parent / "shared" / "paper" / "hsir-paper.txt"

# table -> (its first line starts with, the line after it starts with)
REGIONS = {
    "1": ("| Methods | |Train|", "| Qwen3-1.7B"),
    "2": ("| Qwen3-1.7B", "4.2 Main Results"),
    "3": ("| Method | MedQA | GSM8K", "Ablation Study."),
    "4": ("| Method | Qwen2.5-1.5B | Overall", "Evaluation on more reasoning"),
    "5": ("| Methods | Qwen2.5-1.5B | Qwen2.5-3B", "Expand to GRPO"),
    "6": ("| Method | MedQA GPQA", "Model Generalization"),
    "7": ("| Method | Qwen2.5-1.5B | Qwen2.5-3B | Qwen2.5-7B |", "Combining H-GRPO"),
}
# the paper's row labels where they differ from the kit's method names
LABELS = {
    "1": {"ReST-EM": "ReSTEM", "HSIR-SFT": "HSIR-SFT (Ours)", "HSIR-DPO": "HSIR-DPO (Ours)"},
    "2": {"ReST-EM": "ReSTEM"},
    "3": {"ReST-EM": "ReSTEM", "HSIR-SFT": "HSIR-SFT (All)", "answer-driven": "-w/ Answer-driven",
          "VeriExit-only": "-w/ VeriExit (Ours)", "length-driven": "-w/ Length-driven", "InDiv-only": "-w/ InDiv (Ours)"},
    "4": {"ReST-EM": "ReSTEM"},
    "5": {"GRPO+Long2Short": "+ Long2Short", "GRPO+CosFn": "+ CosFn", "H-GRPO": "H-GRPO (Ours)"},
    "6": {"HSIR-DPO": "HSIR-DPO (Ours)"},
    "7": {"HSIR-SFT+H-GRPO": "HSIR-SFT + H-GRPO"},
}
CELL = re.compile(r"(?P<value>\d[\d,]*(?:\.\d+)?)K?(?:\s*(?P<arrow>[↑↓])(?P<rel>[\d.]+)%?|\s*\((?P<change>-?[\d.]+)\))?")


@pytest.fixture(scope="module")
def lines() -> list[str]:
    if not PAPER.is_file():
        pytest.skip(f"the paper's text {PAPER} is absent")
    return PAPER.read_text(encoding="utf-8").splitlines()


def region(lines: list[str], table: str) -> list[str]:
    """The lines of one table, from its first line to the line after it."""
    first, after = REGIONS[table]
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(after))
    return lines[start:end]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def printed_row(lines: list[str], table: str, method: str, iteration: int = 0) -> list[re.Match]:
    """The parsed number cells of one printed row (``| Iteration t |`` under the method's label if ``iteration``)."""
    block = region(lines, table)
    label = LABELS.get(table, {}).get(method, method)
    i = next(i for i, line in enumerate(block) if cells(line)[0] == label)
    if iteration:
        i = next(j for j in range(i + 1, len(block)) if cells(block[j])[0] == f"Iteration {iteration}")
    out = [CELL.fullmatch(c) for c in cells(block[i])[1:] if c]
    assert all(out), f"an unparsed cell in {block[i]!r}"
    return out


def number(m: re.Match) -> float:
    return float(m["value"].replace(",", ""))


def data_rows(lines: list[str], table: str) -> int:
    """How many printed rows of numbers the table has (its header and section lines have none)."""
    return sum(1 for line in region(lines, table) if len(cells(line)) > 1 and CELL.fullmatch(cells(line)[1] or "-"))


@pytest.mark.parametrize("table", ["1", "2", "3", "4", "5", "7"])
def test_every_printed_row_is_held_cell_for_cell(lines, table):
    df = paper.paper_table(table)
    assert len(df) == data_rows(lines, table)  # no printed row missing, none invented
    for rec in df.to_dict("records"):
        it = rec.pop("iteration", 0)
        held = list(rec.values())[1:]
        assert [number(m) for m in printed_row(lines, table, rec["method"], it)] == held, (table, rec["method"], it)


def test_table_6_values_and_printed_changes(lines):
    assert data_rows(lines, "6") == len(paper.paper_table("6")) == 6
    for method, rows in paper.TABLE_6.items():
        for it, row in rows.items():
            got = printed_row(lines, "6", method, it)
            assert [number(m) for m in got] == list(row.values())
            changes = paper.TABLE_6_CHANGES[method].get(it, {})
            assert [m["change"] and float(m["change"]) for m in got] == [changes.get(c) for c in paper.TABLE_6_COLUMNS]


def test_the_columns_beside_the_kit_match_the_text(lines):
    """TABLE_1A/1B (what ``beside`` reads) are Table 1's 1.5B GSM8K and Overall cells; a sample checked by position."""
    for part in (paper.TABLE_1A, paper.TABLE_1B):
        for method, rows in part.items():
            for it, (gsm8k, acc, tokens) in rows.items():
                got = [number(m) for m in printed_row(lines, "1", method, it)]
                assert (got[2], got[7], got[8]) == (gsm8k, acc, tokens)
    assert number(printed_row(lines, "1", "HSIR-DPO", 3)[3]) == 60.64  # Qwen2.5-3B MedQA
    assert number(printed_row(lines, "1", "RFT")[0]) == 132.2  # |Train|, printed 132.2K
    assert number(printed_row(lines, "2", "HSIR-SFT")[6]) == paper.TABLE_2["HSIR-SFT"]["LLaMA3-8B MedQA"] == 69.68
    assert number(printed_row(lines, "4", "HSIR-SFT")[2]) == paper.TABLE_4["HSIR-SFT"]["CSQA"] == 72.48
    assert number(printed_row(lines, "7", "HSIR-SFT+H-GRPO")[1]) == paper.TABLE_7["HSIR-SFT+H-GRPO"]["3B GSM8K"]
    assert paper.beside("1a", ["HSIR-SFT", "SFT-Initial"], [2, 1]).to_dict("records") == [
        {"paper GSM8K (1.5B)": 76.04, "paper overall acc": 70.68, "paper overall tokens": 950},
        {"paper GSM8K (1.5B)": 63.99, "paper overall acc": 62.45, "paper overall tokens": 1536}]


def test_new_tables_stay_out_of_the_run_table_machinery():
    """write_tables and the CLI's --table iterate METHODS / ROWS: tables of other models, tasks or OOD tests
    have no rows in a profile's run folder."""
    assert set(paper.ROWS) == set(paper.METHODS) == set(paper.TITLES) == {"1a", "1b", "3", "5", "7"}
    assert set(paper.PAPER_TITLES) == {"1", "1a", "1b", "2", "3", "4", "5", "6", "7"}
    with pytest.raises(ValueError, match="valid: 1, 1a, 1b, 2"):
        paper.paper_table("8")


def token_drop_bounds(base: int, value: int) -> tuple[float, float]:
    """The range of ``value``'s fall from ``base`` in %, where both are means printed rounded to integers."""
    return (base - value - 1) / (base + 0.5) * 100, (base - value + 1) / (base - 0.5) * 100


def printed_arrow(lines, table, method, iteration, column) -> float:
    m = printed_row(lines, table, method, iteration)[column]
    return float(m["rel"] if m["rel"] else m["change"])


def test_each_flag_is_in_the_text_and_its_arithmetic_holds(lines):
    t1, t2, t4, t5, t6 = paper.TABLE_1, paper.TABLE_2, paper.TABLE_4, paper.TABLE_5, paper.TABLE_6
    appendix = re.search(r"from ([\d,]+) to ([\d,]+) average tokens", "\n".join(lines))
    base1 = t1["SFT-Initial"][0][7]
    # key -> (printed in the text, implied by the printed numbers, (lo, hi): what rounded inputs allow, or None)
    r4 = t4["ReST-EM"]
    expected = {
        ("4", "ReST-EM", "accuracy"): (
            number(printed_row(lines, "4", "ReST-EM")[3]), round((r4["ARC"] + r4["StraQA"] + r4["CSQA"]) / 3, 2),
            ((r4["ARC"] + r4["StraQA"] + r4["CSQA"] - 0.015) / 3, (r4["ARC"] + r4["StraQA"] + r4["CSQA"] + 0.015) / 3)),
        ("5", "GRPO+CosFn", "tokens vs GRPO (%)"): (
            printed_arrow(lines, "5", "GRPO+CosFn", 0, 7), round((974 - 966) / 974 * 100, 2), token_drop_bounds(974, 966)),
        ("5", "H-GRPO", "tokens vs GRPO (%)"): (
            printed_arrow(lines, "5", "H-GRPO", 0, 7), round((974 - 710) / 974 * 100, 2), token_drop_bounds(974, 710)),
        ("5 (appendix B)", "SFT-Initial", "tokens"): (float(appendix[1].replace(",", "")), 1536, None),
        ("5 (appendix B)", "GRPO", "tokens"): (float(appendix[2].replace(",", "")), 974, None),
        ("6", "IRPO iteration 2", "MedQA→GPQA change"): (printed_arrow(lines, "6", "IRPO", 2, 0), -1.11, None),
        ("6", "IRPO iteration 3", "MedQA→GPQA change"): (printed_arrow(lines, "6", "IRPO", 3, 0), -1.12, None),
        ("1", "ReGenesis", "accuracy vs SFT-Initial"): (
            printed_arrow(lines, "1", "ReGenesis", 0, 7), 3.14, (65.59 - 62.45 - 0.01, 65.59 - 62.45 + 0.01)),
        ("1", "HSIR-DPO iteration 2", "accuracy vs SFT-Initial"): (
            printed_arrow(lines, "1", "HSIR-DPO", 2, 7), 9.71, (72.16 - 62.45 - 0.01, 72.16 - 62.45 + 0.01)),
        ("2", "STaR", "tokens vs SFT-Initial (%)"): (
            printed_arrow(lines, "2", "STaR", 0, 9), 6.4, token_drop_bounds(1540, 1442)),
    }
    assert set(paper.FLAGS) == set(expected)
    # the numbers the arithmetic above starts from are the tables' (checked against the text elsewhere)
    assert (t5["GRPO"]["tokens"], t5["GRPO+CosFn"]["tokens"], t5["H-GRPO"]["tokens"]) == (974, 966, 710)
    assert (t1["SFT-Initial"][0][8], base1, t1["ReGenesis"][0][7], t1["HSIR-DPO"][2][7]) == (1536, 62.45, 65.59, 72.16)
    assert (t2["SFT-Initial"]["tokens"], t2["STaR"]["tokens"]) == (1540, 1442)
    assert (t6["IRPO"][1]["MedQA→GPQA"], t6["IRPO"][2]["MedQA→GPQA"], t6["IRPO"][3]["MedQA→GPQA"]) == (23.66, 22.55, 22.54)
    for key, (printed, implied, bounds) in expected.items():
        flag = paper.FLAGS[key]
        assert (flag.printed, flag.implied) == (printed, pytest.approx(implied)), key
        assert printed != pytest.approx(implied), key
        assert flag.within_rounding == (bounds is not None and bounds[0] - 1e-9 <= printed <= bounds[1] + 1e-9), key
        assert f"{flag.printed:g}" in flag.note.replace(",", ""), key
    # Table 4: the printed arrow follows the misprinted average, and the implied one tops HSIR-SFT's
    assert printed_arrow(lines, "4", "ReST-EM", 0, 3) == round(66.74 - t4["SFT-Initial"]["accuracy"], 2) == 4.25
    assert paper.FLAGS["4", "ReST-EM", "accuracy"].implied > t4["HSIR-SFT"]["accuracy"]
    assert list(paper.flags_table("5")["table"]) == ["5", "5", "5 (appendix B)", "5 (appendix B)"]
