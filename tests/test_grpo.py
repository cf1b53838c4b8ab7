"""GRPO on the smoke model (hsir.grpo): a few real TRL steps with every reward, resume after a kill, the TRL batch
mapping, and bad settings that fail at once, naming the key."""

import math

import pytest
import torch
from safetensors.torch import load_file

from hsir import grpo as grpo_module
from hsir.grpo import (
    GRPOSettings,
    build_rewards,
    grpo_args,
    grpo_dataset,
    grpo_report,
    grpo_settings,
    learnable_problems,
    ledger_entry,
    phase_split,
    score_rows_unpadded,
    train_grpo,
    training_curves,
)
from hsir.methods import METHODS, Method, get_method
from hsir.selfimprove import load_config, load_data

pytest.importorskip("trl")

ALL_REWARDS = (("accuracy", 1.0), ("format", 1.0), ("long2short", 1.0), ("cosine", 1.0), ("indiv", 0.2))
# TRL's own generation: no vLLM engine start per test (tests/test_vllm_smoke.py trains with rollouts: engine)
TINY = {"prompts_per_step": 1, "num_generations": 2, "max_completion_length": 10, "lr": 1e-4, "rollouts": "transformers"}


def tiny_cfg(tmp_path, loop: dict | None = None, **grpo):
    return load_config("smoke", {"root": str(tmp_path), "n_unlabeled": 2, "grpo": TINY | grpo} | (loop or {}))


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny model gains nothing from threads, and on a busy 2-core box they wait on each other (3x slower)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def start_model() -> str:
    from hsir.models import model_path

    return model_path("smoke:tiny-llama")


def steps_of(log) -> list[dict]:
    return [e for e in log if "reward" in e]


def test_every_reward_trains_and_logs_finite_values(tmp_path):
    # the token-level InDiv variant scores every rollout of the random model (the step-level one needs two steps),
    # so the group's rewards differ and the policy moves
    cfg = tiny_cfg(tmp_path, {"indiv_variant": "token/self-max (default)"}, steps=2, save_every=5)
    method = Method("all-rewards", "test", sampling="none", select="none", trainer="grpo", init="m0",
                    iterative=False, rewards=ALL_REWARDS)
    out = tmp_path / "methods" / "all-rewards" / "iter_1" / "model"
    assert train_grpo(method, cfg, load_data(cfg), start_model(), out) == out
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert not (out.parent / "model.checkpoints").exists()
    rep = grpo_report(out)
    assert rep["steps"] == 2 and rep["rewards"] == [list(r) for r in ALL_REWARDS]
    assert rep["trl_batch"] == {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                                "generation_batch_size": 2, "num_processes": 1}
    assert rep["settings"]["rollouts"] == "transformers" and rep["settings"]["loss_type"] == "dapo"
    assert rep["settings"]["beta"] == 0.04 and rep["settings"]["epsilon"] == 0.2
    assert rep["indiv_calls"] == 2 and rep["indiv_seconds"] > 0 and rep["indiv_seconds_logged"] > 0
    steps = steps_of(rep["log"])
    assert [e["step"] for e in steps] == [1, 2]
    for e in steps:
        for key in ["loss", "reward", "kl", "completions/mean_length"] + [f"rewards/{n}/mean" for n, _ in ALL_REWARDS]:
            assert isinstance(e[key], (int, float)) and math.isfinite(e[key]), (key, e)
        assert 0 < e["completions/mean_length"] <= 10
    assert any(e["reward_std"] > 0 for e in steps) and any(e["rewards/indiv/mean"] > 0 for e in steps)
    for e in steps:  # each step's time, split into its phases (hsir.grpo.time_phases)
        split = phase_split(e)
        assert split["rollout"] > 0 and split["rewards"] > 0 and split["update"] > 0 and split["scoring"] >= 0
        assert split["rollout"] + split["rewards"] + split["scoring"] + split["update"] == pytest.approx(e["step_time"])
    before, after = load_file(f"{start_model()}/model.safetensors"), load_file(out / "model.safetensors")
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    assert ledger_entry(out) == {"steps": 2, "tokens": round(sum(e["completions/mean_length"] * 2 for e in steps)),
                                 "indiv_seconds": rep["indiv_seconds_logged"]}
    curves = training_curves(tmp_path, ["all-rewards", "never-ran"])
    assert list(curves["step"]) == [1, 2] and set(curves["method"]) == {"all-rewards"}
    assert {"reward", "completion_length", "kl", "reward/indiv", "reward/cosine"} <= set(curves.columns)
    # a finished model is reused, not retrained
    stamp = (out / "grpo.json").stat().st_mtime_ns
    train_grpo(method, cfg, load_data(cfg), start_model(), out)
    assert (out / "grpo.json").stat().st_mtime_ns == stamp


