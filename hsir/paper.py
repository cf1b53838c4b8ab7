"""The paper's own numbers, as printed, for tables that show them beside the kit's measurements.

Copied from the paper's Tables 1 to 7 (``../shared/paper/hsir-paper.txt``). Printed as written, inconsistencies
included (DESIGN §3): where the paper's numbers disagree with each other, ``FLAGS`` says so with the value its own
numbers imply, never corrects them. ``beside`` lines Tables 1a, 1b, 3, 5 and 7 up with the rows of a
``results.results_table`` (``ROWS``, ``METHODS``, ``TITLES``); Tables 2, 4 and 6 measure other models, other tasks
and out-of-distribution tests, which a profile's run folder has no rows for, so they stand apart (``TABLE_2``,
``TABLE_4``, ``TABLE_6``) and every table is a DataFrame through ``paper_table``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hsir.methods import get_method

# Table 1 in full (Qwen2.5, iterative SFT in part (a), iterative DPO in part (b)): method -> iteration (0: not
# iterative) -> the printed row, in TABLE_1_COLUMNS' order. "|Train| (K)" is the paper's "|Train| Avg." column in
# thousands of training examples ("1.0K" prints as 1.0); accuracy is the mean of the six model x task cells and
# tokens the mean output tokens.
TABLE_1_COLUMNS = ("|Train| (K)", "1.5B MedQA", "1.5B GSM8K", "3B MedQA", "3B GSM8K", "7B MedQA", "7B GSM8K",
                   "accuracy", "tokens")
TABLE_1 = {
    "SFT-Initial": {0: (1.0, 38.10, 63.99, 49.02, 77.18, 62.45, 83.93, 62.45, 1536)},
    "SFT-Oracle": {0: (8.1, 46.58, 71.57, 58.68, 84.31, 73.99, 87.79, 70.49, 1392)},
    "RFT": {0: (132.2, 42.42, 71.19, 54.60, 83.55, 64.89, 87.87, 67.42, 1292)},
    "ReGenesis": {0: (127.2, 44.46, 66.26, 50.67, 79.91, 62.22, 89.99, 65.59, 363)},
    "STaR": {1: (5.7, 35.98, 69.75, 49.25, 81.96, 61.19, 87.72, 64.31, 1379),
             2: (6.1, 37.78, 70.96, 50.82, 81.27, 61.04, 88.48, 65.06, 1328),
             3: (6.4, 38.49, 72.02, 47.76, 81.58, 61.59, 87.49, 64.82, 1288)},
    "ReST-EM": {1: (44.7, 41.63, 69.75, 55.22, 83.95, 64.18, 88.17, 67.15, 1268),
                2: (51.0, 42.81, 74.45, 56.25, 85.13, 65.28, 90.22, 69.02, 1160),
                3: (53.6, 45.48, 75.13, 56.48, 86.04, 65.28, 89.99, 69.73, 1114)},
    "HSIR-SFT": {1: (33.6, 45.33, 71.72, 55.70, 86.13, 67.32, 88.78, 69.16, 1075),
                 2: (36.6, 46.50, 76.04, 56.32, 86.51, 67.87, 90.83, 70.68, 950),
                 3: (38.8, 46.58, 76.88, 57.58, 86.81, 68.74, 91.36, 71.33, 896)},
    "IRPO": {1: (22.7, 39.04, 70.51, 47.99, 85.37, 64.26, 91.43, 66.43, 1359),
             2: (27.5, 41.08, 75.51, 49.33, 86.66, 63.24, 91.95, 67.96, 1294),
             3: (20.5, 43.91, 75.36, 49.10, 87.19, 60.57, 91.87, 68.00, 1271)},
    "HSIR-DPO": {1: (17.9, 48.31, 75.36, 55.77, 87.04, 67.32, 91.36, 70.86, 1007),
                 2: (23.6, 49.10, 76.65, 59.15, 87.49, 68.58, 91.96, 72.16, 921),
                 3: (19.6, 50.90, 78.09, 60.64, 87.53, 70.46, 92.49, 73.35, 885)},
}
# Table 1's two parts: their rows, in the paper's order (SFT-Initial heads both).
TABLE_1_PARTS = {"1a": ("SFT-Initial", "SFT-Oracle", "RFT", "ReGenesis", "STaR", "ReST-EM", "HSIR-SFT"),
                 "1b": ("SFT-Initial", "IRPO", "HSIR-DPO")}


def table_1_cells(method: str, iteration: int) -> dict:
    """One printed row of Table 1 as column -> value (empty where the paper has none)."""
    row = TABLE_1.get(method, {}).get(iteration)
    return {} if row is None else dict(zip(TABLE_1_COLUMNS, row, strict=True))


def _gsm8k_and_overall(method: str) -> dict:
    """Table 1's Qwen2.5-1.5B GSM8K column and Overall columns for one method, as TABLE_1A / TABLE_1B hold them."""
    return {t: (r[2], r[7], r[8]) for t, r in TABLE_1[method].items()}


