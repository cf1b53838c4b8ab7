"""The paper's own numbers, as printed, for tables that show them beside the kit's measurements.

Copied from the paper's Tables 1a, 1b, 3, 5 and 7 (Qwen2.5). Printed as written, inconsistencies included (DESIGN §3);
`beside` lines them up with the rows of a `results.results_table`.
"""

from __future__ import annotations

from collections.abc import Sequence

# Table 1a: the Qwen2.5-1.5B GSM8K column and the Overall columns (mean accuracy over the six model × task cells
# and mean output tokens).
# method -> iteration -> (Qwen2.5-1.5B GSM8K accuracy, Overall accuracy, Overall tokens); iteration 0: not iterative
TABLE_1A = {
    "SFT-Initial": {0: (63.99, 62.45, 1536)},
    "SFT-Oracle": {0: (71.57, 70.49, 1392)},
    "RFT": {0: (71.19, 67.42, 1292)},
    "ReGenesis": {0: (66.26, 65.59, 363)},
    "STaR": {1: (69.75, 64.31, 1379), 2: (70.96, 65.06, 1328), 3: (72.02, 64.82, 1288)},
    "ReST-EM": {1: (69.75, 67.15, 1268), 2: (74.45, 69.02, 1160), 3: (75.13, 69.73, 1114)},
    "HSIR-SFT": {1: (71.72, 69.16, 1075), 2: (76.04, 70.68, 950), 3: (76.88, 71.33, 896)},
}


def table_1_row(table: dict, method: str, iteration: int, iterative: bool) -> dict:
    """The paper's numbers for one row of Table 1a or 1b (``TABLE_1A`` / ``TABLE_1B``; empty where it has none)."""
    row = table.get(method, {}).get(iteration if iterative else 0)
    if row is None:
        return {}
    return {"paper GSM8K (1.5B)": row[0], "paper overall acc": row[1], "paper overall tokens": row[2]}


# Table 1b (iterative DPO): the same columns as 1a; its SFT-Initial row is Table 1's shared one.
TABLE_1B = {
    "SFT-Initial": TABLE_1A["SFT-Initial"],
    "IRPO": {1: (70.51, 66.43, 1359), 2: (75.51, 67.96, 1294), 3: (75.36, 68.00, 1271)},
    "HSIR-DPO": {1: (75.36, 70.86, 1007), 2: (76.65, 72.16, 921), 3: (78.09, 73.35, 885)},
}

# Table 3 (ablations, Qwen2.5-1.5B after one SFT round): method -> (MedQA acc, MedQA tokens, GSM8K acc, GSM8K tokens).
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
# "↓0.86%": 966 vs 974 is 0.82%), and the appendix's "from 1,540 to 987 average tokens" does not match the
# table's 974 for GRPO: flagged, not corrected.
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
    from hsir.methods import get_method

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