def test_row_passes_score_what_padded_passes_score(tmp_path):
    """One pass per rollout cut to its tokens gives TRL's padded log-probabilities and entropies at every completion
    position, and gradients flow through it."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from hsir.models import load_model

    model, tok = load_model(start_model(), dtype="fp32", device="cpu")
    args = grpo_args(GRPOSettings(**TINY, seed=0, bf16=False), tmp_path, [1.0])

    def zero(completions, **kw):
        return [0.0] * len(completions)

    trainer = GRPOTrainer(model=model, reward_funcs=[zero], args=args, processing_class=tok,
                          train_dataset=Dataset.from_list([{"prompt": "2 + 2 ="}]))
    torch.manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (3, 10))
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1],  # a short prompt (left-padded), a full completion
                         [1, 1, 1, 1, 1, 1, 1, 1, 0, 0],  # the longest prompt, a short completion
                         [0, 1, 1, 1, 1, 1, 1, 0, 0, 0]])
    padded = trainer._get_per_token_logps_and_entropies(model, ids, mask, 4, compute_entropy=True)
    score_rows_unpadded(trainer)
    rows = trainer._get_per_token_logps_and_entropies(model, ids, mask, 4, compute_entropy=True)
    keep = mask[:, -4:].bool()
    assert rows[0].shape == padded[0].shape == (3, 4) and rows[1].shape == (3, 4)
    assert torch.allclose(rows[0][keep], padded[0][keep], atol=1e-4)
    assert torch.allclose(rows[1][keep], padded[1][keep], atol=1e-4)
    assert not torch.allclose(rows[0][keep], padded[0][keep].roll(1), atol=1e-4)  # the comparison can fail
    rows[0][keep].sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bf16_passes_train_and_save_fp32_masters(tmp_path, monkeypatch):
    """``weights: bf16``: the passes on bf16 weights, the optimizer on fp32 masters, and the saved model is the
    masters (not their bf16 rounding)."""
    cfg = tiny_cfg(tmp_path, {"indiv_variant": "token/self-max (default)"}, steps=2, weights="bf16")  # rewards that move it
    method = Method("all-rewards", "test", sampling="none", select="none", trainer="grpo", init="m0",
                    iterative=False, rewards=ALL_REWARDS)
    out = tmp_path / "model"
    calls = []

    def counted(trainer):  # the run's passes go through the row-wise scorer
        score_rows_unpadded(trainer)
        inner = trainer._get_per_token_logps_and_entropies
        trainer._get_per_token_logps_and_entropies = lambda *a, **kw: calls.append(a[1].shape) or inner(*a, **kw)

    monkeypatch.setattr(grpo_module, "score_rows_unpadded", counted)
    train_grpo(method, cfg, load_data(cfg), start_model(), out)
    rep = grpo_report(out)
    assert rep["settings"]["weights"] == "bf16" and rep["settings"]["row_passes"] is True
    assert len(calls) >= 4  # per step: the reference's scoring and the policy's loss
    after = load_file(out / "model.safetensors")
    assert all(t.dtype == torch.float32 for t in after.values())
    assert any(not torch.equal(t, t.bfloat16().float()) for t in after.values())
    before = load_file(f"{start_model()}/model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="weights"):
        GRPOSettings(dtype="bf16", weights="fp32")


class Kill(Exception):
    pass


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    from transformers import TrainerCallback

    class KillAt2(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 2:
                raise Kill("killed at step 2")

    cfg = tiny_cfg(tmp_path, steps=3, save_every=1)
    method, data = get_method("H-GRPO"), load_data(cfg)
    out = tmp_path / "model"
    with pytest.raises(Kill):
        train_grpo(method, cfg, data, start_model(), out, callbacks=[KillAt2()])
    assert not out.exists()
    assert [p.name for p in (tmp_path / "model.checkpoints").glob("checkpoint-*")] == ["checkpoint-1"]
    train_grpo(method, cfg, data, start_model(), out)
    rep = grpo_report(out)
    assert rep["steps"] == 3 and rep["resumed_from"].endswith("checkpoint-1")
    assert [e["step"] for e in steps_of(rep["log"])] == [1, 2, 3]  # step 1's log came back with the checkpoint
    assert rep["indiv_calls"] == 2  # this session generated twice (steps 2 and 3)
    assert not (tmp_path / "model.checkpoints").exists()


def test_unknown_grpo_setting_fails_naming_it(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="bogus_knob"):
        cfg = load_config("smoke", {"root": str(tmp_path), "grpo": {"bogus_knob": 1}})
        train_grpo(get_method("GRPO"), cfg, None, start_model(), tmp_path / "model")
    assert not (tmp_path / "model").exists()
    with pytest.raises(ValueError, match="rollouts"):
        GRPOSettings(rollouts="sglang")
    two = tiny_cfg(tmp_path, prompts_per_step=2, rollouts="engine")
    with monkeypatch.context() as m, pytest.raises(ValueError, match="one process"):
        m.setenv("WORLD_SIZE", "2")
        train_grpo(get_method("GRPO"), two, load_data(two), start_model(), tmp_path / "model")
    with pytest.raises(ValueError, match="prompts_per_micro_batch"):
        GRPOSettings(prompts_per_step=14, prompts_per_micro_batch=4)
    with pytest.raises(ValueError, match="prompts 'hard' unknown"):
        GRPOSettings(prompts="hard")


def test_learnable_prompts_are_the_queries_m0_both_solves_and_fails():
    from hsir.tasks import Problem

    problems = [Problem(qid=q, question=f"q{q}", answer="1") for q in ("a", "b", "c", "d")]
    samples = [{"qid": "a", "correct": False}, {"qid": "a", "correct": False},  # never solved: no advantage
               {"qid": "b", "correct": True}, {"qid": "b", "correct": False},  # learnable
               {"qid": "c", "correct": True}, {"qid": "c", "correct": True},  # always solved: no advantage
               {"qid": "d", "correct": False}, {"qid": "d", "correct": True}]  # learnable
    assert [p.qid for p in learnable_problems(problems, samples)] == ["b", "d"]
    assert learnable_problems(problems[:1], samples) == []  # a query without samples is not learnable either


def test_paper_batch_maps_onto_trl(tmp_path):
    s = GRPOSettings(max_completion_length=2048, seed=0, bf16=False)  # the paper's defaults
    assert (s.steps, s.lr, s.prompts_per_step, s.num_generations) == (300, 1e-6, 14, 8)
    args = grpo_args(s, tmp_path, [1.0, 1.0, 0.2])
    assert args.per_device_train_batch_size == 8 and args.gradient_accumulation_steps == 14
    assert args.generation_batch_size == 112 and args.steps_per_generation == 14  # one generation per step
    assert (args.max_steps, args.learning_rate, args.beta, args.epsilon, args.loss_type) == (300, 1e-6, 0.04, 0.2, "dapo")
    assert args.use_vllm is False and args.logging_steps == 1 and args.reward_weights == [1.0, 1.0, 0.2]
    two = GRPOSettings(prompts_per_step=14, prompts_per_micro_batch=7).trl_batch(num_processes=2)
    assert two == {"per_device_train_batch_size": 56, "gradient_accumulation_steps": 1, "generation_batch_size": 112,
                   "num_processes": 2}
    # the loop's settings fill what a profile leaves out
    cfg = load_config("smoke", {"root": str(tmp_path), "grpo": {}, "max_new_tokens": 12, "seed": 3})
    assert (grpo_settings(cfg).max_completion_length, grpo_settings(cfg).seed) == (12, 3)


def test_every_grpo_method_builds_its_rewards(tmp_path, smoke_model):
    """Each GRPO entry of the methods table gives TRL reward objects with its weights, and they score a group."""
    model, tok = smoke_model
    cfg = tiny_cfg(tmp_path, max_completion_length=64)
    data = load_data(cfg)
    row = grpo_dataset(data.task, data.unlabeled[:1])[0]
    gold = f"<think>\nIt is {row['answer']}.\n</think>\n<answer>\n{row['answer']}\n</answer>"
    completions = [[{"role": "assistant", "content": gold}], [{"role": "assistant", "content": "no idea"}]]
    grpo_methods = [m for m in METHODS.values() if m.trainer == "grpo"]
    assert {m.name for m in grpo_methods} == {"GRPO", "GRPO+Long2Short", "GRPO+CosFn", "H-GRPO", "HSIR-SFT+H-GRPO"}
    for m in grpo_methods:
        rewards, weights = build_rewards(m, cfg, grpo_settings(cfg), data.task, model, tok)
        assert [r.__name__ for r in rewards] == [n for n, _ in m.rewards] and weights == [w for _, w in m.rewards]
        for r in rewards:
            ids = [tok(completions[i][0]["content"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                   for i in range(2)]
            got = r(prompts=[row["prompt"]] * 2, completions=completions, completion_ids=ids,
                    answer=[row["answer"]] * 2, qid=[row["qid"]] * 2)
            assert len(got) == 2 and all(math.isfinite(x) for x in got), (m.name, r.__name__, got)
            if r.__name__ == "accuracy":
                assert got == [1.0, 0.0]


def test_the_loop_runs_a_grpo_round_from_m0(tmp_path):
    """``run_method`` on a GRPO entry: M0 built, GRPO trained from it (rollouts as the profile says), evaluated."""
    from hsir.results import results_table
    from hsir.selfimprove import run_method

    cfg = tiny_cfg(tmp_path, steps=1)
    [result] = run_method("GRPO", cfg)
    folder = cfg.run_root / "methods" / "GRPO" / "iter_1"
    rep = grpo_report(folder / "model")
    assert rep["start"] == str(cfg.run_root / "m0") and rep["steps"] == 1
    assert rep["settings"]["rollouts"] == "transformers" and rep["rollout_engine"] is None
    assert result["iteration"] == 1 and (folder / "metrics.json").exists()
    [row] = results_table(cfg, ["GRPO"], paper="5", tokens_vs="GRPO").to_dict("records")
    assert row["grpo steps"] == 1 and row["rollout tokens"] > 0 and row["tokens vs GRPO (%)"] == 0.0
    assert row["paper GSM8K (1.5B)"] == 73.08 and row["paper overall tokens"] == 974  # the paper's Table 5


def test_learnable_prompts_train_on_m0s_mixed_queries_only(tmp_path, monkeypatch):
    """``prompts: learnable``: the loop asks for M0's K samples and GRPO sees only the queries they both solve and
    fail; none such is an error that names the setting, before any training."""
    import hsir.sampling as sampling
    import hsir.selfimprove as loop

    cfg = tiny_cfg(tmp_path, steps=1, prompts="learnable")
    data = load_data(cfg)
    first = data.unlabeled[0].qid
    asked = []

    def m0_samples(cfg_, data_, engine, model, key, K):
        asked.append((key, K, model))
        return [{"qid": first, "correct": True}, {"qid": first, "correct": False}]

    monkeypatch.setattr(sampling, "sample_model", m0_samples)
    loop.run_method("GRPO", cfg)
    assert asked == [("m0", cfg.K, str(cfg.run_root / "m0"))]
    assert grpo_report(cfg.run_root / "methods" / "GRPO" / "iter_1" / "model")["prompts"] == 1

    none = tiny_cfg(tmp_path / "none", steps=1, prompts="learnable")
    monkeypatch.setattr(sampling, "sample_model", lambda *a: [{"qid": first, "correct": False}])
    with pytest.raises(RuntimeError, match="prompts 'learnable'.*use prompts: all"):
        loop.run_method("GRPO", none)
    assert not (none.run_root / "methods" / "GRPO" / "iter_1" / "model").exists()