# Table 1a: the Qwen2.5-1.5B GSM8K column and the Overall columns (mean accuracy over the six model × task cells
# and mean output tokens), from TABLE_1.
# method -> iteration -> (Qwen2.5-1.5B GSM8K accuracy, Overall accuracy, Overall tokens); iteration 0: not iterative
TABLE_1A = {m: _gsm8k_and_overall(m) for m in TABLE_1_PARTS["1a"]}


def table_1_row(table: dict, method: str, iteration: int, iterative: bool) -> dict:
    """The paper's numbers for one row of Table 1a or 1b (``TABLE_1A`` / ``TABLE_1B``; empty where it has none)."""
    row = table.get(method, {}).get(iteration if iterative else 0)
    if row is None:
        return {}
    return {"paper GSM8K (1.5B)": row[0], "paper overall acc": row[1], "paper overall tokens": row[2]}


# Table 1b (iterative DPO): the same columns as 1a; its SFT-Initial row is Table 1's shared one.
TABLE_1B = {"SFT-Initial": TABLE_1A["SFT-Initial"], "IRPO": _gsm8k_and_overall("IRPO"),
             "HSIR-DPO": _gsm8k_and_overall("HSIR-DPO")}

# Table 3 (ablations, Qwen2.5-1.5B after one SFT round): method -> (MedQA acc, MedQA tokens, GSM8K acc, GSM8K tokens).
TABLE_3_COLUMNS = ("MedQA", "MedQA tokens", "GSM8K", "GSM8K tokens")
# Its SFT-Initial, STaR, ReST-EM and HSIR-SFT rows report tokens per task, so they differ from Table 1a's overall ones.
TABLE_3 = {
    "SFT-Initial": (38.10, 1779, 63.99, 1666),
    "STaR": (35.98, 1651, 69.75, 1377),
    "ReST-EM": (41.63, 1424, 69.75, 1382),
    "HSIR-SFT": (45.33, 1064, 71.72, 1181),
    "answer-driven": (41.63, 1421, 69.29, 1433),
    "VeriExit-only": (44.46, 1293, 70.74, 1361),
    "length-driven": (42.36, 1321, 70.66, 1266),
    "InDiv-only": (42.66, 1260, 71.34, 1256),
}


def table_3_row(method: str) -> dict:
    """The paper's Qwen2.5-1.5B GSM8K accuracy and tokens for one row of Table 3 (empty where it has none)."""
    row = TABLE_3.get(method)
    if row is None:
        return {}
    return {"paper GSM8K (1.5B)": row[2], "paper GSM8K tokens": row[3], "paper MedQA (1.5B)": row[0]}


