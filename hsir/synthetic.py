"""The synthetic testbed: multi-step arithmetic word problems with graded difficulty and planted overthinking.

Each problem is a running quantity changed by 1-5 operations (the difficulty), worded from several templates
with varied names, objects and phrasings, so that a 135M model cannot pass by memorising one sentence. Every
problem has a programmatic gold trace in the trace format, one step per operation, ending "So the answer is N."

A known share of seed traces carries R1-like planted redundancy, labelled in ``meta["redundant"]``: after the
step that states the answer comes "Wait, let me double-check …", which re-derives earlier steps and restates
the answer. A model trained on such traces learns to second-guess itself, which is the overthinking HSIR's
InDiv is meant to filter, and the failures VeriExit recovers. ``meta`` keeps both variants of every seed
trace (``clean_trace``, ``redundant_trace``) so that scores can be checked against the label on the same
problems.

Splits: ``seed`` (D_s, with traces), ``unlabeled`` (D_u; ``reasoning`` holds the gold trace, used only by
SFT-Oracle), ``test``, and ``validation``: drawn like the test split (the same difficulty mix, ``MIX``), for
choosing settings by pilot runs without ever looking at the test split. Deterministic for a seed; test questions
never repeat a seed or unlabeled question, validation questions never repeat a seed, unlabeled or test one (the
test split's first ``RESERVED_TEST`` questions, so that a larger test split later stays disjoint and the
validation split does not change with it).

``ood``: out-of-distribution problems for generalisation (paper Fig. 4, notebook 06), with ``OOD_OPS`` (6-8)
operations, more than any problem of the other splits (at most ``MAX_OPS``), so disjoint from them by construction;
drawn from a stream of its own, so adding it changed no other split.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from hsir.traces import format_trace, split_steps

# test grew from 500 to 1,000 (issue 26: the embedded profile evaluates 512): its first 500 questions are as before,
# and validation, which skips the first RESERVED_TEST test questions, did not change
SIZES = {"seed": 400, "unlabeled": 2000, "test": 1000, "validation": 500, "ood": 500}
# Difficulty mix per split: weights of 1..MAX_OPS operations, None for uniform. A split in DRAWN_LIKE draws with
# another split's mix, so the validation split follows the test split wherever the test mix is set.
MIX: dict[str, tuple[float, ...] | None] = {"seed": None, "unlabeled": None, "test": None, "ood": None}
DRAWN_LIKE = {"validation": "test"}
RESERVED_TEST = 2000  # test questions the validation split avoids (more than the test split will grow to)
REDUNDANT_SHARE = 0.3
MAX_OPS = 5
OOD_OPS = (6, 8)  # the ood split's operations, lowest and highest: harder than any training or test problem

NAMES = [("Mia", "she"), ("Liam", "he"), ("Ava", "she"), ("Noah", "he"), ("Zoe", "she"), ("Omar", "he"),
         ("Priya", "she"), ("Kenji", "he"), ("Elena", "she"), ("Tariq", "he"), ("Grace", "she"), ("Mateo", "he"),
         ("Nadia", "she"), ("Felix", "he"), ("Ines", "she"), ("Jonah", "he"), ("Leila", "she"), ("Hugo", "he"),
         ("Sofia", "she"), ("Ravi", "he")]
ITEMS = ["apples", "marbles", "stickers", "books", "coins", "cookies", "pencils", "shells", "stamps", "cards",
         "beads", "eggs", "seeds", "candles", "buttons", "toy cars"]
STARTS = ["{N} has {a} {it}.", "{N} starts the day with {a} {it}.", "There are {a} {it} in {N}'s box.",
          "{N} collected {a} {it} last week.", "At first, {N} owns {a} {it}."]
QUESTIONS = ["How many {it} does {N} have now?", "How many {it} does {N} end up with?",
             "What is the final number of {it} that {N} has?", "How many {it} are in {N}'s box at the end?"]

# op kind -> (question wordings, step wording); {p} pronoun, {b} operand
OPS = {
    "add": (["{P} buys {b} more.", "A friend gives {N} {b} more {it}.", "{P} finds another {b} {it}.",
             "Then {p} receives {b} extra {it}."],
            "Adding {b} more gives {x} + {b} = {y} {it}."),
    "sub": (["{P} gives {b} {it} to a neighbour.", "{P} loses {b} of them.", "{P} uses {b} {it} for a project.",
             "Then {p} sells {b} {it}."],
            "Taking away {b} leaves {x} - {b} = {y} {it}."),
    "mul": (["{P} then ends up with {b} times as many {it}.", "The number of {it} grows {b}-fold.",
             "Each of the {it} is swapped for {b} new ones."],
            "Multiplying by {b} gives {x} * {b} = {y} {it}."),
    "div": (["{P} splits them equally into {b} bags and keeps one bag.", "{P} keeps only one {b}-th of them.",
             "{P} shares them equally among {b} friends and keeps one friend's share."],
            "Dividing by {b} gives {x} / {b} = {y} {it}."),
}
RECHECK_OPEN = ["Wait, let me double-check.", "Hmm, wait. Let me verify that again.",
                "Wait, let me re-check the earlier steps.", "Let me double-check this to be sure."]
RESTATE = ["Let me restate the facts: {N} began with {a} {it}.", "Again, the starting amount is {a} {it}.",
           "Recall that {N} had {a} {it} at the start."]


@dataclass
class Spec:
    """A problem as data: who, what, the start value and the operations [(kind, operand, result)]."""

    name: str
    pron: str
    item: str
    start: int
    ops: list[tuple[str, int, int]]
    wording: list[int]  # template choices, so both trace variants and the question agree

    @property
    def answer(self) -> int:
        return self.ops[-1][2] if self.ops else self.start


def _apply(kind: str, x: int, b: int) -> int | None:
    y = {"add": x + b, "sub": x - b, "mul": x * b, "div": x // b if x % b == 0 else -1}[kind]
    return y if 0 < y <= 999 else None


def sample_spec(rng: random.Random, n_ops: int) -> Spec:
    while True:
        name, pron = rng.choice(NAMES)
        x = start = rng.randint(2, 60)
        ops = []
        for _ in range(n_ops):
            for _try in range(20):
                kind = rng.choice(list(OPS))
                b = rng.randint(2, 4) if kind in ("mul", "div") else rng.randint(2, 30)
                y = _apply(kind, x, b)
                if y is not None:
                    ops.append((kind, b, y))
                    x = y
                    break
        if len(ops) == n_ops:
            wording = [rng.randrange(1000) for _ in range(3 + 2 * n_ops + 4)]
            return Spec(name, pron, rng.choice(ITEMS), start, ops, wording)


def _pick(options: list[str], k: int) -> str:
    return options[k % len(options)]


def question(s: Spec) -> str:
    fill = {"N": s.name, "p": s.pron, "P": s.pron.capitalize(), "it": s.item, "a": s.start}
    parts = [_pick(STARTS, s.wording[0]).format(**fill)]
    for i, (kind, b, _y) in enumerate(s.ops):
        parts.append(_pick(OPS[kind][0], s.wording[3 + i]).format(b=b, **fill))
    parts.append(_pick(QUESTIONS, s.wording[1]).format(**fill))
    return " ".join(parts)


def _op_steps(s: Spec) -> list[str]:
    steps, x = [], s.start
    for kind, b, y in s.ops:
        steps.append(OPS[kind][1].format(b=b, x=x, y=y, it=s.item))
        x = y
    return steps


def rechecks(text: str) -> bool:
    """Does a solution re-check itself the way the planted redundancy does (a model trained on the seed traces
    learns it)? The label for a model's own samples in the InDiv analysis."""
    return any(phrase in text for phrase in RECHECK_OPEN)


