import json
import math

import pytest
import torch

from hsir.tasks import get_task
from hsir.train import SFTSettings, sft_report, sft_rows, train_sft


def test_rows_are_the_tasks_prompt_then_the_trace():
    task = get_task("synthetic")
    problems = task.load("seed", limit=3)
    rows = sft_rows(task, problems)
    assert [r["prompt"] for r in rows] == [task.messages(p) for p in problems]
    assert rows[0]["completion"] == [{"role": "assistant", "content": problems[0].reasoning}]
    with pytest.raises(ValueError, match=problems[1].qid):
        sft_rows(task, problems, ["a trace", "", "another"])
    with pytest.raises(ValueError, match="2 traces for 3 problems"):
        sft_rows(task, problems, ["a", "b"])


def test_train_writes_a_loadable_model_once(tmp_path, smoke_model):
    from hsir.models import load_model

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=8))
    out = train_sft("smoke:tiny-llama", rows, tmp_path / "m0", SFTSettings(lr=1e-3, batch_size=4, bf16=False))
    report = sft_report(out)
    assert report["steps"] == 2 and report["rows"] == 8 and math.isfinite(report["train_loss"])
    assert not (tmp_path / "m0.checkpoints").exists()
    trained, tok = load_model(str(out), dtype="fp32")
    base, _ = smoke_model
    assert tok.chat_template == smoke_model[1].chat_template  # sampling uses the same template it was trained on
    changed = [n for n, p in trained.named_parameters() if not torch.equal(p, base.get_parameter(n))]
    assert changed, "training left every weight as it was"
    stamp = (out / "sft.json").stat().st_mtime_ns
    assert train_sft("smoke:tiny-llama", rows, out) == out  # a finished model is reused, not retrained
    assert (out / "sft.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "sft.json").read_text())["settings"]["lr"] == 1e-3
