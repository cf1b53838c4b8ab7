"""A baseline's own training reward before and after (hsir.training_reward): the DPO trend from a constructed log,
and a GRPO round of the smoke profile measured on fresh samples, cached."""

import pytest

from hsir.grpo import start_key
from hsir.methods import get_method
from hsir.runs import read_json, write_json
from hsir.sampling import model_dir
from hsir.selfimprove import load_config
from hsir.training_reward import dpo_reward_trend, own_reward, own_reward_table, rates


def step(margin: float, acc: float, n: int) -> dict:
    return {"step": n, "rewards/margins": margin, "rewards/accuracies": acc, "loss": 0.6}


def test_dpo_trend_compares_the_first_and_last_fifth_of_the_first_epoch(tmp_path):
    log = [step(0.1 * i, 0.5 + 0.04 * i, 5 * i) | {"epoch": 0.1 * (i + 1)} for i in range(10)]
    log += [step(9.0, 1.0, 55) | {"epoch": 1.1}, {"train_loss": 0.5, "step": 60}]  # a second epoch: left out
    t = dpo_reward_trend(log)
    assert t["logged_steps"] == 10 and t["window"] == 2
    assert t["margin_first"] == pytest.approx(0.05) and t["margin_last"] == pytest.approx(0.85)
    assert t["accuracy_first"] == pytest.approx(0.52) and t["accuracy_last"] == pytest.approx(0.84)
    assert dpo_reward_trend([{"loss": 1.0}])["logged_steps"] == 0
    # through own_reward: read from the round's dpo.json, cached beside it with the report's digest, a table row
    cfg = load_config("smoke", {"root": str(tmp_path)})
    model = cfg.run_root / "methods" / "IRPO" / "iter_1" / "model"
    write_json(model / "dpo.json", {"log": log})
    r = own_reward("IRPO", cfg)
    assert {k: v for k, v in r.items() if k != "models"} == t and set(r["models"]) == {"model"}
    assert read_json(model.parent / "own_reward.json") == r
    row = own_reward_table(cfg, ["IRPO"]).loc["IRPO"]
    assert row["before"] == "0.050 (52)" and row["after"] == "0.850 (84)" and row["change (pts)"] == "+32.0"
    # the round retrained without pairs (its model is M_{t-1}, no log): measured again, and not measurable
    write_json(model / "dpo.json", {"rows": 0, "steps": 0, "unchanged": True})
    assert own_reward_table(cfg, ["IRPO"]).loc["IRPO", "change (pts)"] == "not measurable"
    with pytest.raises(ValueError, match="ReST-EM.*sft"):
        own_reward("ReST-EM", cfg)
    with pytest.raises(FileNotFoundError, match="HSIR-DPO round 1 has no trained model"):
        own_reward("HSIR-DPO", cfg)


def test_rates_model_folders_and_start_keys(tmp_path):
    assert rates([{"qid": "a", "correct": True}, {"qid": "a", "correct": False}, {"qid": 7, "correct": True}]) == {
        "a": 0.5, "7": 1.0}
    cfg = load_config("smoke", {"root": str(tmp_path)})
    assert model_dir(cfg, "m0") == cfg.run_root / "m0"
    assert model_dir(cfg, "GRPO/iter_1") == cfg.run_root / "methods" / "GRPO" / "iter_1" / "model"
    assert start_key(get_method("GRPO")) == "m0"  # GRPO rows start from M0, Table 7's from HSIR-SFT's first round
    assert start_key(get_method("HSIR-SFT+H-GRPO")) == "HSIR-SFT/iter_1"


class ScriptedGen:
    """Answers each prompt with the prompt itself (right) or with -1 (wrong), recording the seeds it is called with."""

    backend, tokenizer = "scripted", None

    def __init__(self, right: bool, seeds: list):
        from hsir.completions import GenStats

        self.right, self.seeds, self.stats = right, seeds, GenStats()

    def generate(self, prompts, cfg):
        from hsir.completions import Completion

        self.seeds.append(cfg.seed)
        return [[Completion(f"<answer>{p if self.right else -1}</answer>", [1, 2], 2, False, "eos")] * cfg.n
                for p in prompts]


class Scripted:
    """A stand-in engine: the trained model answers every prompt right, any other model every prompt wrong."""

    def __init__(self, trained: str):
        self.trained, self.used, self.seeds = trained, [], []

    def use(self, model: str) -> ScriptedGen:
        self.used.append(model)
        return ScriptedGen(model == self.trained, self.seeds)


def test_a_grpo_round_is_measured_on_fresh_samples_of_m0s_learnable_prompts(tmp_path, monkeypatch):
    pytest.importorskip("trl")
    import hsir.sampling as sampling
    from hsir.loopdata import load_data
    from hsir.selfimprove import run_method

    cfg = load_config("smoke", {"root": str(tmp_path), "n_unlabeled": 2, "grpo": {
        "steps": 1, "prompts_per_step": 1, "num_generations": 2, "max_completion_length": 10, "lr": 1e-4,
        "rollouts": "transformers"}})
    run_method("GRPO", cfg)
    data = load_data(cfg)
    first = data.unlabeled[0]
    trained = str(cfg.run_root / "methods" / "GRPO" / "iter_1" / "model")

    def m0_samples(cfg_, data_, engine, model, key, K):  # M0's loop samples: only the first query is learnable
        assert key == "m0" and K == cfg.K and cfg_.seed == cfg.seed
        return [{"qid": first.qid, "correct": True}, {"qid": first.qid, "correct": False}]

    # the scripted generators answer with the prompt itself: make the task's prompt the gold answer
    monkeypatch.setattr(sampling, "sample_model", m0_samples)
    monkeypatch.setattr(sampling, "task_requests", lambda task, problems, tok: [
        sampling.Request(p, p.answer) for p in problems])
    engine = Scripted(trained)
    r = own_reward("GRPO", cfg, engine)
    assert engine.used == [str(cfg.run_root / "m0"), trained]  # start first, then the trained model
    assert engine.seeds and all(s == sampling.chunk_seed(cfg.seed + 1, 0) for s in engine.seeds)
    assert r["kind"] == "grpo" and r["prompts"] == 1 and r["samples_per_prompt"] == cfg.K
    assert (r["start"], r["trained"], r["diff"]) == (0.0, 1.0, 1.0) and r["diff_ci95"] == [1.0, 1.0]
    assert set(r["models"]) == {"model", "start", "m0", "sampling"}  # the GRPO report's, M0's, the settings' digests
    cache = cfg.run_root / "generations"
    assert len(list((cache / "m0").glob("own-reward-*.jsonl"))) == 1
    assert len(list((cache / "GRPO" / "iter_1").glob("own-reward-*.jsonl"))) == 1
    # cached: a second call neither samples nor needs an engine
    assert own_reward("GRPO", cfg, engine=object()) == r
    # M0 never right: nothing to measure, said in the table instead of failing the notebook
    (cfg.run_root / "methods" / "GRPO" / "iter_1" / "own_reward.json").unlink()
    monkeypatch.setattr(sampling, "sample_model", lambda *a: [{"qid": first.qid, "correct": False}])
    row = own_reward_table(cfg, ["GRPO"], engine).loc["GRPO"]
    assert row["change (pts)"] == "not measurable" and "no D_u query" in row["reward"]
