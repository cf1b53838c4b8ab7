"""Generation requests in, scored candidate rows out: the one place where a model answers a task.

A ``Request`` is a problem and a prompt (text, or token ids so that VeriExit continues the model's own tokens),
with the origin of what it makes (``sample``, ``greedy``, ``veriexit``, ``answer_driven``) and, for a
continuation, the text already written before it. ``generate_rows`` writes one row per generation:

    qid, origin, req (the request's index), sample (0..n-1), text (prefix + continuation), token_ids,
    n_tokens (generated here: the compute paid), truncated, finish_reason, pred, correct, parent

Resume is exact: requests are cut into fixed chunks of the request list, each chunk is generated with a seed
derived from the call's seed and the chunk's index, and its rows are appended in one write. A rerun after a
kill keeps every whole chunk and regenerates only the rest, so it writes the same rows as an uninterrupted
run with the same seed, and no finished generation is redone. A generation cut by the length limit is never
scored correct.

The loop's sampling stage (``sample_stage``) builds a round's requests from the method: K samples per D_u query
(or one greedy, K×T for RFT's budget, the ReGenesis guideline prompt), then VeriExit's continuations of the
failed samples' cut prefixes or the answer-driven resamples. Generations are cached per generating model under
``<run root>/generations/<model>/``, keyed by their settings (``generations_path``): methods that sample a model
alike share its samples.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hsir.completions import Prompt, SamplingConfig, greedy
from hsir.config import LoopConfig, digest
from hsir.generate import Engine
from hsir.grpo import learnable_problems
from hsir.loopdata import Data
from hsir.methods import Method, get_method, samples_per_query, sampling_key
from hsir.progress import bar
from hsir.runs import REPORTS, ResumableJsonl, Run, file_digest, read_json, write_json
from hsir.tasks import Problem, Task
from hsir.traces import EXIT_PROMPT
from hsir.train import build_m0
from hsir.veriexit import exit_prefix, prefix_ids, recovery


@dataclass(frozen=True)
class Request:
    problem: Problem
    prompt: Prompt
    origin: str = "sample"
    prefix: str = ""  # text the model wrote before this prompt ends (VeriExit's cut), prepended to each row's text
    parent: int | None = None  # the sample this continues, when it continues one


def task_requests(task: Task, problems: Sequence[Problem], tokenizer, origin: str = "sample",
                  hint: bool = False) -> list[Request]:
    """One zero-shot request per problem (``hint``: the gold answer given, for the answer-driven baseline)."""
    if hint:
        return [Request(p, task.prompt(p, tokenizer, hint=task.hint(p)), origin) for p in problems]
    return [Request(p, task.prompt(p, tokenizer), origin) for p in problems]


def chunk_seed(seed: int, chunk: int) -> int:
    return seed * 7919 + chunk


def generate_rows(task: Task, requests: Sequence[Request], generator, cfg: SamplingConfig, out_path: str | Path,
                  chunk: int = 64) -> list[dict]:
    """Generate ``cfg.n`` completions per request, score them, and write ``out_path`` (JSONL) atomically."""
    n_chunks = (len(requests) + chunk - 1) // chunk
    need = {c: len(requests[c * chunk : (c + 1) * chunk]) * cfg.n for c in range(n_chunks)}
    store = ResumableJsonl(out_path, key=lambda r: (r["req"], r["sample"]))
    have: dict[int, int] = {}
    for r in store.rows:
        have[r["req"] // chunk] = have.get(r["req"] // chunk, 0) + 1
    store.retain(lambda r: have.get(r["req"] // chunk) == need.get(r["req"] // chunk))  # drop torn chunks
    todo = [c for c in range(n_chunks) if have.get(c) != need[c]]
    if not todo and store.path.exists() and not store.partial.exists():
        return store.rows
    t0, tokens = time.perf_counter(), 0
    total = sum(need[c] for c in todo)
    progress = bar(total, f"generating {Path(out_path).parent.name}/{Path(out_path).stem}", unit="generations")
    for c in todo:
        part = requests[c * chunk : (c + 1) * chunk]
        outs = generator.generate([r.prompt for r in part], replace(cfg, seed=chunk_seed(cfg.seed, c)))
        rows = []
        for i, (req, comps) in enumerate(zip(part, outs, strict=True)):
            for j, comp in enumerate(comps):
                text = req.prefix + comp.text
                pred = task.extract(req.problem, text)
                rows.append({
                    "qid": req.problem.qid, "origin": req.origin, "req": c * chunk + i, "sample": j, "text": text,
                    "token_ids": comp.token_ids, "n_tokens": comp.n_tokens, "truncated": comp.truncated,
                    "finish_reason": comp.finish_reason, "pred": pred,
                    "correct": (not comp.truncated) and task.matches(req.problem, pred), "parent": req.parent,
                })
        store.extend(rows)
        tokens += sum(r["n_tokens"] for r in rows)
        progress.update(len(rows))
    progress.__exit__()
    rows = store.finalize()
    Run(Path(out_path).parent).log(stage=Path(out_path).stem, backend=generator.backend, tokens=tokens,
                                   seconds=round(time.perf_counter() - t0, 3),
                                   generations=sum(need[c] for c in todo),
                                   engine_startup_seconds=round(generator.stats.startup_seconds, 3))
    return rows


def sample_and_score(task: Task, problems: Sequence[Problem], generator, cfg: SamplingConfig, out_path: str | Path,
                     origin: str = "sample", chunk: int = 64) -> list[dict]:
    """``generate_rows`` for the task's zero-shot prompt of each problem."""
    return generate_rows(task, task_requests(task, problems, generator.tokenizer, origin), generator, cfg, out_path,
                         chunk)


