import json
import re
import time
from pathlib import Path

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


NOTEBOOKS = ["00_quickstart.ipynb", "01_preliminary_analysis.ipynb", "02_hsir_sft.ipynb", "03_hsir_dpo.ipynb",
             "04_h_grpo.ipynb", "05_ablations.ipynb", "06_generalization.ipynb", "07_indiv_analysis.ipynb",
             "99_paper_tables.ipynb"]


def files_under(*folders: Path) -> dict[Path, int]:
    """Every file under ``folders`` with its modification time: a run that writes there changes this."""
    return {f: f.stat().st_mtime_ns for d in folders if d.is_dir() for f in d.rglob("*") if f.is_file()}


@pytest.mark.slow
def test_smoke_profile_runs_headless(tmp_path, monkeypatch, smoke_model):
    """The smoke profile end to end, every artifact and figure written under the test's own folders (the kernels
    inherit $HSIR_RUNS_DIR and $HSIR_FIGURES_DIR): nothing is resumed from, or left in, the kit's runs/ and figures/."""
    runs, figs = tmp_path / "runs" / "smoke", tmp_path / "figures" / "smoke"
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.chdir(tmp_path)
    kit_before = files_under(ROOT / "runs" / "smoke", ROOT / "figures" / "smoke")
    lines: list[str] = []
    out = reproduce.run("smoke", echo=lines.append)
    assert files_under(ROOT / "runs" / "smoke", ROOT / "figures" / "smoke") == kit_before
    expected = NOTEBOOKS + (["08_explore.ipynb"] if (ROOT / "notebooks" / "08_explore.ipynb").exists() else [])
    assert [p.name for p in out] == sorted(expected)
    assert all(p.parent == runs / "notebooks" for p in out)
    for path in out:
        nb = nbformat.read(path, as_version=4)
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert (runs / "logs" / "00_quickstart.log").exists()
    n_png = len(list(figs.glob("*.png")))
    assert f"figures ({n_png} PNG, with PDFs): {figs}" in [" ".join(line.split()) for line in lines], lines
    for name in ["00_correct_counts", "01_figure_2", "04_grpo_curves", "07_redundancy_auc"]:
        assert (figs / f"{name}.png").exists() and (figs / f"{name}.pdf").exists(), name
    metrics = read_json(runs / "quickstart" / "metrics.json")
    assert set(metrics) == {"synthetic", "gsm8k"} and metrics["synthetic"]["n"] == 4
    assert metrics["synthetic"]["backend"] == "hf" and "torch" in metrics["synthetic"]["versions"]
    samples = (runs / "quickstart" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 3 * 2 and all("correct" in json.loads(s) for s in samples)
    # notebook 07 trained M0 (SFT-Initial) for later notebooks, and scored its samples
    assert (runs / "m0" / "model.safetensors").exists()
    assert read_json(runs / "m0" / "sft.json")["rows"] == 8
    m0_samples = (runs / "07_indiv" / "m0_samples.jsonl").read_text().splitlines()
    assert len(m0_samples) == 3 * 2
    # the loop notebooks (01-05) ran every method they list: each has an evaluated round
    for method in ["SFT-Initial", "SFT-Oracle", "STaR", "ReST-EM", "RFT", "ReGenesis", "HSIR-SFT", "IRPO", "HSIR-DPO",
                   "answer-driven", "VeriExit-only", "length-driven", "InDiv-only", "GRPO", "H-GRPO",
                   "HSIR-SFT+H-GRPO", "select-random", "select-high-readiv"]:
        metrics = read_json(runs / "methods" / method / "iter_1" / "metrics.json")
        assert metrics["synthetic"]["n"] == 4, method
    run_md = (figs / "run.md").read_text()  # the run's record: every notebook, one attempt each
    for n in expected:
        assert re.search(rf"^\| {Path(n).stem} \| [^|]+ \| \d+ \| 1 \| finished \| 0 \| 0 \|$", run_md, re.M), (n, run_md)
    # where the time went: every notebook, the loop's training, evaluation and sampling found in its folders
    spent = run_md.split("## Where the time went", 1)[1]
    all_row = next(line for line in spent.splitlines() if line.startswith("| **all** |")).split(" | ")
    assert all(not cell.startswith("0s") for cell in all_row[1:4]), all_row  # training, evaluation, sampling
    assert not (runs / "logs" / "reproduce.jsonl").exists()  # closed: the next run is timed afresh
    # seed 1 (params/smoke/02_hsir_sft.yaml) ran Table 1a's claim rows only, from the shared M0
    seed1 = runs.parent / "smoke-seed1"
    assert (seed1 / "m0").is_symlink() and (seed1 / "m0").resolve() == (runs / "m0").resolve()
    assert sorted(p.name for p in (seed1 / "methods").iterdir()) == ["HSIR-SFT", "ReST-EM", "SFT-Initial", "STaR"]
    assert read_json(seed1 / "methods" / "ReST-EM" / "run.json")["config"]["seed"] == 1
    claims_md = (figs / "claims.md").read_text()
    assert "seed 1:" in claims_md
    table_1a = next(line for line in claims_md.splitlines() if line.startswith("| Table 1a"))
    assert "0, 1" in table_1a  # Table 1a pooled both seeds
    # every evaluated round of both seeds archived beside the figures, to commit (hsir.archive)
    rounds = figs / "rounds"
    assert read_json(rounds / "smoke" / "m0.json")["weights"] == read_json(rounds / "smoke-seed1" / "m0.json")["weights"]
    assert (rounds / "smoke-seed1" / "methods" / "ReST-EM" / "iter_1" / "eval_synthetic.jsonl.gz").exists()
    assert len(list(rounds.glob("smoke/methods/*/iter_1/metrics.json"))) >= 18


def test_library_output_counts_stream_lines_that_are_not_the_kits(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="[hsir] sampling 3/8\nWARNING vllm: tip\n\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="backend: vllm, engine start-up 4.0 s\nnoise\n"),
                    nbformat.v4.new_output("display_data", data={"text/plain": "a table"})]
    nb.cells = [nbformat.v4.new_markdown_cell("prose"), cell]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert reproduce.library_output(path) == ["WARNING vllm: tip", "noise"]
    assert reproduce.main(["--count-library-output", str(path)]) == 0


def test_run_record_sums_a_killed_and_resumed_notebook(tmp_path, monkeypatch):
    """A notebook's time is its attempts up to the first that finished; a resume that reopened a finished notebook
    is shown apart and left out of the total; ``--record`` writes the same file from an attempts log."""
    attempts = [{"notebook": "00_quickstart", "seconds": 150.0, "outcome": "finished", "time": "t0", "commit": "a"},
                {"notebook": "01_preliminary_analysis", "seconds": 600.0, "outcome": "stopped: KeyboardInterrupt",
                 "time": "t1", "commit": "a"},
                {"notebook": "00_quickstart", "seconds": 50.0, "outcome": "finished", "time": "t2", "commit": "b"},
                {"notebook": "01_preliminary_analysis", "seconds": 300.0, "outcome": "finished", "time": "t2",
                 "commit": "b"},
                {"notebook": "02_hsir_sft", "seconds": 60.0, "outcome": "failed: RuntimeError", "time": "t3",
                 "commit": "b"}]
    box = {"cpu_model": "AMD EPYC", "cpu_capability": "AVX512", "amx": False, "avx512_bf16": True, "threads": 2}
    text = reproduce.run_record("embedded", attempts, box)
    assert "| 01_preliminary_analysis | 15m00s | 900 | 2 | finished | 0 | 0 |" in text
    assert "| 00_quickstart | 2m30s | 150 | 1 | finished | 1 | 50 |" in text
    assert "Total **18m30s** (0.31 h)" in text  # 150 + 900 + 60 seconds, the reopened 00 apart
    assert "plus 50s reopening notebooks after they had finished" in text
    assert "not finished: 02_hsir_sft" in text and "commits a, b" in text and "AMD EPYC" in text
    assert "not recorded by the attempts" in text
    # a finished notebook reopened and stopped stays finished; one that never finished counts every attempt
    later = [{"notebook": "00_quickstart", "seconds": 30.0, "outcome": "stopped: SystemExit", "time": "t4",
              "commit": "c", "box": box | {"cpu_model": "Intel Xeon"}},
             {"notebook": "02_hsir_sft", "seconds": 40.0, "outcome": "stopped: SystemExit", "time": "t5", "commit": "c",
              "box": box | {"cpu_model": "Intel Xeon"}}]
    text = reproduce.run_record("embedded", attempts + later, box)
    assert "| 00_quickstart | 2m30s | 150 | 1 | finished (later: stopped: SystemExit) | 2 | 80 |" in text
    assert "| 02_hsir_sft | 1m40s | 100 | 2 | stopped: SystemExit | 0 | 0 |" in text
    assert "not finished: 02_hsir_sft;" in text and "Box: Intel Xeon" in text  # the box the attempts recorded
    log = tmp_path / "reproduce-20261130T120000.jsonl"
    log.write_text("".join(json.dumps(a) + "\n" for a in attempts))
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path / "runs"))
    assert reproduce.main(["--profile", "embedded", "--record", str(log), "--seeds", "1", "2"]) == 0
    written = (tmp_path / "figures" / "embedded" / "run-seeds-1-2.md").read_text()
    assert written.startswith('# `make reproduce SEEDS="1 2"`') and "Total **18m30s**" in written
    assert "## Where the time went" not in written  # no run folders here to read it from


