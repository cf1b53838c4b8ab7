"""The self-improvement loop (paper §3): any method of ``hsir.methods`` for T rounds, resumable stage by stage.

One round t of a method, each stage writing its artifact atomically under
``runs/<profile>/methods/<method>/iter_<t>/`` and skipped when it is there:

    samples.jsonl  M_{t-1} samples D_u (K per query, or as the method says), plus VeriExit's continuations or
                   the answer-driven resamples
    scores.jsonl   per correct candidate: solution length, InDiv under M_{t-1} (the profile's variant), Eq.3
    train.jsonl    the SFT rows (D_s traces + the kept candidates), each saying why it is there
    model/         M_t, trained from M (or M_{t-1}, as the method says), safetensors
    eval_<task>.jsonl, metrics.json   greedy evaluation on the test split
    summary.json   what the round kept, recovered and paid

Generations are cached per generating model under ``runs/<profile>/generations/<model>/``, keyed by their
settings: methods that sample M0 the same way (same seed) share those samples, and VeriExit's continuations and
InDiv scores, so they differ only where their definitions differ and the compute is paid once. Every model is
evaluated with the same engine, backend, dtype and batch settings, recorded in ``metrics.json``.

One engine per notebook: ``hsir.generate.Engine`` starts the generation backend once and loads each new model's
weights into it. M0 (SFT-Initial) lives in ``runs/<profile>/m0`` (``hsir.loopdata.build_m0``). A method's folder
records the method and settings that made it (``run.json``); a folder written under other settings is refused,
not silently reused.

The stages live beside the concept they serve: ``hsir.sampling`` (sample, VeriExit, answer-driven),
``hsir.scoring`` (length, InDiv, Eq.3), ``hsir.selection`` (filters, one per query, DPO pairs), ``hsir.train`` /
``hsir.grpo`` (training) and ``hsir.evaluate``. This module runs them in order, round by round; it is also what
notebooks import the loop from (``__all__``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from hsir import paper as paper_tables
from hsir.config import DPOSettings, LoopConfig, SFTSettings, load_config, parse_sets, settings_from
from hsir.evaluate import evaluate
from hsir.generate import Engine, vllm_available
from hsir.grpo import grpo_settings, ledger_entry, start_key, train_grpo
from hsir.loopdata import Data, load_data
from hsir.methods import METHODS, Method, get_method
from hsir.models import atomic_dir, load_model, load_tokenizer
from hsir.progress import say
from hsir.results import results_table, table_text
from hsir.rounds import round_result
from hsir.runs import Run, read_json, read_jsonl, write_json, write_jsonl
from hsir.sampling import m0_learnable, model_dir, sample_model, sample_stage, veriexit_report
from hsir.scoring import candidates_of, score_stage
from hsir.seeds import seed_config, seed_methods, share_m0
from hsir.selection import select_stage, train_composition
from hsir.train import build_m0, launch

# what notebooks and scripts import the loop from
__all__ = ["Engine", "LoopConfig", "build_m0", "load_config", "load_data", "run_method", "run_seeds", "sample_model",
           "veriexit_report"]


# Settings a folder may change without being another run: T (more rounds resume) and n_test, the test split's
# first n problems, which only the evaluation reads (a round evaluated on fewer is evaluated again on the new
# size, its earlier answers kept: ``run_round``).
RESUMABLE = {"T", "root", "n_test"}


def check_identity(folder: Path, method: Method, cfg: LoopConfig) -> None:
    """Refuse a method folder written by another method or other settings (but ``RESUMABLE``'s). Only
    the settings of the method's own trainer count: changing the GRPO settings leaves SFT folders valid."""
    other_trainers = {"sft", "dpo", "grpo"} - {method.trainer}
    ident = {"method": asdict(method),
             "config": {k: v for k, v in asdict(cfg).items() if k not in RESUMABLE | other_trainers}}
    ident = json.loads(json.dumps(ident, default=str))
    path = folder / "run.json"
    if path.exists():
        old = read_json(path)
        # a setting added since the folder was written counts as unchanged while it keeps its default
        defaults = json.loads(json.dumps(asdict(LoopConfig()), default=str))
        old["config"] = {k: defaults[k] for k in ident["config"] if k not in old["config"] and k in defaults} | {
            k: v for k, v in old["config"].items() if k not in RESUMABLE}  # folders from before n_test was RESUMABLE
        if old != ident:
            diff = sorted(k for k in set(old["config"]) | set(ident["config"])
                          if old["config"].get(k) != ident["config"].get(k))
            if old["method"] != ident["method"]:
                diff.insert(0, "method")
            raise RuntimeError(f"{folder} was written by another method or settings (differs in {diff}); "
                               "delete it or set another root")
        return
    write_json(path, ident)


# ------------------------------------------------------------------------------------------------ the loop

def run_method(name: str, cfg: LoopConfig, engine: Engine | None = None, log: Callable[[str], None] = say) -> list[dict]:
    """Run ``name`` for its rounds (T if iterative, else 1); returns each round's metrics (resumes on rerun)."""
    method = get_method(name)
    folder = cfg.run_root / "methods" / name
    check_identity(folder, method, cfg)
    own_engine = engine is None
    engine = engine or Engine(cfg)
    run, data = Run(folder), load_data(cfg)
    sampler, results = str(build_m0(cfg)), []
    try:
        rounds = cfg.T if method.iterative else 1
        for t in range(1, rounds + 1):
            sampler = run_round(run, method, cfg, data, engine, t, sampler, log)
            results.append(round_result(folder / f"iter_{t}") | {"method": name, "iteration": t})
    finally:
        if own_engine:
            engine.close()
    return results


def run_seeds(names: Sequence[str], cfg: LoopConfig, seeds: Sequence[int], engine=None,
              run: Callable | None = None) -> dict[int, list[str]]:
    """Run ``names`` on ``cfg``'s seed, then the claim rows among them on every other seed in ``seeds`` (``cfg.seed``
    among them changes nothing: it always runs, first), each in its seed's root from the shared M0 (``hsir.seeds``);
    returns seed -> the methods it ran. ``run``: ``run_method``'s stand-in (tests, the CLI's printing)."""
    run = run or run_method
    order = [cfg.seed, *(s for s in dict.fromkeys(seeds) if s != cfg.seed)]
    done = {}
    for s in order:
        scfg = seed_config(cfg, s)
        names_s = seed_methods(names, first=s == cfg.seed)
        if s != cfg.seed and names_s:
            build_m0(cfg)  # the shared M0 exists before any seed links to it
            share_m0(cfg, scfg)
        for name in names_s:
            run(name, scfg, engine)
        done[s] = names_s
    return done


def run_round(run: Run, method: Method, cfg: LoopConfig, data: Data, engine: Engine, t: int, sampler: str,
              log: Callable[[str], None]) -> str:
    """Round t: sample → VeriExit → score → select → train → evaluate; returns the round's model."""
    it = f"iter_{t}"
    key = "m0" if t == 1 else f"{method.name}/iter_{t - 1}"
    if method.trainer == "grpo":
        start = str(model_dir(cfg, start_key(method)))
        if not Path(start, "model.safetensors").exists() and method.init != "m0":
            raise RuntimeError(f"{method.name} starts from {method.init}'s first round: run that method first ({start})")
        model = str(run.path(it, "model"))
        run.stage(f"{it}/train", [f"{it}/model/model.safetensors"],
                  lambda: _train_grpo(run, it, method, cfg, data, start, engine, log))
    else:
        trains = method.select != "none"
        model = str(run.path(it, "model")) if trains else sampler
        if method.self_generated:
            run.stage(f"{it}/sample", [f"{it}/samples.jsonl"],
                      lambda: _sample(run, it, method, cfg, data, engine, sampler, key, t, log))
        if trains:
            base = cfg.model if method.init == "base" else sampler
            run.stage(f"{it}/select", [f"{it}/train.jsonl"],
                      lambda: _select(run, it, method, cfg, data, sampler, key, log))
            run.stage(f"{it}/train", [f"{it}/model/model.safetensors"], lambda: _train(run, it, method, cfg, base, log))
    evaluated = run.path(it, "metrics.json")
    stale = evaluated.exists() and read_json(evaluated).get(data.task.name, {}).get("n") != len(data.test)
    run.stage(f"{it}/eval", [] if stale else [f"{it}/metrics.json"],
              lambda: _eval(run, it, cfg, data, engine, model, evaluate, log))
    return model


def _sample(run, it, method, cfg, data, engine, sampler, key, t, log) -> dict:
    log(f"{run.root.name} {it}: sampling with {Path(sampler).name if '/' in sampler else sampler}")
    rows, report = sample_stage(method, cfg, data, engine, sampler, key, t)
    write_json(run.path(it, "sampling.json"), report)
    write_jsonl(run.path(it, "samples.jsonl"), rows)
    return {"tokens": sum(r["n_tokens"] for r in rows), "generations": len(rows)}


def _select(run, it, method, cfg, data, sampler, key, log) -> dict:
    rows = read_jsonl(run.path(it, "samples.jsonl")) if run.path(it, "samples.jsonl").exists() else []
    cands = candidates_of(method, cfg, rows)
    log(f"{run.root.name} {it}: scoring {len(cands)} candidates")
    t0 = time.perf_counter()
    scores = score_stage(method, cfg, data, sampler, key, cands)
    score_seconds = time.perf_counter() - t0
    write_jsonl(run.path(it, "scores.jsonl"), scores)
    train, report = select_stage(method, cfg, data, cands, scores, rows)
    report["score_seconds"] = round(score_seconds, 3)
    if train and method.trainer != "dpo":
        tok = load_tokenizer(sampler)
        report["train_by_origin"] = train_composition(
            train, lambda text: len(tok(text, add_special_tokens=False)["input_ids"]))
    write_json(run.path(it, "selection.json"), report)
    write_jsonl(run.path(it, "train.jsonl"), train)
    log(f"{run.root.name} {it}: {report['kept']} of {report['candidates']} candidates kept")
    return {"score_seconds": round(score_seconds, 3), "scored": len(cands)}


def _train(run, it, method, cfg, base, log) -> dict:
    rows = read_jsonl(run.path(it, "train.jsonl"))
    log(f"{run.root.name} {it}: {method.trainer} on {len(rows)} rows from {base}")
    settings = settings_from(DPOSettings, cfg.dpo, "dpo") if method.trainer == "dpo" else settings_from(
        SFTSettings, cfg.sft, "sft")
    if not rows:  # e.g. DPO where no query has both a winner and a loser: nothing to learn, M_t = M_{t-1}
        log(f"{run.root.name} {it}: no training rows; the round's model is {base} unchanged")

        def copy(tmp: Path) -> None:
            model, tok = load_model(base, dtype="fp32")
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            write_json(tmp / f"{method.trainer}.json", {"base": base, "rows": 0, "steps": 0, "unchanged": True,
                                                        "settings": asdict(settings)})

        atomic_dir(run.path(it, "model"), copy)
        return {"rows": 0}
    launch(method.trainer, base, rows, run.path(it, "model"), settings)
    return {"rows": len(rows)}


def _train_grpo(run, it, method, cfg, data, start, engine, log) -> dict:
    log(f"{run.root.name} {it}: GRPO from {start} with rewards {method.rewards}")
    # the loop's engine serves the rollouts when the profile's backend is vLLM (rollouts: engine), else GRPO
    # starts what it needs itself
    shared = engine if cfg.backend == "vllm" or (cfg.backend == "auto" and vllm_available()) else None
    if grpo_settings(cfg).prompts == "learnable":
        data = replace(data, unlabeled=m0_learnable(cfg, data, engine))
        if not data.unlabeled:
            raise RuntimeError(f"grpo: prompts 'learnable': no D_u query has both a right and a wrong one among M0's "
                               f"K = {cfg.K} samples ({cfg.run_root / 'generations' / 'm0'}); use prompts: all")
        log(f"{run.root.name} {it}: {len(data.unlabeled)} learnable prompts (M0 both right and wrong among K)")
    train_grpo(method, cfg, data, start, run.path(it, "model"), engine=shared)
    return ledger_entry(run.path(it, "model"))


def _eval(run, it, cfg, data, engine, model, evaluate, log) -> dict:
    m = evaluate(data.task, data.test, engine.use(model), run.path(it), max_new_tokens=cfg.eval_max_new_tokens,
                 chunk=cfg.eval_chunk)
    log(f"{run.root.name} {it}: accuracy {m['accuracy']:.3f}, {m['mean_tokens']:.0f} tokens")
    return {"tokens": int(m["mean_tokens"] * m["n"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run methods of the self-improvement loop outside notebooks.")
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--method", nargs="+", required=True, help="names from hsir.methods.METHODS")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="override a loop setting")
    ap.add_argument("--table", nargs="?", const="", metavar="PAPER",
                    help="print the methods' finished rounds from their run folders instead of running anything; "
                         "PAPER (1a, 1b, 3, 5 or 7) puts that table of the paper beside them")
    ap.add_argument("--vs", metavar="METHOD", help="with --table: each row's accuracy minus METHOD's first round's, "
                                                   "paired on the same test problems (e.g. SFT-Initial, i.e. M0)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[], metavar="N",
                    help="also run the claim rows among the methods with seed N, each in <run root>-seed<N> from the "
                         "shared M0 (hsir.seeds); the profile's seed always runs, and first")
    args = ap.parse_args(argv)
    if args.table is not None and args.seeds:
        ap.error("--table prints the profile's own seed; --claims of python -m hsir.results pools the seeds")
    if args.table and args.table not in paper_tables.ROWS:  # not argparse's choices: a bare --table is valid
        ap.error(f"--table {args.table!r}: no such paper table; valid: {', '.join(paper_tables.ROWS)}")
    overrides = parse_sets(args.set)
    for name in args.method:  # fail at once on a typo, before any work
        if name not in METHODS:
            ap.error(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    cfg = load_config(args.profile, overrides)
    if args.table is not None:
        print(table_text(results_table(cfg, args.method, paper=args.table or None, vs=args.vs)))
        return 0

    def run_and_print(name: str, c: LoopConfig, engine: Engine) -> None:
        for r in run_method(name, c, engine):
            keys = ("method", "iteration", "accuracy", "mean_tokens", "data_tokens")
            print(json.dumps({"seed": c.seed} | {k: r[k] for k in keys}))

    engine = Engine(cfg)
    try:
        run_seeds(args.method, cfg, args.seeds, engine, run=run_and_print)
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