def correct_counts(rows: Sequence[dict]) -> dict[str, int]:
    """Per query, how many of its samples are correct (the paper's Fig. 2, left: the correct-count histogram)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["qid"]] = counts.get(r["qid"], 0) + int(r["correct"])
    return counts


# ------------------------------------------------------------------------------------------------ the loop's sampling

GUIDELINE = ("Before answering, identify what the question asks, list the given facts, plan the steps, carry "
             "them out one at a time, and check that the result answers the question.")


def model_dir(cfg: LoopConfig, model_key: str) -> Path:
    """The folder of the model behind ``model_key``: ``<run root>/m0`` (or ``m0-quarter``), a round's
    ``<run root>/methods/<method>/iter_<t>/model``."""
    return cfg.run_root / "methods" / model_key / "model" if "/" in model_key else cfg.run_root / model_key


def model_report(cfg: LoopConfig, model_key: str) -> Path | None:
    """The training report of the model behind ``model_key`` (``m0``, ``m0-quarter``, ``<method>/iter_<t>``);
    None for the base model or a model not trained yet."""
    folder = model_dir(cfg, model_key)
    return next((folder / name for name in REPORTS if (folder / name).is_file()), None)


def generations_path(cfg: LoopConfig, model_key: str, kind: str, spec: dict) -> Path:
    """Where a generation of ``model_key`` under ``spec`` is cached. The folder records which trained model it
    holds (``model.json``: its report's digest); once that model is retrained (an M0 deleted and built again),
    the folder is refused, naming it, instead of serving the old model's samples as the new one's."""
    folder = cfg.run_root / "generations" / model_key
    if (report := model_report(cfg, model_key)) is not None:
        made, record = file_digest(report), folder / "model.json"
        if record.exists() and (got := read_json(record)["report"]) != made:
            raise RuntimeError(f"{folder} holds generations of the {model_key} whose report had digest {got}; {report} "
                               f"is now {made} (retrained). Delete {folder} to sample the new one.")
        if not record.exists():
            write_json(record, {"report": made, "from": str(report)})
    return folder / f"{kind}-{digest(spec)}.jsonl"


def sampling_spec(cfg: LoopConfig, data: Data) -> dict:
    """What a cached generation depends on besides the model: its rows are reused only when all of it matches. Where
    D_u is not simply the split's first queries (D_s's questions left out, which depends on D_s's draw), which
    queries it holds is part of the key too."""
    spec = {"task": cfg.task, "queries": len(data.unlabeled), "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed,
            "backend": cfg.backend, "dtype": cfg.dtype, "extraction": cfg.extraction, "engine": cfg.engine}
    return spec | ({"qids": digest([p.qid for p in data.unlabeled])} if data.excluded else {})


def sample_stage(method: Method, cfg: LoopConfig, data: Data, engine: Engine, sampler: str, model_key: str,
                 iteration: int) -> tuple[list[dict], dict]:
    """M_{t-1}'s candidates for D_u: its samples, then the method's extra sampling. Returns (rows, report)."""
    task, gen = data.task, engine.use(sampler)
    tok = gen.tokenizer
    common = sampling_spec(cfg, data)
    if method.sampling == "greedy":
        scfg, reqs = greedy(cfg.max_new_tokens, seed=cfg.seed), task_requests(task, data.unlabeled, tok)
    else:
        scfg = SamplingConfig(n=samples_per_query(method, cfg.K, cfg.T), temperature=cfg.temperature,
                              max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
        reqs = task_requests(task, data.unlabeled, tok) if method.sampling != "guideline" else guideline_requests(
            task, data.unlabeled, tok)
    spec = common | {"sampling": sampling_key(method, cfg.K, cfg.T), "n": scfg.n, "temperature": scfg.temperature}
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
        report |= {f"extra_{k}": v for k, v in recovery(failed_q, extra).items()}
    return rows + extra, report


def sample_model(cfg: LoopConfig, data: Data, engine: Engine, model: str, model_key: str, K: int,
                 n_queries: int | None = None) -> list[dict]:
    """K samples per D_u query from ``model`` (cached like the loop's own samples): Fig. 2's histograms.
    ``n_queries``: the first n queries of D_u only (a histogram needs fewer queries than a round trains on)."""
    if n_queries is not None:
        if n_queries < 1:
            raise ValueError(f"sample_model: n_queries must be ≥ 1; got {n_queries}")
        data = replace(data, unlabeled=data.unlabeled[:n_queries])
    gen = engine.use(model)
    scfg = SamplingConfig(n=K, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    spec = sampling_spec(cfg, data) | {"sampling": "K", "n": K, "temperature": cfg.temperature}  # as sample_stage's
    return generate_rows(data.task, task_requests(data.task, data.unlabeled, gen.tokenizer), gen, scfg,
                         generations_path(cfg, model_key, "samples", spec))


def m0_learnable(cfg: LoopConfig, data: Data, engine: Engine) -> list[Problem]:
    """D_u's queries where M0's K loop samples (cached, shared with the SFT rows') hold both a right and a wrong
    answer (``hsir.grpo.learnable_problems``): GRPO's ``prompts: learnable`` and the own-reward check's prompts."""
    samples = sample_model(cfg, data, engine, str(model_dir(cfg, "m0")), "m0", cfg.K)
    return learnable_problems(data.unlabeled, samples)


def veriexit_report(cfg: LoopConfig, data: Data, engine: Engine, step_tests: Sequence[str] = ("text", "result")):
    """VeriExit on M0's samples under each step test (the paper's ``text`` match and the ``result`` match): failed
    samples with a prefix, queries recovered (no correct sample before), solutions gained and tokens spent."""
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