def test_a_killed_notebook_is_timed_to_its_last_heartbeat(tmp_path, monkeypatch):
    """A kill -9 runs no handler: the heartbeat a running notebook keeps is what the next run logs as its attempt,
    so run.md counts the killed attempt's time; a notebook that ends normally leaves no heartbeat behind."""
    import papermill

    attempts = tmp_path / "logs" / "reproduce.jsonl"
    attempts.parent.mkdir()
    with reproduce.Heartbeat(attempts, "01_preliminary_analysis", "d1", every=0.02) as beat:
        deadline = time.monotonic() + 30  # a loaded box may delay the beats; they must come
        while (kept := json.loads(beat.path.read_text()))["seconds"] < 0.1 and time.monotonic() < deadline:
            time.sleep(0.01)  # kept: what a kill at this moment would leave
    assert not beat.path.exists()
    assert kept["notebook"] == "01_preliminary_analysis" and kept["outcome"] == reproduce.KILLED
    assert 0.1 <= kept["seconds"] < 30 and kept["digest"] == "d1" and "cpu_capability" in kept["box"]
    # the killed run left its heartbeat (600 s in); the resumed run logs it, then runs the rest
    reproduce.heartbeat_path(attempts).write_text(json.dumps(kept | {"seconds": 600.0}))
    ran: list[str] = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, out, **kw: ran.append(Path(nb).stem))
    monkeypatch.setattr(reproduce, "summary", lambda *a: None)
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path / "runs"))
    lines: list[str] = []
    reproduce.run("smoke", out_root=tmp_path, echo=lines.append)
    assert any("01_preliminary_analysis was killed after 10m00s" in line for line in lines)
    assert not reproduce.heartbeat_path(attempts).exists()
    run_md = (tmp_path / "figures" / "smoke" / "run.md").read_text()
    assert re.search(r"^\| 01_preliminary_analysis \| 10m\d\ds \| 60\d \| 2 \| finished \|", run_md, re.M), run_md
    assert reproduce.log_killed(attempts) is None  # nothing left to log