# The paper's Table 5 (Qwen2.5, MedQA / GSM8K accuracy %, overall accuracy and mean output tokens) and Table 7
# (GSM8K accuracy %), printed as written. Table 5's relative-token arrows do not all fit its own numbers (CosFn
# "↓0.86%": 966 vs 974 is 0.82%), and the appendix's "from 1,540 to 987 average tokens" quotes Table 2's
# SFT-Initial and no GRPO row: flagged in FLAGS, not corrected.
TABLE_5 = {
    "GRPO": {"1.5B MedQA": 46.34, "1.5B GSM8K": 73.08, "3B MedQA": 57.03, "3B GSM8K": 82.49, "7B MedQA": 66.46,
             "7B GSM8K": 89.61, "accuracy": 69.17, "tokens": 974},
    "GRPO+Long2Short": {"1.5B MedQA": 46.50, "1.5B GSM8K": 72.63, "3B MedQA": 58.21, "3B GSM8K": 82.26,
                        "7B MedQA": 66.14, "7B GSM8K": 91.13, "accuracy": 69.48, "tokens": 668},
    "GRPO+CosFn": {"1.5B MedQA": 47.96, "1.5B GSM8K": 71.72, "3B MedQA": 55.22, "3B GSM8K": 82.93, "7B MedQA": 63.71,
                   "7B GSM8K": 89.31, "accuracy": 68.48, "tokens": 966},
    "H-GRPO": {"1.5B MedQA": 48.15, "1.5B GSM8K": 74.60, "3B MedQA": 58.98, "3B GSM8K": 83.09, "7B MedQA": 68.03,
               "7B GSM8K": 91.43, "accuracy": 70.71, "tokens": 710},
}
TABLE_7 = {
    "HSIR-SFT": {"1.5B GSM8K": 71.72, "3B GSM8K": 86.13, "7B GSM8K": 88.78},
    "H-GRPO": {"1.5B GSM8K": 74.60, "3B GSM8K": 83.09, "7B GSM8K": 91.43},
    "HSIR-SFT+H-GRPO": {"1.5B GSM8K": 76.72, "3B GSM8K": 87.11, "7B GSM8K": 91.58},
}


def table_5_row(method: str) -> dict:
    """The paper's numbers for one row of Table 5 (empty where the paper has none)."""
    row = TABLE_5.get(method)
    if row is None:
        return {}
    return {"paper GSM8K (1.5B)": row["1.5B GSM8K"], "paper overall acc": row["accuracy"],
            "paper overall tokens": row["tokens"]}


def table_7_row(method: str) -> dict:
    """The paper's GSM8K accuracies for one row of Table 7 (empty where the paper has none)."""
    return {f"paper {k}": v for k, v in TABLE_7.get(method, {}).items()}


def _iterative(method: str) -> bool:
    return get_method(method).iterative


# table name -> (method, iteration) -> the paper's columns for that row
ROWS = {"1a": lambda m, t: table_1_row(TABLE_1A, m, t, _iterative(m)),
        "1b": lambda m, t: table_1_row(TABLE_1B, m, t, _iterative(m)),
        "3": lambda m, t: table_3_row(m), "5": lambda m, t: table_5_row(m), "7": lambda m, t: table_7_row(m)}


# each table's rows, in the paper's order (what `hsir.results.write_tables` looks for in a profile's run folder)
METHODS = {"1a": list(TABLE_1A),
           "1b": list(TABLE_1B), "3": list(TABLE_3), "5": list(TABLE_5), "7": list(TABLE_7)}
ONE_ROUND = {"3", "5", "7"}  # tables of single rounds: a method's later rounds (T >= 2) are not their rows
TITLES = {"1a": "Table 1a: iterative self-improvement SFT", "1b": "Table 1b: iterative self-improvement DPO",
          "3": "Table 3: ablations (one SFT round)", "5": "Table 5: the GRPO family from M0",
          "7": "Table 7: HSIR-SFT, H-GRPO and both"}


def check_table(table: str) -> None:
    if table not in ROWS:
        raise ValueError(f"paper table {table!r}; valid: {', '.join(ROWS)}")


def beside(table: str, methods: Sequence[str], iterations: Sequence[int]):
    """The paper's columns of Table ``table`` ("1a", "1b", "3", "5" or "7") for rows (method, iteration), as a DataFrame
    aligned with them (blank where the paper has no such row)."""
    import pandas as pd

    check_table(table)
    return pd.DataFrame([ROWS[table](m, t) for m, t in zip(methods, iterations, strict=True)])


