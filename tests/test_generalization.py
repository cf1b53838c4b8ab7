"""Out-of-distribution evaluation (notebook 06) and the paper profile's cells: every cell builds a valid loop config
on tasks and splits that exist, the evaluation writes, resumes and skips rounds that have not run, and Table 6's
numbers (with the paired change from iteration 1) come back from the folders alone."""

import json
import shutil
from dataclasses import replace
from types import SimpleNamespace

import pytest
import yaml

from hsir import generalization as gen
from hsir import paper
from hsir.completions import Completion, GenStats
from hsir.config import ROOT, load_config, runs_dir
from hsir.methods import get_method
from hsir.paper_report import CELL_TABLES
from hsir.runs import read_json, read_jsonl
from hsir.tasks import TASKS

# ------------------------------------------------------------------------------------------------ cells

def test_every_paper_cell_builds_a_valid_loop_config_on_existing_tasks_and_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    cells = gen.load_cells("paper")
    for cell in cells.values():
        cfg = gen.cell_config("paper", cell)
        assert cfg.task in TASKS, cell.name
        assert {cfg.seed_split, cfg.unlabeled_split, cfg.test_split} <= set(TASKS[cfg.task].splits), cell.name
        assert cell.methods and all(get_method(m) for m in cell.methods) and cell.seed_traces, cell.name
        assert cfg.run_root == (runs_dir("paper") if cell.root == "." else tmp_path / "paper" / "cells" / cell.name)
    # each printed column of Tables 1, 2 and 4 has exactly one cell
    for table, columns in CELL_TABLES.items():
        assert sorted(c.column for c in cells.values() if c.table == table) == sorted(columns), table


