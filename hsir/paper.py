"""The paper's own numbers, as printed, for tables that show them beside the kit's measurements.

Copied from the paper's Table 1a (Qwen2.5-1.5B on GSM8K, and the Overall columns: mean accuracy over the six
model × task cells and mean output tokens). Printed as written, inconsistencies included (DESIGN §3).
"""

from __future__ import annotations

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


def table_1a_row(method: str, iteration: int, iterative: bool) -> dict:
    """The paper's numbers for one row of Table 1a (empty where the paper has none)."""
    row = TABLE_1A.get(method, {}).get(iteration if iterative else 0)
    if row is None:
        return {}
    return {"paper GSM8K (1.5B)": row[0], "paper overall acc": row[1], "paper overall tokens": row[2]}
