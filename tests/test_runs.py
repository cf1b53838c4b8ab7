import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hsir.evaluate import bootstrap_ci, summarize
from hsir.generate import Completion, GenStats, SamplingConfig
from hsir.runs import ResumableJsonl, Run, read_jsonl, write_jsonl
from hsir.sampling import sample_and_score
from hsir.tasks import get_task


def test_resumable_jsonl_drops_a_torn_line(tmp_path):
    p = tmp_path / "samples.jsonl"
    store = ResumableJsonl(p, key=lambda r: r["qid"])
    store.extend([{"qid": "a"}, {"qid": "b"}])
    with open(store.partial, "a") as f:
        f.write('{"qid": "c", "te')  # killed mid-write
    again = ResumableJsonl(p, key=lambda r: r["qid"])
    assert again.done == {"a", "b"}
    again.extend([{"qid": "c"}])
    assert [r["qid"] for r in again.finalize()] == ["a", "b", "c"]
    assert not store.partial.exists() and [r["qid"] for r in read_jsonl(p)] == ["a", "b", "c"]


def test_stage_skips_when_outputs_exist_and_logs_the_ledger(tmp_path):
    run = Run(tmp_path)
    calls = []

    def work():
        calls.append(1)
        write_jsonl(run.path("a.jsonl"), [{"x": 1}])
        return {"tokens": 5}

    assert run.stage("a", ["a.jsonl"], work) is True
    assert run.stage("a", ["a.jsonl"], work) is False
    assert len(calls) == 1 and run.ledger()[0]["stage"] == "a" and run.ledger()[0]["tokens"] == 5
    with pytest.raises(RuntimeError, match="without writing"):
        run.stage("b", ["b.jsonl"], lambda: None)


def test_read_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"x\.jsonl:2"):
        read_jsonl(p)


class ScriptedGenerator:
    """Returns fixed texts: lets a test pin down scoring without a model."""

    backend, dtype, model_spec = "scripted", "fp32", "scripted"

    def __init__(self, text, truncated=False):
        self.text, self.truncated, self.tokenizer, self.stats = text, truncated, None, GenStats()
        self.prompts = 0

    def generate(self, prompts, cfg):
        self.prompts += len(prompts)
        c = lambda: Completion(self.text, [1, 2, 3], 3, self.truncated, "length" if self.truncated else "stop")
        return [[c() for _ in range(cfg.n)] for _ in prompts]


class NoTemplate:
    chat_template = None


def test_a_truncated_generation_is_never_correct(tmp_path):
    task = get_task("synthetic")
    p = task.load("test", limit=1)[0]
    gen = ScriptedGenerator(f"<answer>{p.answer}</answer>", truncated=True)
    gen.tokenizer = NoTemplate()
    rows = sample_and_score(task, [p], gen, SamplingConfig(n=2), tmp_path / "s.jsonl")
    assert [r["correct"] for r in rows] == [False, False] and all(r["pred"] == p.answer for r in rows)
    gen2 = ScriptedGenerator(f"<answer>{p.answer}</answer>")
    gen2.tokenizer = NoTemplate()
    rows = sample_and_score(task, [p], gen2, SamplingConfig(n=2), tmp_path / "t.jsonl")
    assert [r["correct"] for r in rows] == [True, True]
    assert summarize(rows)["accuracy"] == 1.0
    assert summarize(rows)["extracted_rate"] == 1.0 and summarize(rows)["format_rate"] == 0.0  # no <think> block


def test_bootstrap_interval_brackets_the_mean():
    lo, hi = bootstrap_ci([1] * 30 + [0] * 70)
    assert lo < 0.3 < hi and 0.15 < lo and hi < 0.45
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)


