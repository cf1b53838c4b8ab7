"""The smoke model (tiny random Llama) under vLLM: the tests' fast path is a real engine. Two engine starts: one
in this process (the CPU default) that samples and swaps in new weights, and one in vLLM's multiprocess mode on
the new weights, against which the swap is checked (and which swaps back)."""

import math
import os
from pathlib import Path

import psutil
import pytest
import torch

from hsir.generate import SamplingConfig, make_generator, vllm_available
from hsir.models import SMOKE, model_path

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed")]

KW = dict(backend="vllm", dtype="fp32", enforce_eager=True, max_model_len=512, progress=False)
TEXT = "The quick brown fox jumps over the lazy dog. It was not amused, and said so at some length. " * 2
MP_ENV = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")  # before any engine


def engine_core_processes() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if "EngineCore" in p.name() and p.status() != psutil.STATUS_ZOMBIE]


def rss_gib() -> float:
    return psutil.Process().memory_info().rss / 2**30


@pytest.fixture(scope="module")
def engine():
    gen = make_generator(SMOKE, **KW)
    yield gen
    gen.close()


@pytest.fixture(scope="module")
def retrained(tmp_path_factory) -> str:
    """A smoke-shaped model with other weights, saved the way training saves one (save_pretrained + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("retrained")
    model = AutoModelForCausalLM.from_pretrained(model_path(SMOKE), dtype=torch.float32)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():  # the tied embedding/head included
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(model_path(SMOKE)).save_pretrained(out)
    return str(out)


def first_token(gen, ids: list[int]) -> tuple[int, float]:
    """The greedy next token after ``ids`` and its log-probability: a normal request, so it reads the prefix cache."""
    from vllm import SamplingParams

    [res] = gen.llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, temperature=0.0, logprobs=0),
                             use_tqdm=False)
    out = res.outputs[0]
    return out.token_ids[0], out.logprobs[0][out.token_ids[0]].logprob


def test_smoke_model_samples_in_this_process(engine):
    out = engine.generate([[1, 2, 3], "hello"], SamplingConfig(n=2, max_new_tokens=8, seed=1))
    assert [len(o) for o in out] == [2, 2]
    assert all(c.n_tokens == len(c.token_ids) for cs in out for c in cs)
    assert engine.stats.tokens == sum(c.n_tokens for cs in out for c in cs) and engine.stats.startup_seconds > 0
    assert engine.in_process and not engine_core_processes()  # the CPU default: no engine-core process
    assert os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == MP_ENV  # set for the start only


def test_a_folder_of_another_architecture_is_refused(engine, tmp_path):
    import json

    config = json.loads((Path(model_path(SMOKE)) / "config.json").read_text()) | {"hidden_size": 128}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="hidden_size"):
        engine.load_weights(str(tmp_path))
    assert "weight_swaps" not in engine.stats.extra


def test_grpo_rollouts_from_the_engine_follow_the_policy_and_train(engine, tmp_path):
    """``rollouts: engine``: the rollouts come from the policy's current weights (their log-probabilities are the
    policy's own after it changed), the same step samples the same tokens (a resumed run repeats them), and TRL
    trains on them."""
    from types import SimpleNamespace

    from hsir.grpo import EngineRollouts, grpo_report, grpo_settings, train_grpo
    from hsir.methods import get_method
    from hsir.models import load_model
    from hsir.selfimprove import Engine, load_config, load_data

    cfg = load_config("smoke", {"root": str(tmp_path), "n_unlabeled": 2, "grpo": {
        "steps": 2, "prompts_per_step": 1, "num_generations": 2, "max_completion_length": 8, "rollouts": "engine"}})
    loop_engine = Engine(cfg)
    loop_engine.gen, loop_engine.current = engine, SMOKE
    policy, tok = load_model(SMOKE, dtype="fp32", device="cpu")
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=0), processing_class=tok, model=policy,
                              accelerator=SimpleNamespace(unwrap_model=lambda m: m))
    roll = EngineRollouts(SMOKE, cfg, grpo_settings(cfg), tmp_path / "sync", resumed=False, engine=loop_engine)
    prompts = [[{"role": "user", "content": "What is 2 + 3?"}]] * 2 + [[{"role": "user", "content": "Hi"}]] * 2

    def policy_logprobs(prompt_ids, completion_ids):
        ids = torch.tensor([prompt_ids + completion_ids])
        with torch.no_grad():
            logp = torch.log_softmax(policy(ids).logits[0].float(), -1)
        return [logp[len(prompt_ids) + k - 1, t].item() for k, t in enumerate(completion_ids)]

    out = roll(prompts, trainer)
    assert roll.syncs == 0 and len(out["completion_ids"]) == 4  # step 0: the engine already holds the start weights
    assert out["prompt_ids"][0] == out["prompt_ids"][1] != out["prompt_ids"][2]
    assert out["prompt_ids"][0] == tok.apply_chat_template(prompts[0], add_generation_prompt=True, tokenize=True,
                                                           return_dict=True)["input_ids"]
    assert all(0 < len(c) <= 8 for c in out["completion_ids"]) and out["completion_ids"][0] != out["completion_ids"][1]
    assert roll(prompts, trainer)["completion_ids"] == out["completion_ids"]  # same step, same seeds
    with torch.no_grad():  # an optimizer step's worth of change, then the next step's rollouts
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(7)) * 0.05)
    trainer.state.global_step = 1
    new = roll(prompts, trainer)
    assert roll.syncs == 1 and loop_engine.current is None  # the engine holds no saved model's weights now
    for p_ids, c_ids, lps in zip(new["prompt_ids"], new["completion_ids"], new["logprobs"], strict=True):
        assert lps == pytest.approx(policy_logprobs(p_ids, c_ids), abs=1e-3)
    roll.close()
    assert not (tmp_path / "sync").exists() and engine.llm is not None  # the loop's engine stays up

    out_dir = tmp_path / "model"
    train_grpo(get_method("GRPO"), cfg, load_data(cfg), model_path(SMOKE), out_dir, engine=loop_engine)
    rep = grpo_report(out_dir)
    assert rep["settings"]["rollouts"] == "engine" and rep["steps"] == 2
    assert rep["rollout_engine"]["syncs"] == 1 and rep["rollout_engine"]["tokens"] > 0  # before step 2's rollouts
    assert all(math.isfinite(e["loss"]) and 0 < e["completions/mean_length"] <= 8 for e in rep["log"] if "reward" in e)
    loop_engine.use(SMOKE)  # back to the smoke weights for the swap test below


def test_weight_swap_matches_a_fresh_engine_and_close_frees_the_engine(engine, retrained):
    ids = engine.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    prompt, cont = ids[:4], ids[4:24]
    long_prompt = ids  # 47 tokens: one full 32-token block, which the first request below caches
    before = engine.logprobs(prompt, cont)
    first_token(engine, long_prompt)

    secs = engine.load_weights(retrained)
    after = engine.logprobs(prompt, cont)
    first_after = first_token(engine, long_prompt)
    assert 0 < secs < 10
    assert engine.model_spec == retrained
    assert engine.stats.extra["weight_swaps"][-1] == {"model_spec": retrained, "seconds": round(secs, 3)}
    assert max(abs(a - b) for a, b in zip(after, before, strict=True)) > 0.05  # the swap changed the model

    rss = rss_gib()
    engine.close()
    assert engine.llm is None and rss - rss_gib() > 1.0  # the 2 GiB KV cache is back
    assert torch.set_num_threads is torch._C.set_num_threads  # vLLM's in-process no-op is undone

    fresh = make_generator(retrained, in_process=False, **KW)  # vLLM's multiprocess mode, for coverage
    try:
        assert not fresh.in_process and engine_core_processes()
        ref = fresh.logprobs(prompt, cont)
        first_ref = first_token(fresh, long_prompt)
        fresh.load_weights(SMOKE)  # and back, in this mode
        back = fresh.logprobs(prompt, cont)
    finally:
        fresh.close()
    assert after == pytest.approx(ref, abs=1e-3)  # the tied head included
    assert first_after[0] == first_ref[0] and first_after[1] == pytest.approx(first_ref[1], abs=1e-3)  # no stale KV
    assert back == pytest.approx(before, abs=1e-3)
    assert not engine_core_processes()
