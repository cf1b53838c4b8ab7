"""Out of distribution: the self-improved models evaluated on tasks they never trained on (paper Fig. 4, Table 6;
notebook 06), and the paper profile's cells, the runs beside the profile's own that Tables 1, 2 and 4 need.

A *source* is a finished run folder and the tasks its models are tested on: ``profile`` (the profile's own runs,
``selfimprove.yaml`` with the notebook's overrides) or a *cell* of ``params/<profile>/cells/*.yaml``, e.g. the
paper's Qwen2.5-7B trained on MedQA (tested on Medbullets, MedXpertQA and GPQA) or on GSM8K (tested on MATH-500,
AMC23 and, cross-task, MedQA). Each round's model (``<run root>/methods/<method>/iter_<t>/model``; M0, i.e.
SFT-Initial, is iteration 0 at ``<run root>/m0``, as ``hsir.paper`` numbers it) is evaluated greedily with the
profile's engine by ``hsir.evaluate.evaluate`` into ``<run root>/generalization/<method>/iter_<t>/<task>-<split>/``,
which a rerun skips once its ``metrics.json`` is there (delete the folder to evaluate anew, e.g. with another
number of problems); a round that has not run is skipped with a message. Reading
back needs the folders only, so the report (``hsir.paper_report``) rebuilds Fig. 4 and Table 6 without a model.

On the synthetic testbed the out-of-distribution set is the ``ood`` split (``hsir.synthetic.OOD_OPS``: more
operations than any training or test problem); GSM8K test is the cross-task one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hsir.config import ROOT, LoopConfig, kit_path, load_config, runs_dir, settings_from
from hsir.evaluate import evaluate, paired_difference
from hsir.generate import Engine
from hsir.methods import M0, get_method
from hsir.paper import TABLE_6, TABLE_6_COLUMNS
from hsir.progress import say
from hsir.rounds import round_correct
from hsir.runs import read_json
from hsir.tasks import TASKS, Task, get_task

PROFILE = "profile"  # the source that is the profile's own runs
FOLDER = "generalization"
STAND_IN_FOLDER = "stand-in"  # stand_in_check's evaluations: not out-of-distribution rows of Fig. 4
ORDER = ("SFT-Initial", "SFT-Oracle", "RFT", "ReGenesis", "STaR", "ReST-EM", "HSIR-SFT", "IRPO", "HSIR-DPO")  # Table 1's
# how a task is named in a label ("MedQA→GPQA", the paper's Table 6 header)
TASK_NAMES = {"gsm8k": "GSM8K", "math500": "MATH-500", "amc23": "AMC23", "medqa": "MedQA", "medbullets": "Medbullets",
              "medxpertqa": "MedXpertQA", "arc": "ARC", "csqa": "CSQA", "strategyqa": "StraQA", "gpqa": "GPQA",
              "synthetic": "testbed"}


# ------------------------------------------------------------------------------------------------ cells

@dataclass(frozen=True)
class Cell:
    """One cell of a paper table that a profile runs apart from its own runs: its overrides of ``selfimprove.yaml``,
    the rows (methods) the paper shows for it, and where its seed traces come from."""

    name: str
    table: str  # "1", "2" or "4" (hsir.paper)
    column: str  # the paper's column, e.g. "7B MedQA"
    overrides: dict = field(default_factory=dict)
    methods: list = field(default_factory=list)
    seed_traces: str = ""
    root: str | None = None  # under runs_dir(profile); default cells/<name>; "." is the profile's own runs


def load_cells(profile: str) -> dict[str, Cell]:
    """Every cell of ``params/<profile>/cells/*.yaml`` (their ``cells:`` mappings; other top-level keys hold YAML
    anchors); none where the folder is absent. An unknown key or a name given twice fails, naming it."""
    import yaml

    cells: dict[str, Cell] = {}
    for path in sorted((ROOT / "params" / profile / "cells").glob("*.yaml")):
        for name, values in ((yaml.safe_load(path.read_text()) or {}).get("cells") or {}).items():
            if name in cells:
                raise ValueError(f"{path}: cell {name!r} is defined twice")
            cells[name] = settings_from(Cell, {"name": name, **values}, f"{path}: cell {name}")
    return cells


def check_splits(cfg: LoopConfig, where: str = "") -> None:
    """The loop's task and its seed, unlabeled and test splits exist in ``hsir.tasks.TASKS``, before any run."""
    if cfg.task not in TASKS:
        raise ValueError(f"{where}task {cfg.task!r} unknown; valid tasks: {sorted(TASKS)}")
    for split in (cfg.seed_split, cfg.unlabeled_split, cfg.test_split):
        if split not in TASKS[cfg.task].splits:
            raise ValueError(f"{where}{cfg.task} has no split {split!r}; splits: {TASKS[cfg.task].splits}")


def cell_config(profile: str, cell: Cell) -> LoopConfig:
    """A cell's loop settings: the profile's ``selfimprove.yaml`` with the cell's overrides, in the cell's root."""
    root = runs_dir(profile) / (cell.root or f"cells/{cell.name}")  # "." adds nothing: the profile's own runs
    cfg = load_config(profile, cell.overrides | {"root": str(root)})
    check_splits(cfg, f"cell {cell.name}: ")
    return cfg


def source_configs(profile: str, overrides: dict | None, names: Sequence[str]) -> dict[str, LoopConfig]:
    """Loop settings per source name: ``profile`` (``selfimprove.yaml`` + ``overrides``) or a cell's name."""
    cells = load_cells(profile)
    out = {}
    for name in names:
        if name == PROFILE:
            out[name] = load_config(profile, overrides)
        elif name in cells:
            out[name] = cell_config(profile, cells[name])
        else:
            raise KeyError(f"source {name!r} is neither {PROFILE!r} nor a cell of params/{profile}/cells: {sorted(cells)}")
    return out


# ------------------------------------------------------------------------------------------------ evaluation

def eval_splits(task: str) -> list[str]:
    """Splits a task can be evaluated on (the testbed's from ``hsir.synthetic``, its ``ood`` split included)."""
    if task not in TASKS:
        raise ValueError(f"task {task!r} unknown; valid tasks: {sorted(TASKS)}")
    return TASKS[task].splits


def parse_set(spec: str) -> tuple[str, str]:
    """``"task:split"`` (split default ``test``) as (task, split), both checked."""
    task, _, split = spec.partition(":")
    split = split or "test"
    if split not in eval_splits(task):
        raise ValueError(f"{spec!r}: {task} has no split {split!r}; splits: {eval_splits(task)}")
    return task, split


def eval_task(cfg: LoopConfig, name: str, split: str) -> Task:
    """The task to evaluate on, with the profile's extraction."""
    return get_task(name, cfg.data_dir, strict=cfg.extraction == "strict")


def label(trained_on: str, task: str, split: str) -> str:
    """A set as the paper heads it, training task → test task: "MedQA→GPQA", "testbed→testbed (ood)"."""
    return f"{TASK_NAMES.get(trained_on, trained_on)}→{TASK_NAMES.get(task, task)}" + ("" if split == "test" else f" ({split})")


def rounds_of(cfg: LoopConfig, method: str) -> list[tuple[int, Path]]:
    """(iteration, model folder) of every round ``cfg`` asks of ``method``: M0 is iteration 0."""
    if method == M0:
        return [(0, cfg.run_root / "m0")]
    n = cfg.T if get_method(method).iterative else 1
    return [(t, cfg.run_root / "methods" / method / f"iter_{t}" / "model") for t in range(1, n + 1)]


def has_model(folder: Path) -> bool:
    return (folder / "model.safetensors").exists() or (folder / "model.safetensors.index.json").exists()


def eval_dir(cfg: LoopConfig, method: str, iteration: int, task: str, split: str, folder: str = FOLDER) -> Path:
    return cfg.run_root / folder / method / f"iter_{iteration}" / f"{task}-{split}"


def evaluate_generalization(cfg: LoopConfig, methods: Sequence[str], sets: Sequence[str], engine,
                            n: int | None = None, log: Callable[[str], None] = say, folder: str = FOLDER) -> list[dict]:
    """Every finished round of ``methods`` (and M0 where listed) on every set ``"task:split"`` (``n`` problems
    each, all if None), greedy with ``cfg``'s evaluation length; one record per round and set, its ``status``
    ``evaluated``, ``done`` (found, skipped) or ``not run`` (no model: skipped with a message)."""
    parsed = [parse_set(s) for s in sets]
    problems = {}
    records = []
    for method in methods:
        for t, model in rounds_of(cfg, method):
            if not has_model(model):
                log(f"{method} iter_{t}: not run ({model} holds no model), skipped")
                records += [{"method": method, "iteration": t, "set": f"{k}-{s}", "status": "not run"} for k, s in parsed]
                continue
            for task_name, split in parsed:
                out = eval_dir(cfg, method, t, task_name, split, folder)
                status = "done"
                if not (out / "metrics.json").exists():
                    if (task_name, split) not in problems:
                        task = eval_task(cfg, task_name, split)
                        problems[task_name, split] = (task, task.load(split, limit=n))
                    task, probs = problems[task_name, split]
                    m = evaluate(task, probs, engine.use(str(model)), out, max_new_tokens=cfg.eval_max_new_tokens,
                                 label=f"{task_name}-{split}", chunk=cfg.eval_chunk)
                    log(f"{method} iter_{t} on {task_name}/{split}: accuracy {m['accuracy']:.3f}, "
                        f"{m['mean_tokens']:.0f} tokens")
                    status = "evaluated"
                records.append({"method": method, "iteration": t, "set": f"{task_name}-{split}", "status": status})
    return records


def run_generalization(profile: str, overrides: dict | None, sources: Mapping[str, Sequence[str]],
                       methods: Sequence[str], n: int | None = None, log: Callable[[str], None] = say):
    """Notebook 06: each source's rounds on its sets, one engine per source (the profile's backend); a source
    without runs is skipped with a message. Returns the sources' settings and what was done, as a DataFrame."""
    import pandas as pd

    cfgs = source_configs(profile, overrides, list(sources))
    records = []
    for name, cfg in cfgs.items():
        if not cfg.run_root.is_dir():
            log(f"{name}: no runs at {cfg.run_root}, skipped")
            continue
        engine = Engine(cfg)  # starts on its first model only
        try:
            done = evaluate_generalization(cfg, methods, sources[name], engine, n, log)
        finally:
            engine.close()
        records += [{"source": name} | r for r in done]
    return cfgs, pd.DataFrame(records)


STAND_IN_RULE = ("A set is *above chance* where the lower end of M0's 95% interval is above chance (the mean over "
                 "its problems of 1 / their options), else *at or below chance*: Table 4's rows there would print "
                 "noise, and the profile prints none.")


def stand_in_check(profile: str, overrides: dict | None, sets: Sequence[str], n: int | None = None,
                   out: str | Path | None = None, log: Callable[[str], None] = say):
    """Can the profile's model stand in for the paper's on these choice tasks (Table 4's ARC and CommonsenseQA)?
    M0 of the profile's runs evaluated greedily on each set as the rounds above are, into ``<run root>/stand-in/``
    (read back on a rerun), its accuracy with the 95% interval against chance, and a verdict by ``STAND_IN_RULE``
    (below chance happens: a model that answers one letter, or none, most of the time); written as Markdown to
    ``out`` where given."""
    import pandas as pd

    from hsir.rounds import markdown
    from hsir.runs import write_text

    if not sets:
        return pd.DataFrame()
    cfg = load_config(profile, overrides)
    chances = {}  # first, so that a set without options fails before any evaluation
    for task_name, split in map(parse_set, sets):
        problems = eval_task(cfg, task_name, split).load(split, limit=n)
        options = [len(p.choices) for p in problems if p.choices]
        if len(options) < len(problems):
            raise ValueError(f"{task_name}:{split}: a stand-in check needs choice problems; some have no options")
        chances[task_name, split] = sum(1 / k for k in options) / len(options)
    if has_model(cfg.run_root / "m0"):
        engine = Engine(cfg)
        try:
            evaluate_generalization(cfg, [M0], sets, engine, n, log, STAND_IN_FOLDER)
        finally:
            engine.close()
    rows = []
    for (task_name, split), chance in chances.items():
        row = {"set": f"{task_name}-{split}", "model": "M0", "chance (%)": round(100 * chance, 1)}
        path = eval_dir(cfg, M0, 0, task_name, split, STAND_IN_FOLDER) / "metrics.json"
        if not path.exists():
            rows.append(row | {"verdict": "not run (no M0)"})
            continue
        m = next(iter(read_json(path).values()))
        lo, hi = m["accuracy_ci95"]
        rows.append(row | {"n": m["n"], "accuracy (%)": round(100 * m["accuracy"], 1),
                           "95% CI": _interval(100 * lo, 100 * hi),
                           "verdict": "above chance" if lo > chance else "at or below chance",
                           "metrics": kit_path(path)})
    res = pd.DataFrame(rows)
    if out is not None:
        write_text(out, f"# Table 4's tasks on the {profile} profile's model (notebook 06)\n\n{STAND_IN_RULE}\n\n"
                        f"{markdown(res)}\n")
    return res


# ------------------------------------------------------------------------------------------------ reading back

def generalization_rows(cfgs: Mapping[str, LoopConfig], methods: Sequence[str] | None = None):
    """Every out-of-distribution evaluation found under the sources' run roots, one row per round and set:
    accuracy in % with its 95% interval, mean output tokens, and the ``metrics.json`` it comes from."""
    import pandas as pd

    rows = []
    for source, cfg in cfgs.items():
        for path in sorted((cfg.run_root / FOLDER).glob("*/iter_*/*/metrics.json")):
            method, it, folder = path.parts[-4], path.parts[-3], path.parent
            if methods is not None and method not in methods:
                continue
            task, _, split = folder.name.partition("-")
            m = next(iter(read_json(path).values()))
            lo, hi = m["accuracy_ci95"]
            rows.append({"source": source, "trained on": cfg.task, "method": method, "iteration": int(it[5:]),
                         "set": folder.name, "label": label(cfg.task, task, split),
                         "accuracy (%)": round(100 * m["accuracy"], 2), "ci_low": round(100 * lo, 2),
                         "ci_high": round(100 * hi, 2), "mean_tokens": round(m["mean_tokens"], 1), "n": m["n"],
                         "metrics": path})
    order = {m: i for i, m in enumerate(methods or ORDER)}
    res = pd.DataFrame(rows)
    if res.empty:
        return res
    res["_order"] = res["method"].map(lambda m: order.get(m, len(order)))
    return res.sort_values(["_order", "method", "iteration", "label"]).drop(columns="_order").reset_index(drop=True)


def final_rounds(rows):
    """Each method's last evaluated round per set: Fig. 4's bars (the paper shows the trained models)."""
    if rows.empty:
        return rows
    last = rows.groupby(["method", "label"])["iteration"].transform("max")
    return rows[rows["iteration"] == last].reset_index(drop=True)


def _interval(lo: float, hi: float) -> str:
    return f"[{lo:.1f}, {hi:.1f}]"


def table_6(rows, methods: Sequence[str] = ("IRPO", "HSIR-DPO")):
    """Table 6's layout from ``generalization_rows``: per method and iteration, accuracy in % with its interval on
    each set, its change from iteration 1 on the same problems with a paired interval (the paper prints the change
    in parentheses), and the paper's number where the set is one of its columns (Qwen2.5-7B, as printed)."""
    import pandas as pd

    if rows.empty:
        return pd.DataFrame()
    rows = rows[rows["method"].isin(methods)]
    out = []
    for (method, t), g in rows.groupby(["method", "iteration"], sort=False):
        row = {"method": method, "iteration": t}
        for _, r in g.iterrows():
            col = r["label"]
            row[col] = r["accuracy (%)"]
            row[f"{col} 95% CI"] = _interval(r["ci_low"], r["ci_high"])
            first = rows[(rows["method"] == method) & (rows["iteration"] == 1) & (rows["label"] == col)]
            if t > 1 and len(first):
                d = paired_difference(round_correct(r["metrics"].parent), round_correct(first.iloc[0]["metrics"].parent))
                row[f"{col} vs iter 1 (pts)"] = f"{100 * d['diff']:+.1f} {_interval(*(100 * x for x in d['diff_ci95']))}"
            if col in TABLE_6_COLUMNS:
                row[f"paper {col}"] = TABLE_6.get(method, {}).get(t, {}).get(col)
        out.append(row)
    order = {m: i for i, m in enumerate(methods)}
    return pd.DataFrame(sorted(out, key=lambda r: (order[r["method"]], r["iteration"])))