def test_paper_cells_carry_the_papers_sizes_models_and_rates(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    cfgs = {c.column: (c, gen.cell_config("paper", c)) for c in gen.load_cells("paper").values()}
    base = load_config("paper")
    assert replace(cfgs["1.5B GSM8K"][1], root=None) == base  # Table 1's first cell is the profile's own runs
    assert {col: cfg.n_seed for col, (_, cfg) in cfgs.items() if col in ("ARC", "CSQA", "StraQA")} == {
        "ARC": 500, "CSQA": 1000, "StraQA": 500}
    assert {cfg.task for col, (_, cfg) in cfgs.items() if col in CELL_TABLES["4"]} == {"arc", "csqa", "strategyqa"}
    models = {cfg.model for col, (c, cfg) in cfgs.items() if c.table == "2"}
    assert models == {"Qwen/Qwen3-1.7B", "microsoft/Phi-3.5-mini-instruct", "mistralai/Mistral-7B-Instruct-v0.3",
                      "meta-llama/Meta-Llama-3-8B-Instruct"}
    for col, (cell, cfg) in cfgs.items():
        assert cfg.T == (3 if cell.table == "1" else 1), col  # Qwen2.5 iterates three rounds, the rest one
        assert cfg.task == ("medqa" if "MedQA" in col else cfg.task)
        big = any(s in cfg.model for s in ("-7B", "-8B"))
        assert cfg.sft.get("lr", 1e-5) == (2e-6 if big else 1e-5), col  # paper §C.2: 2e-6 at 7B/8B
        if cell.table == "1" and big:
            assert cfg.dpo["lr"] == 2e-7 and cfg.m0_sft["lr"] == 2e-6
    assert cfgs["7B MedQA"][1].model == "Qwen/Qwen2.5-7B-Instruct" and cfgs["7B MedQA"][1].n_test == 1273


def test_load_cells_refuses_an_unknown_key_and_a_cell_defined_twice(tmp_path, monkeypatch):
    folder = tmp_path / "params" / "p" / "cells"
    folder.mkdir(parents=True)
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    (folder / "a.yaml").write_text(yaml.safe_dump({"cells": {"x": {"table": "4", "column": "ARC", "colour": 1}}}))
    with pytest.raises(ValueError, match="colour"):
        gen.load_cells("p")
    (folder / "a.yaml").write_text(yaml.safe_dump({"cells": {"x": {"table": "4", "column": "ARC"}}}))
    (folder / "b.yaml").write_text(yaml.safe_dump({"cells": {"x": {"table": "4", "column": "CSQA"}}}))
    with pytest.raises(ValueError, match="'x' is defined twice"):
        gen.load_cells("p")
    assert gen.load_cells("no-such-profile") == {}


def test_a_cell_on_a_split_its_task_lacks_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    cell = gen.Cell("bad", "4", "ARC", overrides={"task": "arc", "seed_split": "seed"})
    with pytest.raises(ValueError, match="arc has no split 'seed'"):
        gen.cell_config("paper", cell)


@pytest.mark.parametrize("profile", ["smoke", "embedded", "paper"])
def test_each_profiles_06_parameters_name_real_sources_sets_and_methods(profile, tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    params = yaml.safe_load((ROOT / "params" / profile / "06_generalization.yaml").read_text())
    cfgs = gen.source_configs(profile, {}, list(params["sources"]))
    for name, sets in params["sources"].items():
        for spec in sets:
            task, _ = gen.parse_set(spec)
            assert task != cfgs[name].task or spec.endswith(":ood"), f"{spec} is the task {name} trained on"
    assert all(get_method(m) for m in params["methods"])


def test_paper_profile_06_evaluates_the_7b_runs_on_the_papers_sets(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    params = yaml.safe_load((ROOT / "params" / "paper" / "06_generalization.yaml").read_text())
    cfgs = gen.source_configs("paper", {}, list(params["sources"]))
    labels = {gen.label(cfgs[n].task, *gen.parse_set(s)) for n, sets in params["sources"].items() for s in sets}
    assert set(paper.TABLE_6_COLUMNS) <= labels  # Table 6's two columns, named as the paper heads them
    assert {"MedQA→Medbullets", "MedQA→MedXpertQA", "GSM8K→MATH-500", "GSM8K→AMC23"} <= labels  # Fig. 4
    assert {cfg.model for cfg in cfgs.values()} == {"Qwen/Qwen2.5-7B-Instruct"}


def test_parse_set_checks_the_split_and_the_testbed_ood_split_loads():
    assert gen.parse_set("gsm8k") == ("gsm8k", "test") and gen.parse_set("synthetic:ood") == ("synthetic", "ood")
    with pytest.raises(ValueError, match="gsm8k has no split 'ood'"):
        gen.parse_set("gsm8k:ood")
    with pytest.raises(ValueError, match="unknown"):
        gen.parse_set("nope:test")
    problems = gen.eval_task(load_config("smoke"), "synthetic", "ood").load("ood", limit=5)
    assert len(problems) == 5 and all(p.meta["n_ops"] >= 6 and p.qid.startswith("synthetic-ood-") for p in problems)


# ------------------------------------------------------------------------------------------------ evaluation

class FakeGenerator:
    """Answers each prompt with ``answer(prompt)``: a model whose answers the test sets."""

    backend, dtype, batch_size = "fake", "fp32", 1

    def __init__(self, spec: str, answer):
        self.model_spec, self.answer = spec, answer
        self.tokenizer = SimpleNamespace(chat_template=None)
        self.stats = GenStats()

    def generate(self, prompts, cfg):
        return [[Completion(f"<think>\nso.\n</think>\n<answer>\n{self.answer(p)}\n</answer>", [1] * 5, 5, False,
                            "stop")] for p in prompts]


class FakeEngine:
    def __init__(self, answer):
        self.answer, self.used = answer, []

    def use(self, model: str):
        self.used.append(model)
        return FakeGenerator(model, lambda p: self.answer(model, p))


def make_model(folder):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")


def test_evaluation_writes_each_round_resumes_and_skips_rounds_not_run(tmp_path):
    cfg = load_config("smoke", {"root": str(tmp_path), "T": 2})
    make_model(tmp_path / "m0")
    make_model(tmp_path / "methods" / "HSIR-DPO" / "iter_1" / "model")  # iteration 2 never ran
    task = gen.eval_task(cfg, "synthetic", "ood")
    gold = {task.prompt(p, SimpleNamespace(chat_template=None)): p.answer for p in task.load("ood", limit=4)}
    engine = FakeEngine(lambda model, prompt: gold[prompt] if "HSIR-DPO" in model else "0")  # M0 always wrong
    said = []
    done = gen.evaluate_generalization(cfg, ["SFT-Initial", "HSIR-DPO"], ["synthetic:ood"], engine, n=4, log=said.append)
    assert [(r["method"], r["iteration"], r["status"]) for r in done] == [
        ("SFT-Initial", 0, "evaluated"), ("HSIR-DPO", 1, "evaluated"), ("HSIR-DPO", 2, "not run")]
    assert any("HSIR-DPO iter_2: not run" in s for s in said)
    m = read_json(tmp_path / "generalization" / "HSIR-DPO" / "iter_1" / "synthetic-ood" / "metrics.json")
    assert m["synthetic-ood"]["accuracy"] == 1.0 and m["synthetic-ood"]["n"] == 4
    rows = read_jsonl(tmp_path / "generalization" / "SFT-Initial" / "iter_0" / "synthetic-ood" / "eval_synthetic-ood.jsonl")
    assert len(rows) == 4 and not any(r["correct"] for r in rows)
    engine.used.clear()
    again = gen.evaluate_generalization(cfg, ["SFT-Initial", "HSIR-DPO"], ["synthetic:ood"], engine, n=4, log=said.append)
    assert [r["status"] for r in again] == ["done", "done", "not run"] and engine.used == []  # nothing regenerated


def test_a_source_without_runs_is_skipped_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    said = []
    cfgs, done = gen.run_generalization("smoke", {}, {"profile": ["synthetic:ood"]}, ["HSIR-DPO"], 2, log=said.append)
    assert done.empty and said == [f"profile: no runs at {tmp_path / 'smoke'}, skipped"]


def test_m0_of_the_tiny_model_is_evaluated_greedily_with_the_profiles_engine(tmp_path, smoke_model):
    from hsir.generate import Engine
    from hsir.models import smoke_path

    cfg = load_config("smoke", {"root": str(tmp_path)})
    shutil.copytree(smoke_path(), tmp_path / "m0")
    engine = Engine(cfg)
    try:
        done = gen.evaluate_generalization(cfg, ["SFT-Initial"], ["synthetic:ood"], engine, n=2, log=lambda s: None)
    finally:
        engine.close()
    assert [r["status"] for r in done] == ["evaluated"]
    m = read_json(gen.eval_dir(cfg, "SFT-Initial", 0, "synthetic", "ood") / "metrics.json")["synthetic-ood"]
    assert m["n"] == 2 and m["backend"] == "hf" and m["model"] == str(tmp_path / "m0")
    assert m["max_new_tokens"] == cfg.eval_max_new_tokens and 0 < m["mean_tokens"] <= cfg.eval_max_new_tokens


# ------------------------------------------------------------------------------------------------ reading back

def write_eval(root, method: str, t: int, name: str, correct: list[bool], tokens: float = 50.0,
               folder: str = "generalization") -> None:
    folder = root / folder / method / f"iter_{t}" / name
    folder.mkdir(parents=True)
    acc = sum(correct) / len(correct)
    (folder / "metrics.json").write_text(json.dumps({name: {"accuracy": acc, "accuracy_ci95": [acc - 0.1, acc + 0.1],
                                                            "mean_tokens": tokens, "n": len(correct)}}))
    rows = [{"qid": f"q{i}", "correct": c, "n_tokens": tokens, "text": ""} for i, c in enumerate(correct)]
    (folder / f"eval_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_table_6_reads_accuracy_the_paired_change_and_the_papers_column(tmp_path):
    cfg = load_config("paper", {"root": str(tmp_path), "task": "medqa", "seed_split": "train", "unlabeled_split": "train"})
    write_eval(tmp_path, "IRPO", 1, "gpqa-test", [True] * 10 + [False] * 10)
    write_eval(tmp_path, "IRPO", 2, "gpqa-test", [True] * 15 + [False] * 5)  # 5 more right, none lost
    write_eval(tmp_path, "HSIR-DPO", 1, "gpqa-test", [True] * 4 + [False] * 16)
    write_eval(tmp_path, "STaR", 1, "gpqa-test", [True] * 20)
    rows = gen.generalization_rows({"7b-medqa": cfg})
    assert list(rows["method"]) == ["STaR", "IRPO", "IRPO", "HSIR-DPO"]  # Table 1's order
    assert set(rows["label"]) == {"MedQA→GPQA"} and list(rows["accuracy (%)"]) == [100.0, 50.0, 75.0, 20.0]
    t6 = gen.table_6(rows)
    assert list(zip(t6["method"], t6["iteration"], strict=True)) == [("IRPO", 1), ("IRPO", 2), ("HSIR-DPO", 1)]
    assert list(t6["MedQA→GPQA"]) == [50.0, 75.0, 20.0] and t6.loc[1, "MedQA→GPQA 95% CI"] == "[65.0, 85.0]"
    assert t6.loc[1, "MedQA→GPQA vs iter 1 (pts)"].startswith("+25.0 [")
    assert list(t6["paper MedQA→GPQA"]) == [23.66, 22.55, 28.79]
    last = gen.final_rounds(rows)
    assert list(zip(last["method"], last["iteration"], strict=True)) == [("STaR", 1), ("IRPO", 2), ("HSIR-DPO", 1)]


def test_stand_in_check_compares_m0_with_chance_by_its_rule(tmp_path, monkeypatch, data_dir):
    """Table 4's stand-in check, read back from M0's evaluations: above chance only where the interval's lower end
    clears chance (ARC: 4 options, 25%; CommonsenseQA: 5, 20%); a set M0 was not evaluated on says so."""
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path))
    root = tmp_path / "smoke"
    write_eval(root, "SFT-Initial", 0, "arc-test", [True] * 8 + [False] * 12, folder="stand-in")  # 40% [30, 50]
    write_eval(root, "SFT-Initial", 0, "csqa-test", [True] * 5 + [False] * 15, folder="stand-in")  # 25% [15, 35]
    write_eval(root, "SFT-Initial", 0, "arc-dev", [True] * 20)  # an out-of-distribution row, not the check's
    out = tmp_path / "figures" / "06_table_4_stand_in.md"
    res = gen.stand_in_check("smoke", None, ["arc:test", "csqa:test", "arc:dev"], n=20, out=out)
    assert list(res["verdict"]) == ["above chance", "at or below chance", "not run (no M0)"]
    assert list(res["chance (%)"])[:2] == [25.0, 20.0] and list(res["accuracy (%)"])[:2] == [40.0, 25.0]
    text = out.read_text()
    assert gen.STAND_IN_RULE in text and "| arc-test | M0 |" in text
    with pytest.raises(ValueError, match="choice problems"):
        gen.stand_in_check("smoke", None, ["gsm8k:test"], n=4)
    # the check's evaluations are not Fig. 4's rows
    rows = gen.generalization_rows({"profile": load_config("smoke")})
    assert list(rows["set"]) == ["arc-dev"]