# Table 2 (other model families, one SFT round; the paper's Overall is the mean of the eight cells):
# method -> column -> printed value.
TABLE_2_MODELS = ("Qwen3-1.7B", "Phi-3.5-mini", "Mistral-7B", "LLaMA3-8B")
TABLE_2_COLUMNS = (*(f"{m} {t}" for m in TABLE_2_MODELS for t in ("MedQA", "GSM8K")), "accuracy", "tokens")
TABLE_2 = {m: dict(zip(TABLE_2_COLUMNS, row, strict=True)) for m, row in {
    "SFT-Initial": (51.61, 87.03, 66.14, 82.56, 55.93, 64.59, 64.57, 79.98, 69.05, 1540),
    "SFT-Oracle": (55.77, 87.72, 74.07, 87.95, 70.15, 79.08, 73.76, 86.73, 76.90, 1383),
    "STaR": (52.87, 86.96, 65.99, 86.28, 53.57, 68.54, 59.63, 80.59, 69.30, 1442),
    "ReST-EM": (54.67, 88.61, 67.64, 87.86, 58.13, 72.71, 67.79, 81.20, 72.33, 1365),
    "HSIR-SFT": (55.30, 89.16, 71.17, 88.32, 61.27, 75.82, 69.68, 86.66, 74.67, 1195),
}.items()}

# Table 4 (more benchmarks, Qwen2.5-1.5B, one SFT round; Overall: mean of the three cells and mean output tokens).
# ReST-EM's accuracy is printed as 66.74 though its cells average 69.91 (FLAGS).
TABLE_4_COLUMNS = ("ARC", "StraQA", "CSQA", "accuracy", "tokens")
TABLE_4 = {m: dict(zip(TABLE_4_COLUMNS, row, strict=True)) for m, row in {
    "SFT-Initial": (68.33, 59.10, 60.03, 62.49, 1447),
    "SFT-Oracle": (69.38, 60.84, 74.20, 68.14, 1333),
    "STaR": (68.58, 61.28, 62.74, 64.20, 1357),
    "ReST-EM": (69.78, 62.30, 77.64, 66.74, 1254),
    "HSIR-SFT": (72.45, 64.63, 72.48, 69.85, 1043),
}.items()}

# Table 6 (Qwen2.5-7B, iterative DPO, accuracy % out of distribution): cross-domain (trained on MedQA, tested on
# GPQA) and cross-task (trained on GSM8K, tested on MedQA). method -> iteration -> column -> value; TABLE_6_CHANGES
# holds the printed change from iteration 1 in parentheses (the text prints IRPO's cross-domain falls unsigned).
TABLE_6_COLUMNS = ("MedQA→GPQA", "GSM8K→MedQA")
TABLE_6 = {m: {t: dict(zip(TABLE_6_COLUMNS, row, strict=True)) for t, row in rows.items()} for m, rows in {
    "IRPO": {1: (23.66, 52.63), 2: (22.55, 48.39), 3: (22.54, 41.32)},
    "HSIR-DPO": {1: (28.79, 53.49), 2: (31.70, 53.57), 3: (34.60, 53.47)},
}.items()}
TABLE_6_CHANGES = {m: {t: dict(zip(TABLE_6_COLUMNS, row, strict=True)) for t, row in rows.items()} for m, rows in {
    "IRPO": {2: (1.11, -4.24), 3: (1.12, -11.31)},
    "HSIR-DPO": {2: (2.91, 0.08), 3: (5.81, -0.02)},
}.items()}

# Every table the paper prints, by the name `paper_table` takes.
PAPER_TITLES = {"1": "Table 1: iterative self-improvement, Qwen2.5-1.5B/3B/7B on MedQA and GSM8K",
                "1a": "Table 1a: iterative self-improvement SFT", "1b": "Table 1b: iterative self-improvement DPO",
                "2": "Table 2: Qwen3-1.7B, Phi-3.5-mini, Mistral-7B and LLaMA3-8B (one SFT round)",
                "3": "Table 3: ablations (one SFT round)",
                "4": "Table 4: ARC, StrategyQA and CommonsenseQA (Qwen2.5-1.5B, one SFT round)",
                "5": "Table 5: the GRPO family from M0", "6": "Table 6: cross-domain and cross-task (Qwen2.5-7B, DPO)",
                "7": "Table 7: HSIR-SFT, H-GRPO and both"}


def _iteration_rows(table: dict, columns: Sequence[str], cells) -> list[dict]:
    """Rows (method, iteration, *columns) of a method -> iteration -> row table; ``cells`` turns a row into a dict."""
    return [{"method": m, "iteration": t} | dict(zip(columns, cells(row), strict=True))
            for m, rows in table.items() for t, row in rows.items()]


