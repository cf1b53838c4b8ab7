"""Answers: where a completion states its final answer, whether it is the gold one, and VeriExit's step test.

Pure functions of text and a task's answer kind (``numeric``, ``math``, ``choice``, ``yesno``; ``hsir.tasks``
says which task has which), so that extraction and checking are tested without loading any data. The paper's
extraction is strict: "If no valid answer is extracted [according to the given format], the response is
considered incorrect", i.e. only the ``<answer>`` block counts; ``strict=False`` adds the kit's fallbacks (the
last "answer is", the last ``\\boxed{}`` or number).
"""

from __future__ import annotations

import re
import threading

from hsir.config import STEP_TESTS
from hsir.traces import answer_block

_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*", re.I)


def boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{…}`` (or ``\\fbox{…}``), braces balanced."""
    out = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end() : i - 1])
    return out


def parse_number(text: str, which: str = "last") -> float | None:
    """The first or last number in ``text``; ``8,000`` → 8000.0, a trailing period or ``$`` is ignored."""
    boxed = boxed_contents(text)
    if boxed:
        text = boxed[-1]
    nums = _NUMBER.findall(text.replace("\\!", "").replace("{,}", ","))
    if not nums:
        return None
    return float(nums[0 if which == "first" else -1].replace(",", ""))


# Where a step states what it arrives at: "=", an arrow, or a result verb ("gives 58", "leaving 46", "is 58").
_RESULT_MARKER = re.compile(
    r"=+>?|→|\b(?:is|are|was|were|equals?|makes?|making|gives?|giving|gave|leaves?|leaving|becomes?|becoming|"
    r"yields?|yielding|gets?|getting|got|totals?|totaling|totalling)\b",
    re.I,
)
_OPERATOR_NEXT = re.compile(r"\s*(?:[-+*/×÷x]|\\times|\\cdot|\\div)\s*\$?\d")


def step_result(step: str) -> float | None:
    """The number a reasoning step arrives at, or None: the rule behind ``states_answer(how="result")``.

    The first number after the step's last result marker (``=``, ``→``, or a verb such as "gives", "leaves",
    "is", "makes", "equals", "becomes") that has a number after it; with no marker, the step's last number.
    A number that opens an unevaluated expression ("gives 58 * 2") is an operand, not a result: such a step
    arrives at nothing. So "Multiplying by 2 gives 29 * 2 = 58 marbles." arrives at 58, "She has 58 marbles."
    at 58, and "Then she adds 58 to 12, giving 70." at 70, not 58. Known miss: with no marker, an operand
    written last ("She adds 12 to 58.") counts as the result.
    """
    text = step.replace("\\!", "").replace("{,}", ",")
    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return None
    markers = [m.end() for m in _RESULT_MARKER.finditer(text) if any(n.start() >= m.end() for n in numbers)]
    if markers:
        num = next(n for n in numbers if n.start() >= markers[-1])
        if _OPERATOR_NEXT.match(text, num.end()):
            return None
    else:
        num = numbers[-1]
    return float(num.group().replace(",", ""))


def final_answer_text(completion: str) -> tuple[str, str]:
    """Where the final answer is stated, and how it was found: ``block``, ``answer_is`` or ``text``."""
    block = answer_block(completion)
    if block is not None:
        return block, "block"
    hits = list(_ANSWER_IS.finditer(completion))
    if hits:
        rest = completion[hits[-1].end() :]
        return rest.split("\n", 1)[0], "answer_is"
    return completion, "text"


def mv_timeout(seconds: int) -> int | None:
    """math-verify's timeouts use signals, which work only in the main thread."""
    return seconds if threading.current_thread() is threading.main_thread() else None


def mv_parse(text: str):
    from math_verify import parse

    text = text.replace("\\$", "").replace("\\!", "").strip().rstrip(".").strip()
    if not text:
        return []
    t = mv_timeout(5)
    if "\\boxed" in text or "$" in text or "\\(" in text or "\\[" in text:
        got = parse(text, parsing_timeout=t)
    else:
        got = parse(f"\\boxed{{{text}}}", parsing_timeout=t)
    return got or parse(text, parsing_timeout=t)


