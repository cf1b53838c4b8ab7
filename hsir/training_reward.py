"""Did a baseline's training raise its own training reward? (The methods HSIR is compared with must work first.)

A baseline that does not improve on the objective it was trained for tells nothing about HSIR's variant of it, so
each trained round is checked against its own objective, on data it could not have memorised:

- **GRPO rows**: the accuracy reward, measured on fresh samples (K a prompt, seed ``cfg.seed + FRESH_SEED``, not
  the seed of the round's own samples) of the trained model and of its start model, on the D_u queries where M0's
  loop samples hold both a right and a wrong answer (``hsir.grpo.learnable_problems``: the prompts where a group of
  rollouts has an advantage at all), paired per prompt with a bootstrap interval. TRL's per-step reward log cannot
  tell: a step sees prompts_per_step × G rollouts of new prompts (16 in the embedded profile) and its mean swings
  by tens of points (README, pilot 6).
- **DPO rows**: TRL's implicit-reward margin and pair accuracy over the first and the last fifth of the steps
  logged in the first epoch: there each logged batch is new to the model when logged, so a rising margin is not
  memorisation (later epochs revisit the pairs and are left out). A round without pairs is "not measurable".

``own_reward`` caches its result as ``<method>/iter_<t>/own_reward.json`` with the digests of the reports of the models
it depends on and of the sampling settings (a retrained round, start model or M0 is measured again);
``own_reward_table`` shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hsir import sampling
from hsir.config import LoopConfig, digest
from hsir.evaluate import paired_difference
from hsir.grpo import start_key
from hsir.loopdata import load_data
from hsir.methods import get_method
from hsir.runs import file_digest, read_json, write_json

FRESH_SEED = 1  # fresh samples' seed: the round's seed + 1 (README pilot 6 drew seed 0's this way)
DPO_KEYS = ("rewards/margins", "rewards/accuracies")


def dpo_reward_trend(log: Sequence[dict]) -> dict:
    """TRL's DPO reward margin and pair accuracy, averaged over the first and the last fifth of the steps logged in
    the first epoch (TRL's ``epoch`` ≤ 1); with no such step (a round without pairs), ``logged_steps`` is 0."""
    steps = [e for e in log if all(k in e for k in DPO_KEYS) and e.get("epoch", 0.0) <= 1.0 + 1e-9]
    if not steps:
        nan = float("nan")
        return {"kind": "dpo", "logged_steps": 0, "window": 0, "margin_first": nan, "margin_last": nan,
                "accuracy_first": nan, "accuracy_last": nan}
    k = max(1, len(steps) // 5)
    mean = lambda rows, key: sum(e[key] for e in rows) / len(rows)
    return {"kind": "dpo", "logged_steps": len(steps), "window": k,
            "margin_first": mean(steps[:k], "rewards/margins"), "margin_last": mean(steps[-k:], "rewards/margins"),
            "accuracy_first": mean(steps[:k], "rewards/accuracies"),
            "accuracy_last": mean(steps[-k:], "rewards/accuracies")}


def rates(rows: Sequence[dict]) -> dict[str, float]:
    """Each prompt's share of correct samples (qid -> rate)."""
    by: dict[str, list[bool]] = {}
    for r in rows:
        by.setdefault(str(r["qid"]), []).append(bool(r["correct"]))
    return {q: sum(v) / len(v) for q, v in by.items()}


def grpo_reward_gain(cfg: LoopConfig, start: str, trained: str, engine=None) -> dict:
    """Fresh samples of the ``trained`` model and its ``start`` model (model keys: ``m0``, ``<method>/iter_<t>``) on
    M0's learnable D_u queries (module docstring); with none, the reward's change is NaN. ``engine``: the loop's
    (else one is started and closed)."""
    from hsir.completions import SamplingConfig

    if engine is None:
        from hsir.generate import Engine

        own = Engine(cfg)
        try:
            return grpo_reward_gain(cfg, start, trained, own)
        finally:
            own.close()
    data = load_data(cfg)
    problems = sampling.m0_learnable(cfg, data, engine)
    fresh = replace(cfg, seed=cfg.seed + FRESH_SEED)
    result = {"kind": "grpo", "prompts": len(problems), "samples_per_prompt": cfg.K, "seed": fresh.seed,
              "start_model": str(sampling.model_dir(cfg, start))}
    if not problems:  # M0 never (or always) right: no prompt can show a change; said in the table, not an error
        nan = float("nan")
        return result | {"start": nan, "trained": nan, "diff": nan, "diff_ci95": [nan, nan]}
    scfg = SamplingConfig(n=cfg.K, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=fresh.seed)
    spec = sampling.sampling_spec(fresh, data) | {"sampling": "own_reward", "n": cfg.K,
                                                  "temperature": cfg.temperature,
                                                  "qids": digest([p.qid for p in problems])}
    got = {}
    for role, key in (("start", start), ("trained", trained)):
        gen = engine.use(str(sampling.model_dir(cfg, key)))
        out = sampling.generations_path(cfg, key, "own-reward", spec)
        reqs = sampling.task_requests(data.task, problems, gen.tokenizer)
        got[role] = rates(sampling.generate_rows(data.task, reqs, gen, scfg, out))
    d = paired_difference(got["trained"], got["start"], seed=cfg.seed)
    return result | {"start": sum(got["start"].values()) / len(problems),
                     "trained": sum(got["trained"].values()) / len(problems), "diff": d["diff"],
                     "diff_ci95": d["diff_ci95"]}


def own_reward(name: str, cfg: LoopConfig, engine=None, iteration: int = 1) -> dict:
    """Round ``iteration`` of method ``name`` against its own training objective (module docstring); cached in the
    round's ``own_reward.json``. ``engine``: the loop's, for GRPO rows' fresh samples (else one is started)."""
    method = get_method(name)
    if method.trainer not in ("dpo", "grpo"):
        raise ValueError(f"{name}: own_reward checks DPO and GRPO rounds (their training reward); {name} trains "
                         f"with {method.trainer}")
    folder = cfg.run_root / "methods" / name / f"iter_{iteration}"
    model, cached = folder / "model", folder / "own_reward.json"
    report = model / f"{method.trainer}.json"
    if not report.exists():
        raise FileNotFoundError(f"{name} round {iteration} has no trained model ({report}): run the method first")
    made, start = read_json(report), start_key(method)
    # what the result depends on: the trained model, and for a GRPO row its start model (as the loop chose it, not
    # a recorded path), M0 (whose samples pick the prompts) and the sampling settings
    models = {"model": file_digest(report)}
    if method.trainer == "grpo":
        models |= {key: file_digest(r) for key, r in (("start", sampling.model_report(cfg, start)),
                                                      ("m0", sampling.model_report(cfg, "m0"))) if r is not None}
        models["sampling"] = digest([cfg.K, cfg.temperature, cfg.max_new_tokens, cfg.n_unlabeled, cfg.seed, FRESH_SEED])
    if cached.exists() and (old := read_json(cached)).get("models") == models:
        return old
    if method.trainer == "dpo":
        result = dpo_reward_trend(made.get("log") or [])
    else:
        result = grpo_reward_gain(cfg, start, f"{name}/iter_{iteration}", engine)
    result["models"] = models
    write_json(cached, result)
    return result


def own_reward_table(cfg: LoopConfig, names: Sequence[str], engine=None, iteration: int = 1):
    """One row per method: its own training reward before and after (``own_reward``), in points. ``engine``: shared
    by the GRPO rows' fresh samples (else each row that samples starts one)."""
    import pandas as pd

    rows = []
    for name in names:
        r = own_reward(name, cfg, engine, iteration)
        if r["kind"] == "dpo" and not r["logged_steps"]:
            rows.append({"method": name, "reward": "DPO margin: no step logged (a round without pairs)",
                         "before": None, "after": None, "change (pts)": "not measurable"})
        elif r["kind"] == "grpo" and not r["prompts"]:
            rows.append({"method": name, "reward": "accuracy, fresh samples: no D_u query where M0's samples hold a "
                                                   "right and a wrong answer", "before": None, "after": None,
                         "change (pts)": "not measurable"})
        elif r["kind"] == "grpo":
            lo, hi = r["diff_ci95"]
            rows.append({"method": name, "reward": f"accuracy, fresh samples on {r['prompts']} learnable prompts",
                         "before": round(100 * r["start"], 1), "after": round(100 * r["trained"], 1),
                         "change (pts)": f"{100 * r['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"})
        else:
            rows.append({"method": name, "reward": f"DPO margin (pair accuracy %), first / last {r['window']} of "
                                                   f"{r['logged_steps']} logged steps",
                         "before": f"{r['margin_first']:.3f} ({100 * r['accuracy_first']:.0f})",
                         "after": f"{r['margin_last']:.3f} ({100 * r['accuracy_last']:.0f})",
                         "change (pts)": f"{100 * (r['accuracy_last'] - r['accuracy_first']):+.1f}"})
    return pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()
