"""Every table and figure of the paper beside a profile's runs (notebook 99): a number of ours in the report is
followed back to the file it names, rows the paper prints and the profile has not run say so, and the cells of
Tables 1, 2 and 4 read their own run folders."""

import json
import re
from pathlib import Path

import pytest

from hsir import paper, paper_report
from hsir.config import figures_dir, load_config, runs_dir
from hsir.runs import read_json

METRICS = {"accuracy": 0.625, "accuracy_ci95": [0.5, 0.75], "mean_tokens": 123.4, "n": 8, "truncation_rate": 0.0,
           "format_rate": 1.0, "extracted_rate": 1.0, "backend": "hf", "dtype": "fp32"}


def write_round(root: Path, method: str, t: int, label: str, metrics: dict = METRICS) -> None:
    it = root / "methods" / method / f"iter_{t}"
    it.mkdir(parents=True)
    (it / "metrics.json").write_text(json.dumps({label: metrics}))
    rows = [{"qid": f"{label}-test-{i}", "correct": i < 5, "n_tokens": 123, "text": "x = 1."} for i in range(8)]
    (it / f"eval_{label}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_ood(root: Path, method: str, t: int, name: str, accuracy: float) -> None:
    folder = root / "generalization" / method / f"iter_{t}" / name
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({name: METRICS | {"accuracy": accuracy}}))
    (folder / f"eval_{name}.jsonl").write_text(json.dumps({"qid": "q0", "correct": True}) + "\n")


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))
    return tmp_path


def table_rows(text: str, title: str) -> list[list[str]]:
    """The header and rows of the first Markdown table after the heading ``title``."""
    table = text.split(f"## {title}")[1].split("\n|", 1)[1].split("\n\n")[0]  # from its header to the blank line
    lines = [ln for ln in ("|" + table).splitlines() if not ln.startswith("|---")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def test_a_number_of_ours_in_the_report_traces_back_to_the_file_it_names(folders):
    root = runs_dir("smoke")
    write_round(root, "HSIR-SFT", 1, "synthetic")
    write_round(root, "SFT-Initial", 1, "synthetic", METRICS | {"accuracy": 0.25, "accuracy_ci95": [0.0, 0.5]})
    write_ood(root, "HSIR-DPO", 1, "synthetic-ood", 0.375)
    text = paper_report.write_report("smoke")
    out = figures_dir("smoke")
    assert (out / "paper_tables.md").read_text(encoding="utf-8") == text

    rows = table_rows(text, paper.TITLES["1a"])
    header, body = rows[0], {(r[0], r[1]): dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert len(body) == len(paper_report.paper_keys("1a"))  # every row the paper prints, no more here
    ours = body["HSIR-SFT", "1"]
    folder = re.search(r"Run folder: `([^`]+)`", text.split(f"## {paper.TITLES['1a']}")[1]).group(1)
    source = read_json(Path(folder) / ours["source"])  # the number, followed back to its file
    assert ours["accuracy (%)"] == f"{100 * source['synthetic']['accuracy']:.2f}" == "62.50"
    assert ours["95% CI"] == "[50.0, 75.0]" and ours["mean tokens"] == "123.4" and ours["n"] == "8"
    assert ours["paper overall acc"] == "69.16" and "paper GSM8K (1.5B)" in header
    assert body["STaR", "3"]["accuracy (%)"] == paper_report.NOT_RUN and body["STaR", "3"]["paper overall acc"] == "64.82"

    rows_6 = table_rows(text, paper.PAPER_TITLES["6"])
    t6 = {(r[0], r[1]): dict(zip(rows_6[0], r, strict=True)) for r in rows_6[1:]}
    assert rows_6[0][:3] == ["method", "iteration", "testbed→testbed (ood)"]
    dpo = t6["HSIR-DPO", "1"]
    assert float(dpo["testbed→testbed (ood)"]) == 100 * read_json(Path(dpo["source"]))["synthetic-ood"]["accuracy"]
    assert dpo["paper MedQA→GPQA"] == "28.79" and t6["IRPO", "2"]["testbed→testbed (ood)"] == paper_report.NOT_RUN

    assert "Accuracy against tokens: not run (no cell of Table 2 has a finished round)." in text
    for name in ["99_better_faster_1a", "99_better_faster_5", "99_figure_4"]:
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG" and f"]({name}.png)" in text
    assert "Fig. 2: not run (notebook 01)." in text and "Table 1: iterative" in text


def test_cell_tables_read_each_cells_runs_and_say_not_run_elsewhere(folders):
    cells = {c.column: c for c in paper_report.load_cells("paper").values()}
    arc = paper_report.cell_config("paper", cells["ARC"])
    write_round(arc.run_root, "HSIR-SFT", 1, "arc")
    star = load_config("paper").run_root / "methods" / "STaR"
    write_round(star.parents[1], "STaR", 2, "gsm8k")  # Table 1's first cell: the profile's own runs
    (star / "iter_2" / "train.jsonl").write_text('{"prompt": "q", "completion": "c"}\n' * 1500)
    res, sources = paper_report.cell_table("paper", "4")
    row = res.set_index("method").loc["HSIR-SFT"]
    assert row["ARC"] == "62.50 [50.0, 75.0], 123 tok" and row["paper ARC"] == 72.45
    assert row["CSQA"] == row["StraQA"] == paper_report.NOT_RUN and row["paper accuracy"] == 69.85
    arc_source = sources.set_index("column").loc["ARC"]
    assert arc_source["run folder"] == str(arc.run_root) and arc_source["model"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert "DeepSeek-R1" in arc_source["seed traces"]
    report = paper_report.write_report("paper")
    for name in ("99_better_faster_4_table4-arc", "99_better_faster_1_table1-1.5b-gsm8k"):
        assert f"]({name}.png)" in report and (figures_dir("paper") / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert report.count("](99_better_faster_4_") == 1 and "no cell of Table 2 has a finished round" in report
    t1, _ = paper_report.cell_table("paper", "1")
    star2 = t1[(t1["method"] == "STaR") & (t1["iteration"] == 2)].iloc[0]
    assert star2["1.5B GSM8K"].startswith("62.50") and star2["paper 1.5B GSM8K"] == 70.96
    assert star2["7B MedQA"] == paper_report.NOT_RUN
    assert star2["Train (K), mean of the cells run"] == "1.50" and star2["paper Train (K)"] == 6.1
    assert set(t1[t1["method"] == "HSIR-SFT"]["Train (K), mean of the cells run"]) == {paper_report.NOT_RUN}
    assert len(t1) == len(paper.paper_table("1"))


def test_a_profile_without_cells_prints_the_papers_tables_as_not_run(folders):
    res, sources = paper_report.cell_table("embedded", "2")
    assert len(res) == len(paper.TABLE_2) and set(res["Mistral-7B GSM8K"]) == {paper_report.NOT_RUN}
    assert list(res["paper LLaMA3-8B GSM8K"]) == [r["LLaMA3-8B GSM8K"] for r in paper.TABLE_2.values()]
    assert set(sources["cell"]) == {"(none in this profile)"}
    t1a = paper_report.profile_table(load_config("embedded"), "1a")
    assert set(t1a["accuracy (%)"]) == {paper_report.NOT_RUN} and len(t1a) == 13  # 4 single rows, 3 methods × 3 rounds
