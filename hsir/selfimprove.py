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

One engine per notebook: ``Engine`` starts the generation backend once and loads each new model's weights into
it (vLLM's in-place reload; the hf backend reloads the model). M0 (SFT-Initial) lives in ``runs/<profile>/m0``
and is built by the first caller that needs it. A method's folder records the method and settings that made
it (``run.json``); a folder written under other settings is refused, not silently reused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hsir.generate import SamplingConfig, greedy, make_generator
from hsir.methods import Method, get_method
from hsir.progress import say
from hsir.results import results_table, round_result, table_text
from hsir.runs import Run, read_json, read_jsonl, write_json, write_jsonl
from hsir.sampling import Request, generate_rows, task_requests
from hsir.tasks import Problem, Task, get_task
from hsir.train import DPOSettings, SFTSettings, launch, launch_sft, settings_from, sft_rows

ROOT = Path(__file__).resolve().parents[1]
GUIDELINE = ("Before answering, identify what the question asks, list the given facts, plan the steps, carry "
             "them out one at a time, and check that the result answers the question.")


@dataclass(frozen=True)
class LoopConfig:
    """A profile's settings for the loop (``params/<profile>/selfimprove.yaml``); every knob the paper names."""

    profile: str = "smoke"
    model: str = "smoke:tiny-llama"  # M, the base model
    task: str = "synthetic"
    seed_split: str = "seed"  # D_s (has traces)
    unlabeled_split: str = "unlabeled"  # D_u (answers only)
    test_split: str = "test"
    n_seed: int = 400
    n_unlabeled: int = 128
    n_test: int = 128
    K: int = 8  # samples per query (paper: 10)
    J: int = 4  # continuations per VeriExit prefix / hinted resamples per failed query (paper: 5)
    T: int = 1  # rounds of an iterative method (paper: 3 for Qwen2.5, else 1)
    temperature: float = 1.0
    max_new_tokens: int = 384  # sampling (paper: 2,048)
    eval_max_new_tokens: int = 384  # greedy evaluation (paper: 4,096)
    extraction: str = "strict"  # the paper's: only the <answer> block counts | lenient: the kit's fallbacks too
    step_test: str = "text"  # VeriExit's "does this step state the answer": text (paper) | result
    indiv_variant: str = "token/self-max (default)"  # a key of hsir.indiv.VARIANTS
    tau: float | str = -0.5  # a number (paper) or a quantile of the round's candidates ("q0.26")
    max_indiv_tokens: int | None = 2048
    length_cutoff: float = 0.5  # the length-driven ablation
    embedder: str = "embedded:all-minilm-l6-v2"  # Eq.3 (paper: BAAI/bge-m3)
    m0_sft: dict = field(default_factory=dict)  # SFTSettings of SFT-Initial (M0)
    sft: dict = field(default_factory=dict)  # SFTSettings of each round
    dpo: dict = field(default_factory=dict)  # DPOSettings of each DPO round (hsir.train)
    grpo: dict = field(default_factory=dict)  # GRPOSettings of a GRPO run (hsir.grpo)
    backend: str = "auto"
    dtype: str = "auto"
    engine: dict = field(default_factory=dict)  # extra arguments of the generation backend
    seed: int = 0
    data_dir: str | None = None
    root: str | None = None  # None: runs/<profile>

    def __post_init__(self):
        from hsir.indiv import VARIANTS
        from hsir.tasks import STEP_TESTS

        if self.indiv_variant not in VARIANTS:
            raise ValueError(f"indiv_variant {self.indiv_variant!r} unknown; valid: {list(VARIANTS)}")
        if self.extraction not in ("strict", "lenient"):
            raise ValueError(f"extraction {self.extraction!r} unknown; valid: ['strict', 'lenient']")
        if self.step_test not in STEP_TESTS:
            raise ValueError(f"step_test {self.step_test!r} unknown; valid: {list(STEP_TESTS)}")
        settings_from(SFTSettings, self.m0_sft, "m0_sft")
        settings_from(SFTSettings, self.sft, "sft")
        settings_from(DPOSettings, self.dpo, "dpo")
        from hsir.grpo import GRPOSettings

        settings_from(GRPOSettings, self.grpo, "grpo")

    @property
    def run_root(self) -> Path:
        return Path(self.root or ROOT / "runs" / self.profile)


def load_config(profile: str, overrides: dict | None = None) -> LoopConfig:
    """``params/<profile>/selfimprove.yaml`` with ``overrides`` on top; an unknown key fails, naming it."""
    import yaml

    path = ROOT / "params" / profile / "selfimprove.yaml"
    if not path.exists():
        raise FileNotFoundError(f"profile {profile!r} has no loop settings: {path} is missing")
    values = (yaml.safe_load(path.read_text()) or {}) | {"profile": profile} | dict(overrides or {})
    return settings_from(LoopConfig, values, str(path))


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------ the engine

class Engine:
    """One generation engine for a notebook or a command: started once, each new model loaded into it."""

    def __init__(self, cfg: LoopConfig):
        self.cfg, self.gen, self.current = cfg, None, None
        self.swaps: list[dict] = []

    def use(self, model: str):
        if self.gen is None:
            self.gen = make_generator(model, backend=self.cfg.backend, dtype=self.cfg.dtype, progress=False,
                                      **self.cfg.engine)
        elif model != self.current:
            t0 = time.perf_counter()
            if hasattr(self.gen, "load_weights"):
                from hsir.models import model_path

                self.gen.load_weights(model_path(model))
            else:
                self.gen.close()
                self.gen = make_generator(model, backend=self.cfg.backend, dtype=self.cfg.dtype, progress=False,
                                          **self.cfg.engine)
            self.swaps.append({"model": model, "seconds": round(time.perf_counter() - t0, 3)})
        self.current = model
        return self.gen

    def close(self) -> None:
        if self.gen is not None:
            self.gen.close()
        self.gen = self.current = None


# ------------------------------------------------------------------------------------------------ data

@dataclass
class Data:
    task: Task
    seed: list[Problem]
    unlabeled: list[Problem]
    test: list[Problem]

    @property
    def by_qid(self) -> dict[str, Problem]:
        return {p.qid: p for p in self.unlabeled}


def load_data(cfg: LoopConfig) -> Data:
    task = get_task(cfg.task, cfg.data_dir, strict=cfg.extraction == "strict")
    return Data(task, task.load(cfg.seed_split, limit=cfg.n_seed), task.load(cfg.unlabeled_split, limit=cfg.n_unlabeled),
                task.load(cfg.test_split, limit=cfg.n_test))


def build_m0(cfg: LoopConfig, n_rows: int | None = None, name: str = "m0") -> Path:
    """SFT-Initial: M trained on the first ``n_rows`` seed traces (default all); built once, then reused."""
    task = get_task(cfg.task, cfg.data_dir)
    rows = sft_rows(task, task.load(cfg.seed_split, limit=n_rows or cfg.n_seed))
    settings = settings_from(SFTSettings, cfg.m0_sft, "m0_sft")
    out = cfg.run_root / name
    if (out / "sft.json").exists():
        rep = read_json(out / "sft.json")
        # how the steps are computed, not what they compute: a model trained either way is the same M0
        speed = ("bf16", "num_processes", "save_every", "padding_free", "micro_batch_size", "attn_implementation")
        want = {k: v for k, v in asdict(settings).items() if k not in speed}
        got = {k: rep["settings"].get(k) for k in want}
        if rep["rows"] != len(rows) or rep["base"] != cfg.model or got != want:
            raise RuntimeError(f"{out} was trained from {rep['base']} on {rep['rows']} rows with {got}; this profile "
                               f"asks for {cfg.model} on {len(rows)} rows with {want}. Delete it or use another root.")
        return out
    return launch_sft(cfg.model, rows, out, settings)


def check_identity(folder: Path, method: Method, cfg: LoopConfig) -> None:
    """Refuse a method folder written by another method or other settings (T may grow: more rounds resume). Only
    the settings of the method's own trainer count: changing the GRPO settings leaves SFT folders valid."""
    other_trainers = {"sft", "dpo", "grpo"} - {method.trainer}
    ident = {"method": asdict(method),
             "config": {k: v for k, v in asdict(cfg).items() if k not in {"T", "root"} | other_trainers}}
    ident = json.loads(json.dumps(ident, default=str))
    path = folder / "run.json"
    if path.exists():
        old = read_json(path)
        if old != ident:
            diff = sorted(k for k in set(old["config"]) | set(ident["config"])
                          if old["config"].get(k) != ident["config"].get(k))
            if old["method"] != ident["method"]:
                diff.insert(0, "method")
            raise RuntimeError(f"{folder} was written by another method or settings (differs in {diff}); "
                               "delete it or set another root")
        return
    write_json(path, ident)


# ------------------------------------------------------------------------------------------------ stages

def generations_path(cfg: LoopConfig, model_key: str, kind: str, spec: dict) -> Path:
    return cfg.run_root / "generations" / model_key / f"{kind}-{digest(spec)}.jsonl"


def _sampling_spec(cfg: LoopConfig, data: Data) -> dict:
    """What a cached generation depends on besides the model: its rows are reused only when all of it matches."""
    return {"task": cfg.task, "queries": len(data.unlabeled), "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed,
            "backend": cfg.backend, "dtype": cfg.dtype, "extraction": cfg.extraction, "engine": cfg.engine}


def sample_stage(method: Method, cfg: LoopConfig, data: Data, engine: Engine, sampler: str, model_key: str,
                 iteration: int) -> tuple[list[dict], dict]:
    """M_{t-1}'s candidates for D_u: its samples, then the method's extra sampling. Returns (rows, report)."""
    task, gen = data.task, engine.use(sampler)
    tok = gen.tokenizer
    common = _sampling_spec(cfg, data)
    if method.sampling == "greedy":
        scfg, reqs = greedy(cfg.max_new_tokens, seed=cfg.seed), task_requests(task, data.unlabeled, tok)
    else:
        n = cfg.K * cfg.T if method.sampling == "budget" else cfg.K
        scfg = SamplingConfig(n=n, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
        reqs = task_requests(task, data.unlabeled, tok) if method.sampling != "guideline" else guideline_requests(
            task, data.unlabeled, tok)
    spec = common | {"sampling": method.sampling, "n": scfg.n, "temperature": scfg.temperature}
    rows = generate_rows(task, reqs, gen, scfg, generations_path(cfg, model_key, "samples", spec))
    report = {"sampled": len(rows), "sample_correct": sum(r["correct"] for r in rows),
              "sample_tokens": sum(r["n_tokens"] for r in rows)}
    failed_q = {r["qid"] for r in rows} - {r["qid"] for r in rows if r["correct"]}
    extra: list[dict] = []
    xcfg = SamplingConfig(n=cfg.J, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    if method.extra == "veriexit":
        vreqs = veriexit_requests(task, data.by_qid, rows, tok, cfg.step_test)
        xspec = spec | {"extra": "veriexit", "J": cfg.J, "step_test": cfg.step_test}
        extra = generate_rows(task, vreqs, gen, xcfg, generations_path(cfg, model_key, "veriexit", xspec)) if vreqs else []
        report["prefixes"] = len(vreqs)
    elif method.extra == "answer_driven":
        failed = sorted({r["qid"] for r in rows if not r["correct"]})
        areqs = task_requests(task, [data.by_qid[q] for q in failed], tok, "answer_driven", hint=True)
        xspec = spec | {"extra": "answer_driven", "J": cfg.J}
        extra = generate_rows(task, areqs, gen, xcfg, generations_path(cfg, model_key, "answer_driven", xspec)) if areqs else []
    if method.extra:
        from hsir.veriexit import recovery

        report |= {f"extra_{k}": v for k, v in recovery(failed_q, extra).items()}
    return rows + extra, report


def sample_model(cfg: LoopConfig, data: Data, engine: Engine, model: str, model_key: str, K: int) -> list[dict]:
    """K samples per D_u query from ``model`` (cached like the loop's own samples): Fig. 1-2's histograms."""
    gen = engine.use(model)
    scfg = SamplingConfig(n=K, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    spec = _sampling_spec(cfg, data) | {"sampling": "K", "n": K, "temperature": cfg.temperature}  # as sample_stage's
    return generate_rows(data.task, task_requests(data.task, data.unlabeled, gen.tokenizer), gen, scfg,
                         generations_path(cfg, model_key, "samples", spec))


def veriexit_report(cfg: LoopConfig, data: Data, engine: Engine, step_tests: Sequence[str] = ("text", "result")):
    """VeriExit on M0's samples under each step test (the paper's ``text`` match and the ``result`` match): failed
    samples with a prefix, queries recovered (no correct sample before), solutions gained and tokens spent."""
    from dataclasses import replace

    import pandas as pd

    method, m0 = get_method("VeriExit-only"), str(build_m0(cfg))
    rows = {}
    for st in step_tests:
        _, report = sample_stage(method, replace(cfg, step_test=st), data, engine, m0, "m0", 1)
        rows[st] = {"failed samples": report["sampled"] - report.get("sample_correct", 0)} | report
    return pd.DataFrame(rows).T


def guideline_requests(task: Task, problems: Sequence[Problem], tokenizer) -> list[Request]:
    """ReGenesis, simplified: the task's prompt with a general reasoning guideline added to its system message."""
    out = []
    for p in problems:
        msgs = task.messages(p)
        msgs[0] = msgs[0] | {"content": msgs[0]["content"] + " " + GUIDELINE}
        text = (tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
                if getattr(tokenizer, "chat_template", None) else "\n\n".join(m["content"] for m in msgs) + "\n\n")
        out.append(Request(p, text, "guideline"))
    return out


def veriexit_requests(task: Task, by_qid: dict[str, Problem], rows: Sequence[dict], tokenizer,
                      step_test: str) -> list[Request]:
    """A continuation request for each failed sample with a step that reaches the gold answer (paper §3)."""
    from hsir.traces import EXIT_PROMPT
    from hsir.veriexit import exit_prefix, prefix_ids

    prompts: dict[str, list[int]] = {}
    out = []
    for i, r in enumerate(rows):
        if r["correct"]:
            continue
        p = by_qid[r["qid"]]
        prefix = exit_prefix(r["text"], p, task, step_test)
        if prefix is None:
            continue
        if p.qid not in prompts:
            prompts[p.qid] = tokenizer(task.prompt(p, tokenizer), add_special_tokens=False)["input_ids"]
        ids = prompts[p.qid] + prefix_ids(tokenizer, r["token_ids"], prefix[: -len(EXIT_PROMPT)])
        out.append(Request(p, ids, "veriexit", prefix=prefix, parent=i))
    return out


def candidates_of(method: Method, cfg: LoopConfig, rows: Sequence[dict]) -> list[dict]:
    """The correct candidates a round selects from, capped at K per query where the method says so."""
    cands = [r for r in rows if r["correct"]]
    if method.cap_k:
        from hsir.veriexit import cap_per_query

        cands = cap_per_query(cands, cfg.K, cfg.seed)
    return cands


def score_stage(method: Method, cfg: LoopConfig, data: Data, sampler: str, model_key: str,
                cands: Sequence[dict]) -> list[dict]:
    """Length for every candidate; InDiv under the sampler and Eq.3 where the method uses them (cached per model)."""
    from hsir.models import load_tokenizer

    tok = load_tokenizer(sampler)
    ids = [_row_id(c) for c in cands]
    out = [{"id": i, "qid": c["qid"], "length": len(tok(c["text"], add_special_tokens=False)["input_ids"])}
           for i, c in zip(ids, cands, strict=True)]
    if method.filter == "indiv":
        scores = cached_scores(cfg, model_key, "indiv", {"variant": cfg.indiv_variant}, cands,
                               lambda todo: indiv_of(cfg, data, sampler, todo))
        for o in out:
            o["indiv"] = scores[o["id"]]
    if method.select in ("high_readiv", "low_readiv"):
        scores = cached_scores(cfg, model_key, "readiv", {"embedder": cfg.embedder}, cands,
                               lambda todo: readiv_of(cfg, todo))
        for o in out:
            o["readiv"] = scores[o["id"]]
    return out


def _row_id(r: dict) -> str:
    return f"{r['origin']}:{r['req']}:{r['sample']}"


def cached_scores(cfg: LoopConfig, model_key: str, kind: str, spec: dict, cands: Sequence[dict],
                  compute: Callable[[list[dict]], list[float]]) -> dict[str, float]:
    """Scores by candidate id, computing only those not yet in the model's cache file (keyed by query and text,
    so a solution scored for one method is reused by another, and never confused with a different one)."""
    path = cfg.run_root / "generations" / model_key / f"{kind}-{digest(spec | {'task': cfg.task})}.jsonl"
    have = {r["key"]: r["score"] for r in read_jsonl(path)} if path.exists() else {}
    key = lambda c: digest([c["qid"], c["text"]])
    todo = [c for c in cands if key(c) not in have]
    if todo:
        have |= dict(zip([key(c) for c in todo], compute(todo), strict=True))
        write_jsonl(path, [{"key": k, "score": v} for k, v in have.items()])
    return {_row_id(c): have[key(c)] for c in cands}


def indiv_of(cfg: LoopConfig, data: Data, model: str, cands: Sequence[dict]) -> list[float]:
    from hsir.indiv import VARIANTS, indiv_scores
    from hsir.models import load_model

    weighting, norm, form, granularity = VARIANTS[cfg.indiv_variant]
    lm, tok = load_model(model, dtype=cfg.dtype)
    prompts = [data.task.prompt(data.by_qid[c["qid"]], tok) for c in cands]
    scores = indiv_scores(lm, tok, prompts, [c["text"] for c in cands], weighting, norm, form=form,
                          granularity=granularity, max_tokens=cfg.max_indiv_tokens)
    return [float(s) for s in scores]


def readiv_of(cfg: LoopConfig, cands: Sequence[dict]) -> list[float]:
    from hsir.diversity import load_embedder, readiv_scores

    return readiv_scores([c["text"] for c in cands], load_embedder(cfg.embedder))


def select_stage(method: Method, cfg: LoopConfig, data: Data, cands: Sequence[dict], scores: Sequence[dict],
                 rows: Sequence[dict] = ()) -> tuple[list[dict], dict]:
    """The round's training rows, each with why it is there: for SFT, D_s's traces then the kept candidates; for
    DPO, each kept winner paired with an incorrect sample of its query (``make_pairs``)."""
    task = data.task
    seed_rows = [{"qid": p.qid, "origin": "seed", "why": "seed trace (D_s)", "text": p.reasoning} for p in data.seed]
    report: dict = {"candidates": len(cands)}
    by_id = {s["id"]: s for s in scores}
    kept = [dict(c) | by_id[_row_id(c)] for c in cands]
    for k in kept:
        k["why"] = "correct"
    if method.filter == "indiv":
        from hsir.indiv import filter_by_indiv

        kept, threshold = filter_by_indiv(kept, cfg.tau)
        for k in kept:
            k["why"] += f"; InDiv {k['indiv']:.4f} >= tau {threshold:.4f} ({cfg.tau})"
        report["tau_value"] = threshold
    elif method.filter == "length":
        from hsir.diversity import length_driven_filter

        kept = length_driven_filter(kept, cfg.length_cutoff, key="length")
        for k in kept:
            k["why"] += f"; relative length <= {cfg.length_cutoff}"
    kept = select(method.select, kept, cfg.seed)
    if method.select == "oracle":
        kept = [{"qid": p.qid, "origin": "oracle", "why": "gold trace of D_u", "text": p.reasoning}
                for p in data.unlabeled]
    report |= {"kept": len(kept), "kept_queries": len({k["qid"] for k in kept}),
               "kept_by_origin": _count(k["origin"] for k in kept)}
    by_qid = {p.qid: p for p in data.seed + data.unlabeled}
    if method.trainer == "dpo":
        losers = [r for r in rows if not r["correct"] and r["origin"] == "sample"]
        pairs = make_pairs(kept, losers, cfg.seed)
        report |= {"pairs": len(pairs), "pair_queries": len({p["qid"] for p in pairs})}
        return [p | {"prompt": task.messages(by_qid[p["qid"]])} for p in pairs], report
    out = []
    for r in seed_rows + kept:
        p = by_qid[r["qid"]]
        out.append({key: r.get(key) for key in ("qid", "origin", "req", "sample", "why", "length", "indiv", "readiv")}
                   | {"prompt": task.messages(p), "completion": [{"role": "assistant", "content": r["text"]}]})
    return out, report


def make_pairs(winners: Sequence[dict], losers: Sequence[dict], seed: int) -> list[dict]:
    """Each winner with a loser of the same query drawn at random (seeded per winner); a query with no winner
    or no loser gives no pair. Losers are incorrect samples only: a correct solution the filter dropped is never
    a loser (the paper pairs "correct and incorrect solutions"; a filtered one is still correct)."""
    by_q: dict[str, list[dict]] = {}
    for r in losers:
        by_q.setdefault(r["qid"], []).append(r)
    pairs = []
    for w in winners:
        group = by_q.get(w["qid"])
        if not group:
            continue
        lose = random.Random(f"{seed}:{_row_id(w)}").choice(group)
        pairs.append({"qid": w["qid"], "winner": _row_id(w), "loser": _row_id(lose),
                      "why": f"winner: {w['why']}; loser: incorrect sample drawn at random (pred {lose['pred']!r})",
                      "chosen": [{"role": "assistant", "content": w["text"]}],
                      "rejected": [{"role": "assistant", "content": lose["text"]}]})
    return pairs


def select(how: str, kept: Sequence[dict], seed: int) -> list[dict]:
    """Which of each query's kept candidates go to training (``all`` keeps them all)."""
    if how in ("all", "oracle", "none"):
        return list(kept) if how == "all" else []
    if how == "dedup":
        seen, out = set(), []
        for k in kept:
            key = (k["qid"], " ".join(k["text"].split()))
            if key not in seen:
                seen.add(key)
                out.append(k)
        return out
    groups: dict[str, list[dict]] = {}
    for k in kept:
        groups.setdefault(k["qid"], []).append(k)
    out = []
    for qid, g in groups.items():
        if how == "random":
            pick = random.Random(f"{seed}:{qid}").choice(g)
        elif how == "shortest":
            pick = min(g, key=lambda k: k["length"])
        elif how == "high_readiv":
            pick = max(g, key=lambda k: (k["readiv"], -k["length"]))
        else:
            pick = min(g, key=lambda k: (k["readiv"], k["length"]))
        out.append(pick | {"why": pick["why"] + f"; one per query ({how})"})
    return out


def _count(xs) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out


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


def run_round(run: Run, method: Method, cfg: LoopConfig, data: Data, engine: Engine, t: int, sampler: str,
              log: Callable[[str], None]) -> str:
    """Round t: sample → VeriExit → score → select → train → evaluate; returns the round's model."""
    from hsir.evaluate import evaluate

    it = f"iter_{t}"
    key = "m0" if t == 1 else f"{method.name}/iter_{t - 1}"
    if method.trainer == "grpo":
        start = sampler if method.init == "m0" else str(cfg.run_root / "methods" / method.init / "iter_1" / "model")
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
    run.stage(f"{it}/eval", [f"{it}/metrics.json"], lambda: _eval(run, it, cfg, data, engine, model, evaluate, log))
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
        from hsir.models import atomic_dir, load_model

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
    from hsir.grpo import ledger_entry, train_grpo

    log(f"{run.root.name} {it}: GRPO from {start} with rewards {method.rewards}")
    # the loop's engine serves the rollouts when the profile's backend is vLLM (rollouts: engine), else GRPO
    # starts what it needs itself
    from hsir.generate import vllm_available

    shared = engine if cfg.backend == "vllm" or (cfg.backend == "auto" and vllm_available()) else None
    train_grpo(method, cfg, data, start, run.path(it, "model"), engine=shared)
    return ledger_entry(run.path(it, "model"))


def _eval(run, it, cfg, data, engine, model, evaluate, log) -> dict:
    m = evaluate(data.task, data.test, engine.use(model), run.path(it), max_new_tokens=cfg.eval_max_new_tokens)
    log(f"{run.root.name} {it}: accuracy {m['accuracy']:.3f}, {m['mean_tokens']:.0f} tokens")
    return {"tokens": int(m["mean_tokens"] * m["n"])}


def parse_sets(items: Sequence[str]) -> dict:
    """``KEY=VALUE`` overrides of the loop settings; a VALUE that parses as JSON is taken as such (T=2, sft={...})."""
    overrides = {}
    for item in items:
        k, _, v = item.partition("=")
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    return overrides


def main(argv: list[str] | None = None) -> int:
    from hsir import paper as paper_tables

    ap = argparse.ArgumentParser(description="Run methods of the self-improvement loop outside notebooks.")
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--method", nargs="+", required=True, help="names from hsir.methods.METHODS")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="override a loop setting")
    ap.add_argument("--table", nargs="?", const="", metavar="PAPER",
                    help="print the methods' finished rounds from their run folders instead of running anything; "
                         "PAPER (1a, 1b, 3, 5 or 7) puts that table of the paper beside them")
    ap.add_argument("--vs", metavar="METHOD", help="with --table: each row's accuracy minus METHOD's first round's, "
                                                   "paired on the same test problems (e.g. SFT-Initial, i.e. M0)")
    args = ap.parse_args(argv)
    if args.table and args.table not in paper_tables.ROWS:  # not argparse's choices: a bare --table is valid
        ap.error(f"--table {args.table!r}: no such paper table; valid: {', '.join(paper_tables.ROWS)}")
    overrides = parse_sets(args.set)
    from hsir.methods import METHODS

    for name in args.method:  # fail at once on a typo, before any work
        if name not in METHODS:
            ap.error(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    cfg = load_config(args.profile, overrides)
    if args.table is not None:
        print(table_text(results_table(cfg, args.method, paper=args.table or None, vs=args.vs)))
        return 0
    engine = Engine(cfg)
    try:
        for name in args.method:
            for r in run_method(name, cfg, engine):
                print(json.dumps({k: r[k] for k in ("method", "iteration", "accuracy", "mean_tokens", "data_tokens")}))
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
