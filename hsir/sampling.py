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
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hsir.generate import Prompt, SamplingConfig
from hsir.progress import bar
from hsir.runs import ResumableJsonl, Run
from hsir.tasks import Problem, Task


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
    if not todo and store.path.exists():
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
    """Per query, how many of its samples are correct (the paper's Figure 1 histogram)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["qid"]] = counts.get(r["qid"], 0) + int(r["correct"])
    return counts