def choice_label(text: str, labels: list[str], how: str, choices: dict[str, str]) -> str | None:
    """The option label stated in ``text``: a bare label, "(X)", "X." or the option's own text."""
    lab = "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True))
    s = text.strip().strip("*").strip()
    if how == "answer_is" or how == "block":
        m = re.match(rf"^(?:option\s+)?\(?({lab})\)?(?=$|[\s.:,)\]])", s, re.I if how == "block" else 0)
        if m:
            return next(x for x in labels if x.upper() == m.group(1).upper())
    if how == "block":
        low = s.lower().rstrip(".")
        for label, option in choices.items():
            if low == option.strip().lower().rstrip("."):
                return label
    # "answer is" in any case, the label as written: "the answer is a bit unclear" names no option
    hits = list(re.finditer(rf"(?i:answer\s+is)\s*:?\s*\(?({lab})\)?(?=$|[\s.:,)\]])", text))
    if hits:
        return hits[-1].group(1)
    if how == "block":
        hits = list(re.finditer(rf"\(({lab})\)", text))
        if hits:
            return hits[-1].group(1)
    return None


def yes_no(text: str, how: str) -> str | None:
    if how == "text":
        hits = re.findall(r"answer\s+is\s*:?\s*\**(yes|no|true|false)\b", text, re.I)
        word = hits[-1] if hits else None
    else:
        m = re.search(r"\b(yes|no|true|false)\b", text, re.I)
        word = m.group(1) if m else None
    if word is None:
        return None
    return "Yes" if word.lower() in ("yes", "true") else "No"


def format_number(v: float) -> str:
    """A numeric answer as compared and stored: ``18.0`` → ``"18"``."""
    return str(int(v)) if float(v).is_integer() else repr(v)


def extract(kind: str, completion: str, choices: dict[str, str] | None = None, strict: bool = False) -> str | None:
    """The final answer a completion states, normalised for the answer ``kind``, or None."""
    text, how = final_answer_text(completion)
    if strict and how != "block":
        return None
    if kind == "numeric":
        v = parse_number(text, "first" if how == "answer_is" else "last")
        return None if v is None else format_number(v)
    if kind == "math":
        boxed = boxed_contents(text)
        pred = boxed[-1] if boxed else text.strip()
        if how == "text" and not boxed:
            return None
        return pred.strip().rstrip(".").strip() or None
    if kind == "choice":
        return choice_label(text, list(choices or {}), how, choices or {})
    return yes_no(text, how)


def matches(kind: str, pred: str | None, gold: str) -> bool:
    """Is an extracted answer (``extract``) the gold answer?"""
    if pred is None:
        return False
    if kind == "numeric":
        g = parse_number(gold)
        return g is not None and abs(float(pred) - g) <= 1e-6
    if kind == "math":
        from math_verify import verify

        g, got = mv_parse(gold), mv_parse(pred)
        return bool(g and got) and verify(g, got, timeout_seconds=mv_timeout(5))
    return pred == gold


def states_answer(kind: str, step: str, gold: str, choices: dict[str, str] | None = None, how: str = "text") -> bool:
    """Does this reasoning step already give the gold answer? VeriExit's step test, one of ``STEP_TESTS``.

    - ``"text"`` (the paper's, the default): the step says "the answer is 14" or ``\\boxed{14}``. A step whose
      intermediate result merely equals the gold number does not count.
    - ``"result"``: for numeric tasks, also a step whose result (``step_result``) equals the gold number; other
      kinds fall back to ``"text"``. Needed where models never say "answer is" mid-trace (the synthetic
      testbed, DESIGN.md §7); it fires on coincidences too and can yield skipped-step solutions.
    """
    if how not in STEP_TESTS:
        raise ValueError(f"unknown step test {how!r}; valid step tests: {', '.join(STEP_TESTS)}")
    if states_text(kind, step, gold, choices):
        return True
    if how == "result" and kind == "numeric":
        v = step_result(step)
        return v is not None and matches(kind, format_number(v), gold)
    return False


def states_text(kind: str, step: str, gold: str, choices: dict[str, str] | None = None) -> bool:
    """The paper's step test: an "answer is …" or ``\\boxed{…}`` in the step names the gold answer."""
    fragments = [step[m.end() :].split("\n", 1)[0] for m in _ANSWER_IS.finditer(step)]
    fragments += [f"\\boxed{{{b}}}" for b in boxed_contents(step)]
    for frag in fragments:
        if kind == "numeric":
            v = parse_number(frag, "first")
            pred = None if v is None else format_number(v)
        elif kind == "math":
            pred = (boxed_contents(frag) or [re.split(r"(?<=[^\\])[,;]\s|\.\s|\.$", frag.strip())[0]])[-1]
        elif kind == "choice":
            pred = choice_label(frag, list(choices or {}), "answer_is", choices or {})
        else:
            pred = yes_no(frag, "answer_is")
        if matches(kind, pred, gold):
            return True
    return False
