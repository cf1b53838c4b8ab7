"""Every table and figure of the paper beside the profile's own, from finished run folders alone (notebook 99,
``python -m hsir.paper_report --profile P``): ``figures/<profile>/paper_tables.md`` and its PNGs.

Every number of ours names the file it comes from: a row of Tables 1a, 1b, 3, 5 and 7 its ``metrics.json``
(``source``, relative to the run folder its section names); a cell of Tables 1, 2 and 4 its cell's run folder
(``params/<profile>/cells/``, ``hsir.generalization.load_cells``) with ``methods/<method>/iter_<t>/metrics.json``
below it; Table 6 and Fig. 4 their ``generalization/…/metrics.json``. A row the paper prints that this profile has
not run says "not run". The paper's side is ``hsir.paper`` as printed, with its own inconsistencies (``FLAGS``)
under each table. Nothing here runs a model or imports the loop.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hsir import figures, paper
from hsir.config import LoopConfig, figures_dir, kit_path, load_config
from hsir.generalization import PROFILE, cell_config, final_rounds, generalization_rows, load_cells, table_6
from hsir.results import results_table
from hsir.rounds import markdown, percent_interval
from hsir.runs import read_json, write_text

NOT_RUN = "not run"
PROFILE_TABLES = ("1a", "1b", "3", "5", "7")  # tables of the profile's own runs (hsir.results)
CELL_TABLES = {"1": paper.TABLE_1_COLUMNS[1:7], "2": paper.TABLE_2_COLUMNS[:8], "4": paper.TABLE_4_COLUMNS[:3]}
OTHER_FIGURES = {
    "Fig. 1": "the paper's preliminary curves (self-improvement falling short on MedQA, model collapse): a chart whose "
              "numbers the text does not print; Tables 1a and 1b above follow the same methods round by round.",
    "Fig. 3": "the overview diagram of HSIR (VeriExit, InDiv): no numbers.",
}


def paper_keys(table: str) -> list[tuple[str, int]]:
    """(method, iteration) of every row the paper prints in ``table``, iteration 1 for a method that does not iterate
    (the kit's numbering of a single round; ``hsir.paper`` numbers it 0)."""
    df = paper.paper_table(table)
    its = df["iteration"] if "iteration" in df else [1] * len(df)
    return [(m, max(int(t), 1)) for m, t in zip(df["method"], its, strict=True)]


def train_rows(cfg: LoopConfig, method: str, iteration: int) -> int | None:
    """Training rows of a round (its ``train.jsonl``; M0's from ``m0/sft.json``): the paper's ``|Train|`` ("Train" in a
    Markdown table, where a bar would end the cell)."""
    if method == "SFT-Initial":
        rep = cfg.run_root / "m0" / "sft.json"
        return read_json(rep)["rows"] if rep.exists() else None
    path = cfg.run_root / "methods" / method / f"iter_{iteration}" / "train.jsonl"
    return sum(1 for _ in path.open(encoding="utf-8")) if path.exists() else None


def profile_table(cfg: LoopConfig, table: str, ours=None):
    """Table ``table`` (1a, 1b, 3, 5 or 7) of the profile's runs beside the paper's: one row per round the paper
    prints or the profile ran, ours (accuracy with its interval, tokens, the ``metrics.json`` it comes from) or
    "not run", then the paper's columns (``hsir.paper.beside``). ``ours``: the ``results_table`` if already read."""
    import pandas as pd

    ours = results_table(cfg, paper.METHODS[table]) if ours is None else ours
    if table in paper.ONE_ROUND and len(ours):
        ours = ours[ours["iteration"] == 1]
    found = {(r["method"], int(r["iteration"])): r for _, r in ours.iterrows()}
    order = {m: i for i, m in enumerate(paper.METHODS[table])}
    keys = sorted(set(paper_keys(table)) | set(found), key=lambda k: (order.get(k[0], len(order)), k[1]))
    rows = []
    for method, t in keys:
        row = {"method": method, "iteration": t}
        r = found.get((method, t))
        if r is None:
            row |= {"accuracy (%)": NOT_RUN, "95% CI": "", "mean tokens": "", "n": "", "source": ""}
        else:
            row |= {"accuracy (%)": f"{100 * r['accuracy']:.2f}", "95% CI": percent_interval(*r["accuracy_ci95"]),
                    "mean tokens": f"{r['mean_tokens']:.1f}", "n": int(r["n"]),
                    "source": f"methods/{method}/iter_{t}/metrics.json"}
        if table in ("1a", "1b"):
            n = train_rows(cfg, method, t) if r is not None else None
            row["train rows"] = "" if n is None else n
            row["paper Train (K)"] = paper.table_1_cells(method, t if paper.TABLE_1.get(method, {}).get(t) else 0) \
                .get("|Train| (K)", "")
        rows.append(row)
    side = paper.beside(table, [k[0] for k in keys], [k[1] for k in keys]).fillna("")
    return pd.concat([pd.DataFrame(rows), side], axis=1)


def cell_value(cfg: LoopConfig, method: str, t: int) -> str:
    """One cell of ours: accuracy with its interval and mean tokens from the round's ``metrics.json``, or "not run"."""
    path = cfg.run_root / "methods" / method / f"iter_{t}" / "metrics.json"
    if not path.exists():
        return NOT_RUN
    m = next(iter(read_json(path).values()))
    return f"{100 * m['accuracy']:.2f} {percent_interval(*m['accuracy_ci95'])}, {m['mean_tokens']:.0f} tok"


def cell_table(profile: str, table: str):
    """Table ``table`` (1, 2 or 4) cell by cell: per row the paper prints, each column's accuracy with its interval
    and mean tokens from that column's cell run (``params/<profile>/cells/``), or "not run", beside the paper's
    number; and the run folder each column comes from."""
    import pandas as pd

    cells = {c.column: c for c in load_cells(profile).values() if c.table == table}
    cfgs = {col: cell_config(profile, c) for col, c in cells.items()}
    printed = paper.paper_table(table)
    rows = []
    for (method, t), (_, p) in zip(paper_keys(table), printed.iterrows(), strict=True):
        row = {"method": method, "iteration": t}
        for col in CELL_TABLES[table]:
            row[col] = cell_value(cfgs[col], method, t) if col in cfgs else NOT_RUN
            row[f"paper {col}"] = p[col]
        if table == "1":  # the paper's |Train| Avg.: training rows, thousands, averaged over the cells
            n = [k for col in cfgs if (k := train_rows(cfgs[col], method, t)) is not None]
            row |= {"Train (K), mean of the cells run": f"{sum(n) / len(n) / 1000:.2f}" if n else NOT_RUN,
                    "paper Train (K)": p["|Train| (K)"]}
        row |= {"paper accuracy": p["accuracy"], "paper tokens": p["tokens"]}
        rows.append(row)
    sources = pd.DataFrame([{"column": col, "cell": cells[col].name if col in cells else "(none in this profile)",
                             "run folder": kit_path(cfgs[col].run_root) if col in cfgs else "",
                             "model": cfgs[col].model if col in cfgs else "",
                             "seed traces": cells[col].seed_traces if col in cells else ""}
                            for col in CELL_TABLES[table]])
    return pd.DataFrame(rows), sources


def all_sources(profile: str, overrides: dict | None = None) -> dict[str, LoopConfig]:
    """The profile's own runs and every cell's: where out-of-distribution evaluations may lie."""
    cfgs = {PROFILE: load_config(profile, overrides)}
    return cfgs | {name: cell_config(profile, c) for name, c in load_cells(profile).items()}


def table_6_report(cfgs: dict[str, LoopConfig], methods: Sequence[str] = ("IRPO", "HSIR-DPO")):
    """Table 6's layout (``generalization.table_6``) with a row for every round the paper prints ("not run" where
    this profile has none) and each row's sources."""
    import pandas as pd

    rows = generalization_rows(cfgs, methods)
    ours = table_6(rows, methods)
    found = {(r["method"], int(r["iteration"])): r.to_dict() for _, r in ours.iterrows()}
    keys = sorted(set(paper_keys("6")) | set(found), key=lambda k: (list(methods).index(k[0]), k[1]))
    sets = list(dict.fromkeys(rows["label"])) if len(rows) else ["ours"]
    out = []
    for method, t in keys:
        row = found.get((method, t)) or {"method": method, "iteration": t} | dict.fromkeys(sets, NOT_RUN)
        for col in paper.TABLE_6_COLUMNS:
            row[f"paper {col}"] = paper.TABLE_6.get(method, {}).get(t, {}).get(col, "")
        here = rows[(rows["method"] == method) & (rows["iteration"] == t)] if len(rows) else rows
        row["source"] = "; ".join(kit_path(p) for p in here["metrics"]) if len(here) else ""
        out.append(row)
    return pd.DataFrame(out).fillna("")


def figure_4_rows(cfgs: dict[str, LoopConfig]):
    """Fig. 4's bars (each method's last round per set) with the ``metrics.json`` each comes from."""
    return final_rounds(generalization_rows(cfgs))


def _flags(table: str) -> list[str]:
    flags = paper.flags_table(table)
    if flags.empty:
        return []
    return ["The paper's own inconsistencies (`hsir.paper.FLAGS`):",
            markdown(flags[["row", "column", "printed", "implied", "within rounding", "note"]])]


def _figure(fig, out: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    figures.save(fig, out, name)
    plt.close(fig)
    return f"![{name}]({name}.png)"


def _cell_figures(profile: str, table: str, out: Path) -> list[str]:
    """Accuracy against tokens for each cell of ``table`` that has finished rounds, beside the paper's overall points
    (the paper prints no cell's tokens); a line saying none has run otherwise."""
    shown = []
    for cell in (c for c in load_cells(profile).values() if c.table == table):
        ran = results_table(cell_config(profile, cell), cell.methods)
        if len(ran):
            name = f"99_better_faster_{table}_{cell.name}"
            shown.append(_figure(figures.better_faster(ran, table, f"{cell.column} ({cell.name})"), out, name))
    return shown or [f"Accuracy against tokens: {NOT_RUN} (no cell of Table {table} has a finished round)."]


def _header(profile: str, cfg: LoopConfig, command: str) -> list[str]:
    return [f"# The paper's tables and figures beside the {profile} profile's",
            f"Rebuilt from `{kit_path(cfg.run_root)}` by `{command}` ({time.strftime('%Y-%m-%d')}). Every number of ours "
            "names the file it comes from: a `source` column relative to the run folder its section names, or for "
            "Tables 1, 2 and 4 each column's run folder (the cell's `methods/<method>/iter_<t>/metrics.json`). "
            f"\"{NOT_RUN}\" marks a row the paper prints that this profile has not run. Accuracy is greedy on the "
            "test split with a 95% bootstrap interval. The paper's numbers are its models on its data, as printed: "
            f"this profile trains {cfg.model} on {cfg.task}, so read them beside ours for direction only."]


def write_report(profile: str, overrides: dict | None = None, out: Path | None = None,
                 command: str | None = None) -> str:
    """``paper_tables.md`` and its PNGs in ``out`` (default ``figures_dir(profile)``); returns the Markdown."""
    out = Path(out) if out else figures_dir(profile)
    cfgs = all_sources(profile, overrides)
    cfg = cfgs[PROFILE]
    parts = _header(profile, cfg, command or f"python -m hsir.paper_report --profile {profile}")
    for table in PROFILE_TABLES:
        ran = results_table(cfg, paper.METHODS[table])
        parts += [f"## {paper.TITLES[table]}", f"Run folder: `{kit_path(cfg.run_root)}`.",
                  markdown(profile_table(cfg, table, ran)),
                  _figure(figures.better_faster(ran, table), out, f"99_better_faster_{table}")]
        parts += _flags(table) if table in ("3", "5", "7") else []
    for table in CELL_TABLES:
        res, sources = cell_table(profile, table)
        parts += [f"## {paper.PAPER_TITLES[table]}, cell by cell", markdown(res),
                  "Where each column comes from (each cell: `<run folder>/methods/<method>/iter_<t>/metrics.json`):",
                  markdown(sources), *_flags(table), *_cell_figures(profile, table, out)]
        if table == "4" and (out / "06_table_4_stand_in.md").exists():
            parts.append("Whether this profile's model can stand in on these tasks at all (notebook 06: M0 against "
                         "chance): [06_table_4_stand_in.md](06_table_4_stand_in.md).")
    t6 = table_6_report(cfgs)
    parts += [f"## {paper.PAPER_TITLES['6']}",
              "Ours: each trained run's IRPO and HSIR-DPO rounds on its out-of-distribution sets (notebook 06), the "
              "change from iteration 1 paired on the same problems; the paper's two columns beside.", markdown(t6),
              *_flags("6")]
    f4 = figure_4_rows(cfgs)
    parts += ["## Fig. 4: out-of-distribution accuracy of the self-improved models",
              "The paper's Fig. 4 is a chart whose values its text does not print (Qwen2.5-7B: trained on MedQA, tested "
              "on Medbullets and MedXpertQA; trained on GSM8K, tested on MATH and AMC23); it reads that DPO generalises "
              "better than SFT and HSIR better than the baselines. Ours:",
              _figure(figures.figure_4(f4), out, "99_figure_4")]
    if len(f4):
        view = f4.assign(source=[kit_path(p) for p in f4["metrics"]])
        parts.append(markdown(view[["label", "method", "iteration", "accuracy (%)", "ci_low", "ci_high", "mean_tokens",
                                    "n", "source"]]))
    else:
        parts.append(f"Fig. 4: {NOT_RUN} (notebook 06 writes its evaluations).")
    fig2 = out / "01_figure_2.png"
    parts += ["## Fig. 2: correct counts, the four-level split, SFT on one solution chosen four ways",
              "![01_figure_2](01_figure_2.png) (notebook 01)" if fig2.exists() else f"Fig. 2: {NOT_RUN} (notebook 01).",
              "The paper's Fig. 2 is a chart whose values its text does not print."]
    parts += ["## Figures without numbers to stand beside", *(f"- {k}: {v}" for k, v in OTHER_FIGURES.items())]
    text = "\n\n".join(parts) + "\n"
    write_text(out / "paper_tables.md", text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Every table and figure of the paper beside a profile's finished runs.")
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--out", help="default: figures/<profile>/")
    args = ap.parse_args(argv)
    print(write_report(args.profile, out=Path(args.out) if args.out else None,
                       command="python -m hsir.paper_report " + " ".join(argv or sys.argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
