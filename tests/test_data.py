"""Data on a machine without the local data folder: the hub (a local stand-in here) fills the kit's cache once."""

import json
import shutil

import nbformat
import pytest
import yaml

from hsir import data, reproduce
from hsir import hub as kit_hub
from hsir.tasks import DataError, get_task

from .conftest import ROOT


@pytest.fixture
def hub(monkeypatch, data_dir):
    """A stand-in for the hub: each (hub id, split) served from the local copy of that dataset; calls counted."""
    files = {("openai/gsm8k", "test"): data_dir / "gsm8k" / "test.jsonl",
             ("camel-ai/gsm8k_distilled", "train"): data_dir / "seed_reasoning" / "gsm8k_r1" / "sft_train.jsonl"}
    calls = []

    def rows(hub_id, config, split):
        calls.append((hub_id, config, split))
        with open(files[(hub_id, split)], encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)

    monkeypatch.setattr(kit_hub, "hub_rows", rows)
    return calls


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "data"


def offline_hub(monkeypatch):
    def fail(hub_id, config, split):
        raise ConnectionError(f"Couldn't reach {hub_id!r} on the Hub (offline)")
        yield  # pragma: no cover

    monkeypatch.setattr(kit_hub, "hub_rows", fail)


def test_missing_split_is_fetched_once_then_read_offline_and_equals_the_local_file(
        tmp_path, monkeypatch, hub, cache, data_dir):
    empty = tmp_path / "no-data"
    empty.mkdir()
    fetched = get_task("gsm8k", empty).load("test", limit=20)
    assert hub == [("openai/gsm8k", "main", "test")]
    assert (cache / "gsm8k" / "test.jsonl").exists()
    offline_hub(monkeypatch)
    again = get_task("gsm8k", empty).load("test", limit=20)  # from the cache, the hub unreachable
    local = get_task("gsm8k", data_dir).load("test", limit=20)
    assert list(again) == list(fetched) == list(local)
    assert data.where("gsm8k", "test") == "local"  # the real folder still wins where it exists


def test_seed_traces_come_from_their_own_hub_dataset(tmp_path, hub, cache, data_dir):
    p = get_task("gsm8k", tmp_path).load("seed", limit=3)
    assert hub == [("camel-ai/gsm8k_distilled", None, "train")]
    assert [x.reasoning for x in p] == [x.reasoning for x in get_task("gsm8k", data_dir).load("seed", limit=3)]


def test_no_files_and_no_hub_names_the_file_the_hub_id_and_the_fetch_command(tmp_path, monkeypatch, cache):
    offline_hub(monkeypatch)
    with pytest.raises(FileNotFoundError) as e:
        get_task("gsm8k", tmp_path).load("test")
    msg = str(e.value)
    assert "gsm8k/test.jsonl is missing" in msg and "'openai/gsm8k'" in msg
    assert "python -m hsir.data fetch gsm8k test" in msg
    assert not (cache / "gsm8k" / "test.jsonl").exists()  # nothing half-written


def test_a_task_without_hub_id_says_so(tmp_path, cache):
    with pytest.raises(FileNotFoundError, match=r"medbullets_op4\.json is missing.*no hub id"):
        get_task("medbullets", tmp_path).load("test")


def test_a_bad_cached_row_names_file_and_line(tmp_path, cache):
    (cache / "gsm8k").mkdir(parents=True)
    (cache / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "x #### 3"}\n{oops\n')
    with pytest.raises(DataError, match=r"gsm8k/test\.jsonl:2: not valid JSON"):
        get_task("gsm8k", tmp_path).load("test")


def test_gpqa_is_never_written_in_plain_text(tmp_path, cache):
    with pytest.raises(ValueError, match="not cached in plain text"):
        data.fetch("gpqa", "test")


def test_each_profile_lists_the_splits_its_notebooks_read():
    """``make data`` fetches params/<profile>/data.yaml: it must name every file-backed split the params use."""
    for prof in sorted(p for p in (ROOT / "params").iterdir() if p.is_dir()):
        needs = set(data.profile_needs(prof.name))
        used = set()
        for path in prof.glob("*.yaml"):
            doc = yaml.safe_load(path.read_text()) or {}
            for task in doc.get("eval_tasks", {}):
                used.add((task, "test"))
            if "sample_task" in doc:
                used.add((doc["sample_task"], doc.get("sample_split", "test")))
            if doc.get("n_r1_traces"):
                used.add(("gsm8k", "seed"))
            if path.name == "selfimprove.yaml":
                for key, default in (("seed_split", "seed"), ("unlabeled_split", "unlabeled"), ("test_split", "test")):
                    used.add((doc["task"], doc.get(key, default)))
        used = {u for u in used if u[0] != "synthetic"}
        assert used <= needs, f"{prof.name}/data.yaml lacks {sorted(used - needs)}"


def test_make_data_reports_local_splits(capsys):
    status = data.ensure(data.profile_needs("embedded"))
    assert status == {"gsm8k/test": "local", "gsm8k/seed": "local"}


@pytest.mark.slow
def test_quickstart_runs_from_the_cache_without_a_data_folder(tmp_path, monkeypatch, hub, data_dir, smoke_model):
    """00_quickstart (smoke) with HSIR_DATA_DIR empty and the cache filled; the console stays on one screen."""
    from hsir.models import cache_dir

    real_cache = cache_dir()
    cache = tmp_path / "cache"
    cache.mkdir()
    for item in real_cache.iterdir():  # the models' cache as it is; only the data part starts empty
        if item.name != "data":
            (cache / item.name).symlink_to(item)
    monkeypatch.setenv("HSIR_CACHE_DIR", str(cache))
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("HSIR_DATA_DIR", str(empty))
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))  # the run's figures and archive: not the kit's
    monkeypatch.chdir(ROOT)
    shutil.rmtree(ROOT / "runs" / "smoke" / "quickstart", ignore_errors=True)  # generate afresh: progress shows
    assert data.ensure(data.profile_needs("smoke"), log=lambda _: None) == {
        "gsm8k/test": "cache (fetched)", "gsm8k/seed": "cache (fetched)"}
    offline_hub(monkeypatch)  # the kernel has no stand-in anyway: it must read the cache
    lines = []
    [out] = reproduce.run("smoke", only=["00_quickstart"], out_root=tmp_path / "run", echo=lines.append)
    assert len(lines) <= 60, "\n".join(lines)
    text = "\n".join(lines)
    assert "[hsir] generating" in text and "[reproduce] summary (smoke)" in text, text
    assert (tmp_path / "run" / "logs" / "00_quickstart.log").exists()
    nb = nbformat.read(out, as_version=4)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
