"""A baseline's own training reward before and after (hsir.training_reward): the DPO trend from a constructed log,
and a GRPO round of the smoke profile measured on fresh samples, cached."""

import pytest

from hsir.runs import read_json, write_json
from hsir.selfimprove import load_config
from hsir.training_reward import dpo_reward_trend, model_key, own_reward, own_reward_table, rates


def step(margin: float, acc: float, n: int) -> dict:
    return {"step": n, "rewards/margins": margin, "rewards/accuracies": acc, "loss": 0.6}


def test_dpo_trend_compares_the_first_and_last_fifth_of_the_logged_steps(tmp_path):
    log = [step(0.1 * i, 0.5 + 0.04 * i, 5 * i) for i in range(10)] + [{"train_loss": 0.5, "step": 50}]
    t = dpo_reward_trend(log)
    assert t["logged_steps"] == 10 and t["window"] == 2
    assert t["margin_first"] == pytest.approx(0.05) and t["margin_last"] == pytest.approx(0.85)
    assert t["accuracy_first"] == pytest.approx(0.52) and t["accuracy_last"] == pytest.approx(0.84)
    with pytest.raises(ValueError, match="rewards/margins"):
        dpo_reward_trend([{"loss": 1.0}])
    # through own_reward: read from the round's dpo.json, cached beside it, shown as a table row
    cfg = load_config("smoke", {"root": str(tmp_path)})
    model = cfg.run_root / "methods" / "IRPO" / "iter_1" / "model"
    write_json(model / "dpo.json", {"log": log})
    assert own_reward("IRPO", cfg) == t | {"kind": "dpo"}
    assert read_json(model.parent / "own_reward.json")["margin_last"] == pytest.approx(0.85)
    row = own_reward_table(cfg, ["IRPO"]).loc["IRPO"]
    assert row["before"] == "0.050 (52)" and row["after"] == "0.850 (84)" and row["change (pts)"] == "+32.0"
    with pytest.raises(ValueError, match="ReST-EM.*sft"):
        own_reward("ReST-EM", cfg)


def test_rates_and_model_keys(tmp_path):
    assert rates([{"qid": "a", "correct": True}, {"qid": "a", "correct": False}, {"qid": 7, "correct": True}]) == {
        "a": 0.5, "7": 1.0}
    cfg = load_config("smoke", {"root": str(tmp_path)})
    assert model_key(cfg, cfg.run_root / "m0") == "m0"
    assert model_key(cfg, cfg.run_root / "methods" / "GRPO" / "iter_1" / "model") == "GRPO/iter_1"
    with pytest.raises(ValueError, match="neither this run's M0"):
        model_key(cfg, tmp_path / "elsewhere")


def test_a_grpo_round_is_measured_on_fresh_samples_of_m0s_learnable_prompts(tmp_path, monkeypatch):
    pytest.importorskip("trl")
    import hsir.sampling as sampling
    from hsir.loopdata import load_data
    from hsir.selfimprove import run_method

    cfg = load_config("smoke", {"root": str(tmp_path), "n_unlabeled": 2, "grpo": {
        "steps": 1, "prompts_per_step": 1, "num_generations": 2, "max_completion_length": 10, "lr": 1e-4,
        "rollouts": "transformers"}})
    run_method("GRPO", cfg)
    first = load_data(cfg).unlabeled[0].qid
    real = sampling.sample_model

    def m0_samples(cfg_, data, engine, model, key, K):  # M0's loop samples: the first query is learnable
        assert key == "m0" and K == cfg.K
        return [{"qid": first, "correct": True}, {"qid": first, "correct": False}]

    monkeypatch.setattr(sampling, "sample_model", m0_samples)
    r = own_reward("GRPO", cfg)
    assert r["kind"] == "grpo" and r["prompts"] == 1 and r["samples_per_prompt"] == cfg.K
    assert r["seed"] == cfg.seed + 10_000 and r["start_model"] == str(cfg.run_root / "m0")
    assert 0.0 <= r["start"] <= 1.0 and 0.0 <= r["trained"] <= 1.0
    assert r["diff"] == pytest.approx(r["trained"] - r["start"])
    cache = cfg.run_root / "generations"
    assert len(list((cache / "m0").glob("own-reward-*.jsonl"))) == 1
    assert len(list((cache / "GRPO" / "iter_1").glob("own-reward-*.jsonl"))) == 1
    # cached: a second call neither samples nor needs an engine
    monkeypatch.setattr(sampling, "sample_model", real)
    assert own_reward("GRPO", cfg, engine=object()) == r
    # M0 never right: nothing to measure, said in the table instead of failing the notebook
    (cfg.run_root / "methods" / "GRPO" / "iter_1" / "own_reward.json").unlink()
    monkeypatch.setattr(sampling, "sample_model", lambda *a: [{"qid": first, "correct": False}])
    row = own_reward_table(cfg, ["GRPO"]).loc["GRPO"]
    assert row["change (pts)"] == "not measurable" and "no D_u query" in row["reward"]
