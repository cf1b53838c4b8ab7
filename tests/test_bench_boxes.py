import json
from pathlib import Path

import pytest

from hsir.bench.boxes import box_name, box_rows, boxes_markdown


def write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_rows_are_ratios_to_the_same_runs_ceiling_and_plain_loop(tmp_path):
    box = {"cpu_model": "AMD EPYC", "cpu_capability": "AVX512", "amx": False, "avx512_bf16": True}
    train = write(tmp_path / "train-x.json", {
        "bench": "train", "ceiling_tokens_per_s": 500.0, "matmul_gflops": 400.0, "machine": box, "time": "2026-11-30T01",
        "configs": {"plain-loop": {"real_tokens_per_s": 200.0, "ratio_to_ceiling": 0.4},
                    "default": {"real_tokens_per_s": 250.0, "ratio_to_ceiling": 0.5},
                    "broken": {"error": "oom"}}})
    old = write(tmp_path / "generate-old.json", {  # a ceiling from the older formula: left out
        "bench": "generate", "ceiling_tokens_per_s": 3200.0, "machine": {"cpus": 2},
        "configs": {"vllm-bf16": {"tokens_per_s": 650.0, "ratio_to_ceiling": 0.2}}})
    grpo = write(tmp_path / "grpo.json", {"bench": "grpo", "configs": {"engine": {"step_seconds": [30.0]}}})
    rows = box_rows([train, old, grpo])
    assert [(r["config"], r["ratio"], r["x plain"]) for r in rows] == [("plain-loop", 0.4, 1.0), ("default", 0.5, 1.25)]
    assert rows[0]["box"] == "AVX512 AVX512-BF16"
    text = boxes_markdown(rows)
    assert "| default | 250.0 | 500.0 | 50.0% | 1.25 |" in text


def test_box_name_says_when_the_flags_were_not_recorded():
    assert box_name({"cpus": 2, "cpu": "AVX2"}) == "AVX2 (flags not recorded)"
    assert box_name({"cpu_capability": "AVX512", "amx": True, "avx512_bf16": True}) == "AVX512 AMX AVX512-BF16"
    assert box_name({"cpu_capability": "AVX512", "avx512_bf16": True, "openmp": "libiomp5"}) == (
        "AVX512 AVX512-BF16, libiomp5")
    assert box_name({"cpu_capability": "AVX512", "avx512_bf16": True, "openmp": "libgomp"}) == "AVX512 AVX512-BF16"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps")
def test_the_openmp_runtime_is_the_one_this_process_loaded():
    import os

    import torch  # noqa: F401  (torch brings GNU's libgomp)

    from hsir.bench.common import openmp_runtime

    preloaded = "libiomp5" in os.environ.get("LD_PRELOAD", "")
    assert openmp_runtime() == ("libiomp5" if preloaded else "libgomp")


def test_a_file_that_is_not_json_is_named(tmp_path):
    bad = tmp_path / "train-bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="train-bad.json"):
        box_rows([bad])