def paper_table(name: str):
    """Table ``name`` ("1", "1a", "1b", "2" ... "7") as printed, one row per method (and iteration where the paper
    iterates; 0: not iterative): the paper's side of every table, for reports that stand ours beside it."""
    import pandas as pd

    if name in ("1", "1a", "1b"):
        part = TABLE_1 if name == "1" else {m: TABLE_1[m] for m in TABLE_1_PARTS[name]}
        return pd.DataFrame(_iteration_rows(part, TABLE_1_COLUMNS, lambda r: r))
    if name == "6":
        changes = [f"{c} change" for c in TABLE_6_COLUMNS]
        rows = _iteration_rows(TABLE_6, TABLE_6_COLUMNS, lambda r: r.values())
        for row in rows:
            change = TABLE_6_CHANGES[row["method"]].get(row["iteration"], {})
            row |= dict(zip(changes, (change.get(c) for c in TABLE_6_COLUMNS), strict=True))
        return pd.DataFrame(rows)
    tables = {"2": TABLE_2, "3": {m: dict(zip(TABLE_3_COLUMNS, r, strict=True)) for m, r in TABLE_3.items()},
              "4": TABLE_4, "5": TABLE_5, "7": TABLE_7}
    if name not in tables:
        raise ValueError(f"paper table {name!r}; valid: {', '.join(PAPER_TITLES)}")
    return pd.DataFrame([{"method": m} | row for m, row in tables[name].items()])


@dataclass(frozen=True)
class Flag:
    """One printed number its own paper contradicts: what it prints, what its other printed numbers imply, and why.
    ``within_rounding``: the printed cells it derives from are themselves rounded, and the gap fits inside that."""

    printed: float
    implied: float
    note: str
    within_rounding: bool = False


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 2)


def _drop_pct(base: float, value: float, digits: int = 2) -> float:
    """``value``'s fall from ``base`` in % of ``base``: the paper's "↓x%" token arrows."""
    return round((base - value) / base * 100, digits)


_T1_BASE = table_1_cells("SFT-Initial", 0)
_T4 = TABLE_4["ReST-EM"]
_T5_TOKENS = TABLE_5["GRPO"]["tokens"]
_T6 = TABLE_6["IRPO"]

