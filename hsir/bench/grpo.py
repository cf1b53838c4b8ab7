"""``python -m hsir.bench grpo``: where an embedded GRPO step's time goes, rollout backends side by side in one run.

Each configuration trains H-GRPO (accuracy + format + 0.2 × InDiv, the embedded profile's GRPO settings) for
``steps`` optimizer steps from the same start model (M0 when ``runs/embedded/m0`` holds one, else the base model),
in a process of its own, with one rollout backend: TRL's own transformers generation, or the kit's vLLM engine
through TRL's ``rollout_func`` (``hsir.grpo.EngineRollouts``), the latter also as the kit ran before (fp32 weights,
SDPA, TRL's padded passes: ``engine-before``) and with padded passes alone (``engine-padded``). Per configuration:
seconds per step (TRL's ``step_time``; the first step, warm-up, left out) and its split into rollout, rewards,
scoring and update (``hsir.grpo.phase_split``, medians), rollout tokens per step, the InDiv reward's seconds per
step and its share of the rest of the step (the issue's "adds ≤ 25%"), the engine's start, weight syncs and
generation seconds, peak resident memory. Ratios mean something only between configurations of the same run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hsir.bench.common import TreeMemory, machine
from hsir.config import load_config
from hsir.loopdata import load_data
from hsir.methods import get_method

GRPO_CONFIGS = {
    "transformers": {"rollouts": "transformers"},
    # the kit before: fp32 weights (bf16 autocast), the model's own attention (SDPA), TRL's padded passes
    "engine-before": {"rollouts": "engine", "weights": "fp32", "attn_implementation": None, "row_passes": False},
    "engine-padded": {"rollouts": "engine", "row_passes": False},  # the default's precision, TRL's padded passes
    "engine": {"rollouts": "engine"},  # the default
}


def start_model(profile: str = "embedded") -> str:
    cfg = load_config(profile)
    m0 = cfg.run_root / "m0"
    return str(m0) if (m0 / "model.safetensors").exists() else cfg.model


def one_grpo(overrides: dict, profile: str, start: str, steps: int) -> dict:
    from hsir.grpo import grpo_report, phase_split, train_grpo

    with TreeMemory() as mem, tempfile.TemporaryDirectory() as tmp:
        base = load_config(profile)
        cfg = load_config(profile, {"root": tmp, "grpo": base.grpo | overrides | {"steps": steps, "save_every": 10**6}})
        t0 = time.perf_counter()
        rep = grpo_report(train_grpo(get_method("H-GRPO"), cfg, load_data(cfg), start, Path(tmp) / "model"))
        total = time.perf_counter() - t0
    logged = [e for e in rep["log"] if "reward" in e]
    timed = logged[1:] or logged
    step = statistics.median(e["step_time"] for e in timed)
    splits = [phase_split(e) for e in timed]
    split = ({k: round(statistics.median(sp[k] for sp in splits), 2) for k in splits[0]}
             if splits and None not in splits else None)
    indiv = statistics.median(e.get("indiv/seconds", 0.0) for e in timed)
    per_step = rep["trl_batch"]["generation_batch_size"]
    tokens = statistics.median(e["completions/mean_length"] * per_step for e in timed)
    return {"rollouts": rep["settings"]["rollouts"], "steps": rep["steps"], "start": start,
            "settings": {k: rep["settings"][k] for k in ("weights", "attn_implementation", "row_passes", "bf16")},
            "step_seconds": [round(e["step_time"], 2) for e in logged], "seconds_per_step": round(step, 2),
            "split_seconds": split,
            "rollout_tokens_per_step": round(tokens, 1), "tokens_per_step_second": round(tokens / step, 1),
            "indiv_seconds_per_step": round(indiv, 2), "indiv_adds": round(indiv / max(step - indiv, 1e-9), 3),
            "rollout_engine": rep.get("rollout_engine"), "train_seconds": rep["seconds"],
            "total_seconds": round(total, 1), "peak_rss_gib": mem.peak_gib,
            "rewards": {k: round(statistics.mean(e[k] for e in logged), 4)
                        for k in logged[0] if k.startswith("rewards/") and k.endswith("/mean")}}


def grpo_bench(profile: str = "embedded", steps: int = 3, only: list[str] | None = None) -> dict:
    start = start_model(profile)
    results = {}
    for name, overrides in GRPO_CONFIGS.items():
        if only and name not in only:
            continue
        print(f"[bench] grpo {name} from {start} ...", flush=True)
        cmd = [sys.executable, "-m", "hsir.bench.grpo", json.dumps(overrides), profile, start, str(steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            results[name] = {**overrides, "error": (proc.stderr or proc.stdout).strip().splitlines()[-3:]}
        else:
            results[name] = json.loads(lines[-1])
        print(f"[bench] {name}: {results[name]}", flush=True)
    ok = {k: v for k, v in results.items() if "error" not in v}

    def speedup(slow: str, fast: str) -> float | None:
        both = {slow, fast} <= ok.keys()
        return round(ok[slow]["seconds_per_step"] / ok[fast]["seconds_per_step"], 2) if both else None

    return {"bench": "grpo", "profile": profile, "start": start, "steps": steps, "method": "H-GRPO",
            "workload": "H-GRPO steps of the profile's GRPO settings (prompts_per_step × G rollouts a step)",
            "configs": results, "engine_vs_transformers_step_speedup": speedup("transformers", "engine"),
            "default_vs_before_step_speedup": speedup("engine-before", "engine"),
            "fastest": min(ok, key=lambda k: ok[k]["seconds_per_step"]) if ok else None,
            "machine": machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


if __name__ == "__main__":  # one configuration, in its own process: overrides profile start steps
    print(json.dumps(one_grpo(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))))
