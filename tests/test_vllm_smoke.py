"""The smoke model (tiny random Llama) loads and samples under vLLM too: the tests' fast path is a real engine."""

import pytest

from hsir.generate import SamplingConfig, make_generator, vllm_available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed")]


def test_smoke_model_samples_and_closes():
    gen = make_generator("smoke:tiny-llama", backend="vllm", dtype="fp32", enforce_eager=True, max_model_len=512,
                         progress=False)
    try:
        out = gen.generate([[1, 2, 3], "hello"], SamplingConfig(n=2, max_new_tokens=8, seed=1))
        assert [len(o) for o in out] == [2, 2]
        assert all(c.n_tokens == len(c.token_ids) for cs in out for c in cs)
        assert gen.stats.tokens == sum(c.n_tokens for cs in out for c in cs) and gen.stats.startup_seconds > 0
    finally:
        gen.close()
    assert gen.llm is None
