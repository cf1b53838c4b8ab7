"""VeriExit (paper §3, DESIGN.md §1): cut a failed solution at the first step that already has the gold answer.

Pure functions; the caller runs the engine. For each failed sample, ``exit_prefix`` gives the text to continue
(the solution through that step, then ``EXIT_PROMPT``) and ``prefix_ids`` the token ids to feed the engine, so
that the continuation extends the model's own tokens rather than a re-tokenisation of its text. The model
finishes each prefix J times; correct continuations become new candidates, ``cap_per_query`` keeps at most K
per query (the baselines' training budget), and ``recovery`` counts what the extra sampling bought.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from hsir.config import STEP_TESTS
from hsir.tasks import Problem, Task
from hsir.traces import EXIT_PROMPT, prefix_through_step, split_steps


def exit_cut(text: str, problem: Problem, task: Task, step_test: str = "text") -> str | None:
    """The completion through its first reasoning step that passes ``task.states_answer(how=step_test)``, with the
    original characters (tags, spacing) kept; None when no step passes."""
    if step_test not in STEP_TESTS:
        raise ValueError(f"unknown step test {step_test!r}; valid step tests: {', '.join(STEP_TESTS)}")
    for i, step in enumerate(split_steps(text)):
        if task.states_answer(step, problem, how=step_test):
            return prefix_through_step(text, i)
    return None


def exit_prefix(text: str, problem: Problem, task: Task, step_test: str = "text") -> str | None:
    """``exit_cut`` followed by ``EXIT_PROMPT``: the text the model continues to its final answer, or None."""
    cut = exit_cut(text, problem, task, step_test)
    return None if cut is None else cut + EXIT_PROMPT


def _decoded(tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True)


def _own_run(tokenizer, ids: Sequence[int], text: str) -> int:
    """The largest k such that ``ids[:k]`` decodes to a prefix of ``text``, in O(log n) decodes.

    Binary search on a relaxed test that forgives trailing U+FFFD (a run that ends inside a multi-byte character
    decodes to a replacement mark), which is monotone in k; then back off to a run that decodes exactly.
    """
    def relaxed(k: int) -> bool:
        return text.startswith(_decoded(tokenizer, ids[:k]).rstrip("\ufffd"))

    lo, hi = 0, len(ids)  # relaxed(lo) holds; find the largest such k
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if relaxed(mid):
            lo = mid
        else:
            hi = mid - 1
    while lo > 0 and not text.startswith(_decoded(tokenizer, ids[:lo])):
        lo -= 1
    return lo


def prefix_ids(tokenizer, completion_ids: Sequence[int], prefix_text: str) -> list[int]:
    """Token ids of ``prefix_text`` (a cut of the completion, without the exit prompt) followed by EXIT_PROMPT.

    The longest run of the model's own ``completion_ids`` that decodes to a prefix of ``prefix_text``, then the
    tokenisation of the characters left (when the model's token crosses the cut) together with EXIT_PROMPT.
    Trailing tokens that decode to nothing (an end-of-sequence token) are not kept: the model did not write
    them before the cut. Re-tokenising the whole text instead could change token boundaries, and the
    continuation would then follow a sequence the model never produced.
    """
    k = _own_run(tokenizer, completion_ids, prefix_text)
    own = _decoded(tokenizer, completion_ids[:k])
    while k > 0 and _decoded(tokenizer, completion_ids[: k - 1]) == own:
        k -= 1
    rest = prefix_text[len(own) :] + EXIT_PROMPT
    return list(completion_ids[:k]) + list(tokenizer(rest, add_special_tokens=False)["input_ids"])


def _stable_key(row: dict) -> tuple:
    return (str(row.get("origin", "")), str(row.get("sample", "")), str(row.get("text", "")),
            json.dumps(row, sort_keys=True, default=str))


def cap_per_query(rows: Sequence[dict], K: int, seed: int) -> list[dict]:
    """At most K rows per query (``row["qid"]``), the same training budget as the baselines.

    A query with more than K rows keeps K at random from ``random.Random(f"{seed}:{qid}")`` over its rows sorted
    by content, so the choice depends only on the seed and that query's rows (not on row order or other
    queries). Kept rows stay in input order.
    """
    if K < 0:
        raise ValueError(f"K must be >= 0, got {K}")
    by_qid: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_qid.setdefault(row["qid"], []).append(i)
    keep: set[int] = set()
    for qid, idx in by_qid.items():
        if len(idx) <= K:
            keep.update(idx)
            continue
        ordered = sorted(idx, key=lambda i: _stable_key(rows[i]))
        keep.update(random.Random(f"{seed}:{qid}").sample(ordered, K))
    return [row for i, row in enumerate(rows) if i in keep]


def recovery(failed_qids_before: set[str], new_rows: Sequence[dict]) -> dict:
    """What extra sampling (VeriExit, answer-driven) bought: queries that had no correct sample and now have one,
    correct new rows, and the tokens and generations it cost."""
    recovered = {r["qid"] for r in new_rows if r["correct"]} & set(failed_qids_before)
    return {
        "queries_recovered": len(recovered),
        "solutions_gained": sum(bool(r["correct"]) for r in new_rows),
        "tokens": sum(r["n_tokens"] for r in new_rows),
        "generations": len(new_rows),
    }