# (table, row, column) -> Flag: the paper's own inconsistencies, printed as written in the tables above and here
# measured against the numbers they derive from. "5 (appendix B)" is the appendix's "More analyses of Table 5".
FLAGS = {
    ("4", "ReST-EM", "accuracy"): Flag(
        _T4["accuracy"], _mean([_T4["ARC"], _T4["StraQA"], _T4["CSQA"]]),
        "Table 4's ReST-EM average is printed as 66.74, but its three cells (69.78, 62.30, 77.64) average 69.91; "
        "its arrow ↑4.25 follows the printed 66.74 (vs SFT-Initial's 62.49). With 69.91 ReST-EM's average tops "
        "HSIR-SFT's 69.85, against the text's \"consistently outperforms\"."),
    ("5", "GRPO+CosFn", "tokens vs GRPO (%)"): Flag(
        0.86, _drop_pct(_T5_TOKENS, TABLE_5["GRPO+CosFn"]["tokens"]),
        "Table 5 prints CosFn's tokens as 966↓0.86%, but 966 against GRPO's 974 is 0.82% fewer; the gap fits the "
        "rounding of the two token means to integers (7 to 9 tokens: 0.72% to 0.92%).", within_rounding=True),
    ("5", "H-GRPO", "tokens vs GRPO (%)"): Flag(
        27.12, _drop_pct(_T5_TOKENS, TABLE_5["H-GRPO"]["tokens"]),
        "Table 5 prints H-GRPO's tokens as 710↓27.12%, but 710 against GRPO's 974 is 27.10% fewer; the gap fits "
        "the rounding of the two token means to integers (263 to 265 tokens: 26.99% to 27.22%).",
        within_rounding=True),
    ("5 (appendix B)", "SFT-Initial", "tokens"): Flag(
        1540, _T1_BASE["tokens"],
        "The appendix says GRPO brings output tokens \"from 1,540 to 987\": 1,540 is Table 2's SFT-Initial (the "
        "other model families); Table 5 trains Qwen2.5, whose SFT-Initial Table 1 prints as 1,536 (1,540 is also 1,536 "
        "to the nearest ten, but the 987 beside it rounds no GRPO row)."),
    ("5 (appendix B)", "GRPO", "tokens"): Flag(
        987, _T5_TOKENS,
        "The appendix's \"to 987 average tokens\" after GRPO matches no printed number: Table 5 prints GRPO's "
        "mean output tokens as 974 (its four rows average 829.5)."),
    ("6", "IRPO iteration 2", "MedQA→GPQA change"): Flag(
        1.11, round(_T6[2]["MedQA→GPQA"] - _T6[1]["MedQA→GPQA"], 2),
        "Table 6 prints IRPO's cross-domain change at iteration 2 as (1.11), but 22.55 is 1.11 below 23.66: a "
        "fall, which the cross-task column prints with a minus sign (-4.24); the text itself speaks of degradation."),
    ("6", "IRPO iteration 3", "MedQA→GPQA change"): Flag(
        1.12, round(_T6[3]["MedQA→GPQA"] - _T6[1]["MedQA→GPQA"], 2),
        "Table 6 prints IRPO's cross-domain change at iteration 3 as (1.12), but 22.54 is 1.12 below 23.66: a "
        "fall printed unsigned, where the cross-task column prints (-11.31)."),
    ("1", "ReGenesis", "accuracy vs SFT-Initial"): Flag(
        3.13, round(TABLE_1["ReGenesis"][0][7] - _T1_BASE["accuracy"], 2),
        "Table 1 prints ReGenesis' overall accuracy as 65.59↑3.13, but 65.59 - 62.45 = 3.14; within the rounding "
        "of the two printed averages (±0.01).", within_rounding=True),
    ("1", "HSIR-DPO iteration 2", "accuracy vs SFT-Initial"): Flag(
        9.70, round(TABLE_1["HSIR-DPO"][2][7] - _T1_BASE["accuracy"], 2),
        "Table 1 prints HSIR-DPO's second-round overall accuracy as 72.16↑9.70, but 72.16 - 62.45 = 9.71; within "
        "the rounding of the two printed averages (±0.01).", within_rounding=True),
    ("2", "STaR", "tokens vs SFT-Initial (%)"): Flag(
        6.3, _drop_pct(TABLE_2["SFT-Initial"]["tokens"], TABLE_2["STaR"]["tokens"], 1),
        "Table 2 prints STaR's tokens as 1,442↓6.3%, but 1,442 against 1,540 is 6.4% fewer (6.36%); within the "
        "rounding of the two token means to integers (97 to 99 tokens: 6.30% to 6.43%).", within_rounding=True),
}


def flags_table(table: str | None = None):
    """``FLAGS`` as a DataFrame (only table ``table``'s, e.g. "5", its appendix included, if given): for reports
    that print the paper's numbers and must say where the paper disagrees with itself."""
    import pandas as pd

    return pd.DataFrame([{"table": t, "row": r, "column": c, "printed": f.printed, "implied": f.implied,
                          "within rounding": f.within_rounding, "note": f.note}
                         for (t, r, c), f in FLAGS.items() if table is None or t.split()[0] == table])


def _table_1(m: str) -> float:
    return table_1_cells(m, 1)["accuracy"]  # Overall accuracy after one round (our rows are round 1)


def _table_3(m: str) -> float:
    row = table_3_row(m)
    return (row["paper MedQA (1.5B)"] + row["paper GSM8K (1.5B)"]) / 2


# the paper's score of a row, per table, in the aggregate its sentences quote (hsir.claims prints each claim's paper
# difference from it): Table 1's Overall accuracy (the mean of six model x task cells), Table 3's mean of its 1.5B
# MedQA and GSM8K cells ("VeriExit outperforms the -w Answer-driven by 2.14% average performance gains" is that
# mean), Table 5's Overall, Table 7's mean over its three GSM8K scales. Fig. 2 is a chart whose values the paper
# does not print.
CLAIM_SCORES = {
    "Table 1a": _table_1, "Table 1b": _table_1,
    "Table 3": _table_3,
    "Table 5": lambda m: TABLE_5[m]["accuracy"],
    "Table 7": lambda m: sum(TABLE_7[m].values()) / len(TABLE_7[m]),
}
