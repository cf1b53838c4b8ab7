from pathlib import Path

import pytest

from hsir.generate import HFGenerator, SamplingConfig, finish, greedy, make_generator
from hsir.traces import EXIT_PROMPT


def test_finish_cuts_at_the_stop_string_and_keeps_it():
    c = finish("x</answer>\nmore", [5, 6, 7, 2, 2], {2}, ("</answer>",), 10)
    assert c.text == "x</answer>" and c.finish_reason == "stop" and c.token_ids == [5, 6, 7] and not c.truncated
    c = finish("abc", [5, 6, 2, 2], {2}, ("</answer>",), 10)
    assert c.finish_reason == "eos" and c.token_ids == [5, 6, 2] and c.n_tokens == 3
    c = finish("abc", [5, 6, 7], {2}, ("</answer>",), 3)
    assert c.truncated and c.finish_reason == "length"


@pytest.fixture(scope="module")
def smoke_gen(smoke_model):
    model, tok = smoke_model
    return HFGenerator("smoke:tiny-llama", dtype="fp32", model=model, tokenizer=tok, batch_size=4, progress=False)


def test_n_samples_per_prompt_with_consistent_counts(smoke_gen):
    out = smoke_gen.generate(["Hello there", [1, 2, 3, 4, 5, 6]], SamplingConfig(n=3, max_new_tokens=12, seed=1))
    assert [len(o) for o in out] == [3, 3]
    for comps in out:
        for c in comps:
            assert c.n_tokens == len(c.token_ids) <= 12
            assert c.truncated == (c.finish_reason == "length")
    assert smoke_gen.stats.tokens >= sum(c.n_tokens for cs in out for c in cs)


def test_same_seed_same_samples_other_seed_differs(smoke_gen):
    cfg = SamplingConfig(n=2, max_new_tokens=10, seed=7)
    a = smoke_gen.generate(["a b c", "d e"], cfg)
    b = smoke_gen.generate(["a b c", "d e"], cfg)
    c = smoke_gen.generate(["a b c", "d e"], SamplingConfig(n=2, max_new_tokens=10, seed=8))
    ids = lambda out: [x.token_ids for cs in out for x in cs]
    assert ids(a) == ids(b) and ids(a) != ids(c)


@pytest.mark.slow
def test_embedded_continues_a_prefix_and_stops_at_answer_close(embedded_model):
    model, tok = embedded_model
    gen = HFGenerator("embedded:smollm2-135m", dtype="fp32", model=model, tokenizer=tok, progress=False)
    prefix = "<answer>\n42\n</answer>\n<answer>\n42\n</answer>\n<think>\nSo the answer is 42." + EXIT_PROMPT
    [[c]] = gen.generate([prefix], greedy(24))
    assert c.finish_reason == "stop" and c.text.endswith("</answer>") and "42" in c.text
    assert c.n_tokens == len(c.token_ids) and tok.decode(c.token_ids).rstrip().endswith("</answer>")
    assert c.n_tokens < 24  # stopped at "</answer>" while generating, not cut afterwards
    stop = gen.stopping(("</answer>",))
    gen.generate([prefix], greedy(24))
    assert gen.stopping(("</answer>",)) is stop and gen.stopping(()) is None  # built once, not per call


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="unknown generation backend"):
        make_generator("smoke:tiny-llama", backend="tgi")


def test_auto_backend_says_which_it_picked(monkeypatch, caplog):
    import hsir.generate as generate

    monkeypatch.setattr(generate, "vllm_available", lambda: False)
    with caplog.at_level("WARNING", logger="hsir.generate"):
        gen = make_generator("smoke:tiny-llama", backend="auto", dtype="fp32", device="cpu", progress=False)
    assert gen.backend == "hf" and "generation backend: hf (auto)" in caplog.text
    assert gen.dtype == "fp32"


@pytest.mark.parametrize(("amx", "avx512_bf16", "expected"), [(True, False, "bf16"), (False, True, "bf16"),
                                                               (False, False, "fp32")])
def test_auto_dtype_is_bf16_only_where_the_cpu_runs_it_natively(monkeypatch, amx, avx512_bf16, expected):
    # emulated bf16 on an AVX2-only CPU is ~6x slower than fp32, so "auto" must not pick it there
    import torch

    from hsir.models import DTYPES, dtype_name, resolve_dtype

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert resolve_dtype("auto", "cpu") == DTYPES[expected]
    assert dtype_name("auto", "cpu") == expected  # what metrics.json records
    assert resolve_dtype("fp32", "cpu") == torch.float32  # an explicit dtype is kept
    with pytest.raises(ValueError, match="fp16"):
        resolve_dtype("fp16")


def test_the_engine_gets_weights_in_its_own_dtype(tmp_path, monkeypatch, smoke_model):
    """vLLM warns once per weight when it casts fp32 safetensors into a bf16 engine: the kit hands it a bf16 copy
    of the same values instead (cached for a start, temporary for a swap), and the folder itself when it fits."""
    import torch
    from safetensors.torch import load_file

    from hsir.models import model_path
    from hsir.vllm_backend import weights_in

    monkeypatch.setenv("HSIR_CACHE_DIR", str(tmp_path / "cache"))
    src = model_path("smoke:tiny-llama")
    assert weights_in(src, torch.float32) == src  # already fp32: no copy
    copy = weights_in(src, torch.bfloat16)
    assert copy != src and str(tmp_path / "cache") in copy
    before = load_file(f"{src}/model.safetensors")
    after = load_file(f"{copy}/model.safetensors")
    assert set(after) == set(before) and all(after[k].dtype == torch.bfloat16 for k in after)
    assert all(torch.equal(after[k], before[k].to(torch.bfloat16)) for k in before)  # the cast vLLM would do
    assert (Path(copy) / "config.json").exists() and any(Path(copy).glob("tokenizer*"))
    assert weights_in(src, torch.bfloat16) == copy  # cached: made once
    assert weights_in(copy, torch.bfloat16) == copy  # bf16 already
    swap = weights_in(src, torch.bfloat16, str(tmp_path / "swap"))
    assert swap == str(tmp_path / "swap") and (tmp_path / "swap" / "model.safetensors").exists()