def test_only_the_loop_notebooks_take_seeds():
    takes = {nb.stem for nb in (ROOT / "notebooks").glob("*.ipynb") if reproduce.takes_seeds(nb)}
    assert takes == {"01_preliminary_analysis", "02_hsir_sft", "03_hsir_dpo", "04_h_grpo", "05_ablations"}


def test_a_resumed_run_skips_the_notebooks_an_earlier_attempt_finished(tmp_path, monkeypatch):
    """A run stopped in 01 and started again goes on from 01: 00 is not reopened, its earlier attempt stays in the
    record; a notebook changed since its finished attempt runs again; a run with other seeds keeps its own attempts."""
    import papermill

    ran: list[str] = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, out, **kw: ran.append(Path(nb).stem))
    monkeypatch.setattr(reproduce, "summary", lambda *a: None)
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path / "runs"))
    pairs = reproduce.notebooks_for("smoke")
    every, digests = [nb.stem for nb, _ in pairs], {nb.stem: reproduce.notebook_digest(nb, p) for nb, p in pairs}
    logs = tmp_path / "logs"
    logs.mkdir()
    earlier = [{"notebook": "00_quickstart", "seconds": 150.0, "outcome": "finished", "time": "t0", "commit": "a",
                "digest": digests["00_quickstart"]},
               {"notebook": "01_preliminary_analysis", "seconds": 600.0, "outcome": "stopped: SystemExit",
                "time": "t1", "commit": "a", "digest": digests["01_preliminary_analysis"]},
               {"notebook": "02_hsir_sft", "seconds": 60.0, "outcome": "finished", "time": "t1", "commit": "a",
                "digest": "changed-since"}]
    (logs / "reproduce.jsonl").write_text("".join(json.dumps(a) + "\n" for a in earlier))
    assert reproduce.finished_earlier(logs / "reproduce.jsonl", digests) == {"00_quickstart"}
    (logs / "reproduce-seeds-1.jsonl").write_text("")  # a seeds run's own attempts: not this run's
    lines: list[str] = []
    out = reproduce.run("smoke", out_root=tmp_path, echo=lines.append)
    assert ran == every[1:] and [p.stem for p in out] == every
    assert any("00_quickstart.ipynb finished in an earlier attempt of this run, unchanged since; skipped" in line
               for line in lines)
    run_md = (tmp_path / "figures" / "smoke" / "run.md").read_text()
    assert "| 00_quickstart | 2m30s | 150 | 1 | finished |" in run_md
    assert re.search(r"^\| 01_preliminary_analysis \| [^|]+ \| \d+ \| 2 \| finished \| 0 \| 0 \|$", run_md, re.M), run_md
    # ran again after a change: its second attempt is shown apart from the time to finish
    assert re.search(r"^\| 02_hsir_sft \| 1m00s \| 60 \| 1 \| finished \| 1 \| \d+ \|$", run_md, re.M), run_md
    assert (logs / "reproduce-seeds-1.jsonl").exists() and not (logs / "reproduce.jsonl").exists()
    # a stopped seeds run resumes from its own attempts, in its own folders, into its own record
    ran.clear()
    (logs / "reproduce-seeds-1.jsonl").write_text(json.dumps(earlier[0]) + "\n")
    out = reproduce.run("smoke", out_root=tmp_path, echo=lines.append, seeds=[1])
    assert ran == every[1:] and all(p.parent.name == "notebooks-seeds-1" for p in out)
    seeds_md = (tmp_path / "figures" / "smoke" / "run-seeds-1.md").read_text()
    assert "| 00_quickstart | 2m30s | 150 | 1 | finished |" in seeds_md
    assert seeds_md.startswith('# `make reproduce SEEDS="1"`, profile smoke')