KILLABLE = textwrap.dedent("""
    import sys, time
    from hsir.generate import HFGenerator, SamplingConfig
    from hsir.sampling import sample_and_score
    from hsir.tasks import get_task

    class Slow(HFGenerator):
        def generate(self, prompts, cfg):
            out = super().generate(prompts, cfg)
            time.sleep(0.5)
            return out

    task = get_task("synthetic")
    gen = Slow("smoke:tiny-llama", dtype="fp32", device="cpu", progress=False)
    sample_and_score(task, task.load("test", limit=12), gen, SamplingConfig(n=2, max_new_tokens=4), sys.argv[1], chunk=2)
""")


def test_killed_sampling_resumes_where_it_stopped(tmp_path, smoke_model):
    out = tmp_path / "samples.jsonl"
    partial = tmp_path / "samples.jsonl.partial"
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(out)], env=os.environ.copy())
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 4):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the final artifact must not exist before the stage finishes"
    kept = [json.loads(x) for x in partial.read_text().splitlines() if x.strip()]
    done = {r["qid"] for r in kept}
    assert 2 <= len(done) < 12

    model, tok = smoke_model
    from hsir.generate import HFGenerator

    class Counting(HFGenerator):
        seen: list = []

        def generate(self, prompts, cfg):
            self.seen.extend(prompts)
            return super().generate(prompts, cfg)

    gen = Counting("smoke:tiny-llama", dtype="fp32", model=model, tokenizer=tok, progress=False)
    task = get_task("synthetic")
    problems = task.load("test", limit=12)
    cfg = SamplingConfig(n=2, max_new_tokens=4)
    rows = sample_and_score(task, problems, gen, cfg, out, chunk=2)
    assert len(gen.seen) == 12 - len(done)  # only the unfinished queries were generated again
    assert sorted({r["qid"] for r in rows}) == sorted(p.qid for p in problems)
    assert len(rows) == 24
    assert [r for r in rows if r["qid"] in done] == [r for r in kept if r["qid"] in done]
    assert Run(tmp_path).ledger()[-1]["stage"] == "samples"
    # the same artifact as an uninterrupted run with the same seed
    fresh = sample_and_score(task, problems, gen, cfg, tmp_path / "fresh" / "samples.jsonl", chunk=2)
    key = lambda r: (r["req"], r["sample"])
    assert sorted(rows, key=key) == sorted(fresh, key=key)


class Failing(ScriptedGenerator):
    """Raises on its ``fail_at``-th call: a kill in the middle of a stage."""

    def __init__(self, text, fail_at):
        super().__init__(text)
        self.fail_at, self.calls = fail_at, 0

    def generate(self, prompts, cfg):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt("killed")
        return super().generate(prompts, cfg)


def test_a_grown_evaluation_generates_only_the_new_problems_and_survives_a_kill(tmp_path):
    task = get_task("synthetic")
    problems = task.load("test", limit=8)
    path = tmp_path / "eval.jsonl"
    gen = ScriptedGenerator("<answer>1</answer>")
    gen.tokenizer = NoTemplate()
    first = sample_and_score(task, problems[:4], gen, SamplingConfig(n=1), path, chunk=2)
    assert gen.prompts == 4
    # the test set grows to 8 (n_test raised); the second new chunk is killed
    dying = Failing("<answer>2</answer>", fail_at=2)
    dying.tokenizer = NoTemplate()
    with pytest.raises(KeyboardInterrupt):
        sample_and_score(task, problems, dying, SamplingConfig(n=1), path, chunk=2)
    again = ScriptedGenerator("<answer>2</answer>")
    again.tokenizer = NoTemplate()
    rows = sample_and_score(task, problems, again, SamplingConfig(n=1), path, chunk=2)
    assert again.prompts == 2  # only the killed chunk: the first 4 answers and the first new chunk were kept
    assert [r["qid"] for r in rows] == [p.qid for p in problems] and rows[:4] == first
    assert read_jsonl(path) == rows and not path.with_name(path.name + ".partial").exists()
    # shrinking it back evaluates nothing and leaves the file holding just the problems asked for
    fewer = sample_and_score(task, problems[:4], again, SamplingConfig(n=1), path, chunk=2)
    assert again.prompts == 2 and fewer == first and read_jsonl(path) == first