def operation_gap(text: str, n_ops: int) -> int:
    """Computation steps in a solution's reasoning (steps that show an equation) minus the problem's operations,
    which the testbed knows: below 0 the solution skipped operations (under-thinking), above 0 it added some or
    re-derived them in a re-check (overthinking). Tells a shorter solution that drops redundancy from one that
    drops work, which token counts alone cannot."""
    return sum("=" in step for step in split_steps(text)) - n_ops


def trace(s: Spec, redundant: bool = False) -> str:
    """The gold trace; with ``redundant`` an R1-like double-check after the answer, same final answer."""
    first = f"{s.name} starts with {s.start} {s.item}."
    steps = [first, *_op_steps(s), f"So the answer is {s.answer}."]
    if redundant:
        fill = {"N": s.name, "a": s.start, "it": s.item}
        w = s.wording[3 + len(s.ops) :]
        recheck = [_pick(RECHECK_OPEN, w[0]), _pick(RESTATE, w[1]).format(**fill), *_op_steps(s),
                   f"Yes, that gives {s.answer} again.", f"So the answer is {s.answer}."]
        steps += recheck
    return format_trace(steps, str(s.answer))


def _split_rng(seed: int, split: str) -> random.Random:
    return random.Random(f"hsir-synthetic:{seed}:{split}")


