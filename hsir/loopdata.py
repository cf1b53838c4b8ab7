"""The loop's data: a profile's D_s (seed traces), D_u (answers only) and test split, read once per run.

As the paper draws them: D_s is a random draw of ``n_seed`` seed rows (seeded by ``data_seed``, the same for
every sampling seed, so M0 is shared across seeds); where the seed split holds exactly ``n_seed`` rows (the
synthetic testbed) that is all of them in order. D_u is "the remaining samples": a query whose question is also a
seed question is left out (GSM8K's R1 seed traces are traces of GSM8K-train questions). A profile that asks for
more seed rows than exist fails, naming both numbers, unless ``allow_fewer_seed_rows`` is set (then recorded in
the method folder's run.json like every setting).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hsir.config import LoopConfig
from hsir.tasks import Problem, Task, get_task


@dataclass
class Data:
    task: Task
    seed: list[Problem]
    unlabeled: list[Problem]
    test: list[Problem]
    excluded: int = 0  # queries of D_u's split left out because D_s has their question

    @property
    def by_qid(self) -> dict[str, Problem]:
        return {p.qid: p for p in self.unlabeled}


def load_data(cfg: LoopConfig) -> Data:
    task = get_task(cfg.task, cfg.data_dir, strict=cfg.extraction == "strict")
    seed = seed_draw(task.load(cfg.seed_split), cfg)
    taken = {normalise(p.question) for p in seed}
    pool = task.load(cfg.unlabeled_split)
    remaining = [p for p in pool if normalise(p.question) not in taken]
    return Data(task, seed, remaining[: cfg.n_unlabeled], task.load(cfg.test_split, limit=cfg.n_test),
                excluded=len(pool) - len(remaining))


def normalise(question: str) -> str:
    """A question as compared across splits: whitespace and case do not make a different question."""
    return " ".join(question.split()).lower()


def seed_draw(pool: list[Problem], cfg: LoopConfig, n: int | None = None) -> list[Problem]:
    """D_s: ``n`` (default ``cfg.n_seed``) rows of the seed split, drawn at random with ``cfg.data_seed``; all of
    them in order when the split holds exactly that many. Fewer rows than asked fail, naming both numbers, unless
    ``cfg.allow_fewer_seed_rows``."""
    n = cfg.n_seed if n is None else n
    if len(pool) < n and not cfg.allow_fewer_seed_rows:
        raise ValueError(f"{cfg.task}/{cfg.seed_split} has {len(pool)} seed rows; the profile asks for n_seed={n}. "
                         "Set n_seed to at most that, provide the full seed data (python -m hsir.data fetch), or set "
                         "allow_fewer_seed_rows: true to train on what there is (recorded in run.json)")
    if len(pool) <= n:
        return list(pool)
    picked = sorted(random.Random(f"seed-draw:{cfg.data_seed}").sample(range(len(pool)), n))
    return [pool[i] for i in picked]
