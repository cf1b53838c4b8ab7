"""The R1-style trace format that seed traces, prompts, rewards and VeriExit share.

    <think>\n{step}\n\n{step}\n...\n</think>\n<answer>\n{final answer}\n</answer>

Steps are the blank-line separated blocks inside ``<think>``.
"""

from __future__ import annotations

import re

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
EXIT_PROMPT = "\n\n</think>\n<answer>\n"  # VeriExit's exit prompt (paper §3)

FORMAT_INSTRUCTION = (
    "Think step by step inside <think> </think>, separating steps with blank lines, "
    "then give only the final answer inside <answer> </answer>."
)

_LAYOUT = re.compile(r"^\s*<think>\n?(.*?)\n?</think>\s*<answer>\s*(.*?)\s*</answer>\s*$", re.S)


def format_trace(steps: list[str], answer: str) -> str:
    """Write reasoning steps and a final answer in the trace format."""
    body = "\n\n".join(s.strip() for s in steps)
    return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}\n{ANSWER_OPEN}\n{answer}\n{ANSWER_CLOSE}"


def think_text(text: str) -> str:
    """The reasoning inside <think> (up to </think> or the end); the whole text if there is no tag."""
    start = text.find(THINK_OPEN)
    body = text[start + len(THINK_OPEN) :] if start >= 0 else text
    end = body.find(THINK_CLOSE)
    if end < 0 and start < 0:
        end = body.find(ANSWER_OPEN)  # untagged reasoning: stop at the answer block, if any
    return body[:end] if end >= 0 else body


def split_steps(text: str) -> list[str]:
    """The reasoning steps of a trace: blank-line separated blocks inside <think>."""
    return [s.strip() for s in re.split(r"\n\s*\n", think_text(text)) if s.strip()]


def answer_block(text: str) -> str | None:
    """Text of the last <answer> block (to </answer> or the end), or None when there is none."""
    start = text.rfind(ANSWER_OPEN)
    if start < 0:
        return None
    body = text[start + len(ANSWER_OPEN) :]
    end = body.find(ANSWER_CLOSE)
    return (body[:end] if end >= 0 else body).strip()


def has_format(text: str) -> bool:
    """True when the whole text is one <think>…</think><answer>…</answer> layout (the format reward)."""
    m = _LAYOUT.match(text)
    return bool(m) and bool(m.group(2).strip()) and text.count(THINK_OPEN) == 1 and text.count(ANSWER_OPEN) == 1


def step_spans(text: str) -> list[tuple[int, int]]:
    """Character span (start, end) in ``text`` of each reasoning step, in order."""
    spans, pos = [], 0
    for step in split_steps(text):
        start = text.index(step, pos)
        pos = start + len(step)
        spans.append((start, pos))
    return spans


def prefix_through_step(text: str, step_index: int) -> str:
    """The completion text up to and including step ``step_index`` (0-based) of its reasoning.

    VeriExit cuts a failed solution here and appends EXIT_PROMPT; the prefix keeps the original
    characters (tags and spacing) so that the continuation sees exactly what the model wrote.
    """
    spans = step_spans(text)
    if not 0 <= step_index < len(spans):
        raise IndexError(f"step {step_index} out of range: the trace has {len(spans)} steps")
    return text[: spans[step_index][1]]