def mix(split: str) -> tuple[float, ...] | None:
    """The difficulty mix a split is drawn with (its own, or that of the split it is drawn like)."""
    return MIX[DRAWN_LIKE.get(split, split)]


def ops_range(split: str) -> tuple[int, int]:
    """The fewest and most operations of a split's problems: 1 to ``MAX_OPS``, the ood split's ``OOD_OPS``."""
    return OOD_OPS if split == "ood" else (1, MAX_OPS)


def _specs(split: str, seed: int) -> Iterator[tuple[Spec, random.Random]]:
    rng, weights = _split_rng(seed, split), mix(split)
    lo, hi = ops_range(split)
    while True:
        n_ops = rng.randint(lo, hi) if weights is None else rng.choices(range(lo, hi + 1), weights)[0]
        yield sample_spec(rng, n_ops), rng


def _avoided(split: str, seed: int) -> set[str]:
    """Questions a split must not repeat: test avoids D_s and D_u; validation avoids those and the test split."""
    avoid: set[str] = set()
    if split in ("test", "validation"):
        for other in ("seed", "unlabeled"):
            avoid |= {r["question"] for r in rows(other, seed=seed)}
    if split == "validation":
        avoid |= {r["question"] for r in rows("test", n=max(SIZES["test"], RESERVED_TEST), seed=seed)}
    return avoid


def rows(split: str, n: int | None = None, seed: int = 0, redundant_share: float = REDUNDANT_SHARE) -> Iterator[dict]:
    """Raw rows of a split (the task registry turns them into ``Problem``s); qids ``synthetic-<split>-<i>``."""
    if split not in SIZES:
        raise KeyError(f"synthetic split {split!r} unknown; splits: {sorted(SIZES)}")
    n = SIZES[split] if n is None else n
    avoid = _avoided(split, seed)
    seen, made = set(), 0
    for spec, rng in _specs(split, seed):
        if made >= n:
            return
        q = question(spec)
        if q in seen or q in avoid:
            continue
        seen.add(q)
        meta = {"n_ops": len(spec.ops), "ops": [k for k, _, _ in spec.ops]}
        row = {"qid": f"synthetic-{split}-{made}", "question": q, "answer": spec.answer, "meta": meta}
        if split == "seed":
            redundant = rng.random() < redundant_share
            meta.update(redundant=redundant, clean_trace=trace(spec), redundant_trace=trace(spec, True))
            row["reasoning"] = meta["redundant_trace" if redundant else "clean_trace"]
        elif split == "unlabeled":
            row["reasoning"] = trace(spec)  # gold trace, for SFT-Oracle only
        made += 1
        yield row
