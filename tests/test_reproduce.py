import json
import shutil

import nbformat
import pytest

from hsir import reproduce
from hsir.runs import read_json

from .conftest import ROOT


def test_notebooks_are_stripped_and_have_a_parameters_cell():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, f"{path.name}: outputs must be stripped"


def test_every_notebook_cell_compiles():
    # a syntax error in a notebook otherwise surfaces only minutes into the headless run
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, c in enumerate(nb.cells):
            if c.cell_type == "code":
                compile(c.source, f"{path.name} cell {i}", "exec")


def test_every_profile_parameter_names_a_notebook_parameter():
    for yaml_path in sorted((ROOT / "params").glob("*/*.yaml")):
        if yaml_path.name in ("selfimprove.yaml", "data.yaml"):  # the loop's settings; the splits to fetch
            continue
        nb_path = ROOT / "notebooks" / f"{yaml_path.stem}.ipynb"
        assert nb_path.exists(), f"{yaml_path} has no notebook"
        nb = nbformat.read(nb_path, as_version=4)
        src = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        import yaml

        for key in yaml.safe_load(yaml_path.read_text()):
            assert f"\n{key} =" in "\n" + src, f"{yaml_path}: {key!r} is not a parameter of {nb_path.name}"


def test_unknown_profile_is_named():
    with pytest.raises(SystemExit, match="unknown profile 'nope'"):
        reproduce.notebooks_for("nope")


@pytest.mark.slow
def test_smoke_profile_runs_headless(tmp_path, monkeypatch, smoke_model):
    monkeypatch.chdir(ROOT)
    shutil.rmtree(ROOT / "runs" / "smoke", ignore_errors=True)  # no stale artifacts to resume from
    out = reproduce.run("smoke", out_root=tmp_path)
    assert [p.name for p in out] == ["00_quickstart.ipynb", "01_preliminary_analysis.ipynb", "02_hsir_sft.ipynb",
                                     "03_hsir_dpo.ipynb", "04_h_grpo.ipynb", "05_ablations.ipynb",
                                     "07_indiv_analysis.ipynb"]
    for path in out:
        nb = nbformat.read(path, as_version=4)
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert (ROOT / "figures" / "smoke" / "07_redundancy_auc.png").exists()
    metrics = read_json(ROOT / "runs" / "smoke" / "quickstart" / "metrics.json")
    assert set(metrics) == {"synthetic", "gsm8k"} and metrics["synthetic"]["n"] == 4
    assert metrics["synthetic"]["backend"] == "hf" and "torch" in metrics["synthetic"]["versions"]
    assert (ROOT / "figures" / "smoke" / "00_correct_counts.png").exists()
    samples = (ROOT / "runs" / "smoke" / "quickstart" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 3 * 2 and all("correct" in json.loads(s) for s in samples)
    # notebook 07 trained M0 (SFT-Initial) for later notebooks, and scored its samples
    assert (ROOT / "runs" / "smoke" / "m0" / "model.safetensors").exists()
    assert read_json(ROOT / "runs" / "smoke" / "m0" / "sft.json")["rows"] == 8
    m0_samples = (ROOT / "runs" / "smoke" / "07_indiv" / "m0_samples.jsonl").read_text().splitlines()
    assert len(m0_samples) == 3 * 2
    # notebooks 01 and 02 ran the loop: Fig. 2, and every Table 1a method has an evaluated round
    assert (ROOT / "figures" / "smoke" / "01_figure_2.png").exists()
    assert (ROOT / "figures" / "smoke" / "04_grpo_curves.png").exists()
    for method in ["SFT-Initial", "SFT-Oracle", "STaR", "ReST-EM", "RFT", "ReGenesis", "HSIR-SFT", "IRPO", "HSIR-DPO",
                   "answer-driven", "VeriExit-only", "length-driven", "InDiv-only", "GRPO", "H-GRPO",
                   "HSIR-SFT+H-GRPO", "select-random", "select-high-readiv"]:
        metrics = read_json(ROOT / "runs" / "smoke" / "methods" / method / "iter_1" / "metrics.json")
        assert metrics["synthetic"]["n"] == 4, method
