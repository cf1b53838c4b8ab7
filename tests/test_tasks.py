import json

import pytest

from hsir.answers import step_result
from hsir.config import STEP_TESTS
from hsir.tasks import TASKS, DataError, Problem, get_task
from hsir.traces import format_trace

# Rows per local split, from shared/data/SOURCES.md.
EXPECTED_ROWS = {
    ("gsm8k", "train"): 7473, ("gsm8k", "test"): 1319, ("gsm8k", "seed"): 110,
    ("math500", "test"): 500, ("amc23", "test"): 40, ("medqa", "test"): 1273, ("medbullets", "test"): 308,
    ("medxpertqa", "test"): 2450, ("medxpertqa", "dev"): 5,
    ("arc", "train"): 1119, ("arc", "dev"): 299, ("arc", "test"): 1172,
    ("csqa", "train"): 9741, ("csqa", "test"): 1221,
    ("strategyqa", "train"): 1603, ("strategyqa", "test"): 687, ("gpqa", "test"): 198,
}


def wrong_answer(task, p: Problem) -> str:
    if task.kind == "numeric":
        return str(float(p.answer) + 1).removesuffix(".0")
    if task.kind == "math":
        return "\\frac{98765}{4321}"
    if task.kind == "choice":
        return next(label for label in p.choices if label != p.answer)
    return "No" if p.answer == "Yes" else "Yes"


@pytest.mark.parametrize("name,split", sorted(EXPECTED_ROWS))
def test_every_row_loads_and_scores(data_dir, name, split):
    task = get_task(name, data_dir)
    problems = task.load(split)
    assert len(problems) == EXPECTED_ROWS[(name, split)]
    assert len({p.qid for p in problems}) == len(problems), "qids must be unique"
    for p in problems:
        gold = format_trace(["Let me think.", f"So the answer is {p.answer}."], p.answer)
        assert task.score(p, gold), (p.qid, p.answer)
        assert not task.score(p, format_trace(["Hmm."], wrong_answer(task, p))), (p.qid, p.answer)
        if p.choices is not None:
            assert p.answer in p.choices


def test_csqa_and_arc_rows_have_their_own_labels(data_dir):
    arc = get_task("arc", data_dir).load("test")
    digit_rows = [p for p in arc if p.answer.isdigit()]
    assert digit_rows and all(set(p.choices) <= set("12345") for p in digit_rows)
    assert {len(p.choices) for p in arc} - {4}, "some ARC rows have 3 or 5 choices"


def test_gpqa_shuffle_is_fixed_per_question_and_balanced(data_dir):
    a = get_task("gpqa", data_dir).load("test")
    b = get_task("gpqa", data_dir).load("test")
    assert [p.choices for p in a] == [p.choices for p in b]
    counts = {k: sum(p.answer == k for p in a) for k in "ABCD"}
    assert min(counts.values()) >= 30, counts  # not always "A"


def test_r1_seed_traces_are_in_the_trace_format(data_dir):
    task = get_task("gsm8k", data_dir)
    for p in task.load("seed"):
        assert p.reasoning.startswith("<think>\n") and p.reasoning.endswith("</answer>")
        assert task.score(p, p.reasoning)


def test_a_users_seed_traces_reach_training_on_choice_tasks(data_dir, tmp_path):
    """The paper's MedQA (and Table 4's) seed traces are not released: a user adds a ``reasoning`` field to the rows,
    and M0 must train on them (before, the choice readers dropped it and training stopped on the first row)."""
    from hsir.train import sft_rows

    for name, split in (("medqa", "test"), ("arc", "train"), ("csqa", "train")):  # no local MedQA-train
        rel = get_task(name).files[split][0]
        lines = (data_dir / rel).read_text(encoding="utf-8").splitlines()[:3]
        rows = [json.loads(line) | {"reasoning": f"<think>Step {k}.\n\nSo it follows.</think> R1's summary."}
                for k, line in enumerate(lines)]
        (tmp_path / name / rel).parent.mkdir(parents=True)
        (tmp_path / name / rel).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        task = get_task(name, tmp_path / name)
        problems = task.load(split)
        assert [p.reasoning for p in problems] == [
            f"<think>\nStep {k}.\n\nSo it follows.\n</think>\n<answer>\n{p.answer}\n</answer>"
            for k, p in enumerate(problems)], name
        assert all(task.score(p, p.reasoning) for p in problems), name
        assert len(sft_rows(task, problems)) == 3, name


def test_unknown_task_lists_valid_names():
    with pytest.raises(KeyError) as e:
        get_task("gsm9k")
    for name in TASKS:
        assert name in str(e.value)


def test_missing_split_is_named():
    with pytest.raises(KeyError, match="no split 'validation'"):
        get_task("math500").load("validation")


def test_malformed_row_names_file_and_line(tmp_path):
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    good = {"question": "1+1?", "answer": "1+1=2\n#### 2"}
    bad = {"question": "2+2?", "answer": "four, no marker"}
    (folder / "test.jsonl").write_text("\n".join(json.dumps(r) for r in [good, bad, good]) + "\n")
    task = get_task("gsm8k", tmp_path)
    with pytest.raises(DataError, match=r"gsm8k/test\.jsonl:2: .*####"):
        task.load("test")
    got = task.load("test", on_error="skip")
    assert len(got) == 2 and len(got.skipped) == 1 and ":2:" in got.skipped[0]


def test_bad_choice_label_names_the_line(tmp_path):
    folder = tmp_path / "medqa"
    folder.mkdir()
    row = {"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "E", "answer": "z"}
    (folder / "test.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"test\.jsonl:1: .*'E' is not one of"):
        get_task("medqa", tmp_path).load("test")


def test_missing_local_file_offline_names_file_and_hub_id(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"medqa/train\.jsonl.*GBaker/MedQA-USMLE-4-options"):
        get_task("medqa", tmp_path).load("train")


# ---- extraction cases from DESIGN.md §6

NUM = Problem("q", "?", "8000")


@pytest.mark.parametrize("text,ok", [
    ("<think>\nx\n</think>\n<answer>\n\\boxed{8,000}\n</answer>", True),
    ("<answer>8,000.</answer>", True),  # a trailing period must not zero a score
    ("<answer>$8000</answer>", True),
    ("<answer>8000 dollars</answer>", True),
    ("the answer is 8000. Then I add 5 more to get 8005 but that is wrong", True),  # first number after "answer is"
    ("First the answer is 7000. Wait, no: the answer is 8,000.", True),  # the last "answer is"
    ("<answer>7000</answer> though the answer is 8000", False),  # the <answer> block wins
    ("I computed 8000 - 1000 = 7000", False),  # no block, no phrase: the last number
    ("<think>\nthe answer is 8000\n</think>\n<answer>\n", False),  # empty block
])
def test_numeric_extraction(text, ok):
    assert get_task("gsm8k").score(NUM, text) is ok


def test_math_verify_order_and_forms():
    math = get_task("math500")
    p = Problem("m", "?", "\\frac{1}{2}")
    assert math.score(p, "<answer>\\boxed{0.5}</answer>")
    assert math.score(p, "<answer>1/2</answer>")
    assert math.score(p, "so the answer is $\\frac12$.")
    assert not math.score(p, "<answer>\\frac{1}{3}</answer>")
    amc = get_task("amc23")
    assert amc.score(Problem("a", "?", "27"), "<answer>27.0</answer>")


MC = Problem("c", "?", "C", choices={"A": "red", "B": "green", "C": "blue", "D": "black"})


@pytest.mark.parametrize("text,ok", [
    ("<answer>C</answer>", True),
    ("<answer>(C)</answer>", True),
    ("<answer>C. blue</answer>", True),
    ("<answer>blue</answer>", True),  # the option's own text
    ("<answer>The answer is (C).</answer>", True),
    ("A patient with a B-cell issue... so the answer is (C).", True),  # not the first letter seen
    ("I first thought the answer is A, but the answer is C.", True),
    ("<answer>A</answer>", False),
    ("A long discussion without a verdict", False),
    ("So the answer is a bit unclear; maybe C is wrong.", False),  # an article is not option A, nor a guess
])
def test_choice_extraction(text, ok):
    assert get_task("medqa").score(MC, text) is ok


def test_arc_digit_labels():
    p = Problem("d", "?", "2", choices={"1": "x", "2": "y", "3": "z"})
    arc = get_task("arc")
    assert arc.score(p, "<answer>2</answer>") and not arc.score(p, "<answer>3</answer>")
    assert arc.score(p, "so the answer is (2)")


def test_yes_no():
    t = get_task("strategyqa")
    p = Problem("s", "?", "Yes")
    assert t.score(p, "<answer>Yes.</answer>") and t.score(p, "<answer>yes, because</answer>")
    assert not t.score(p, "<answer>No</answer>")
    assert t.score(p, "Thinking... so the answer is yes")


# ---- VeriExit's step test

def test_states_answer_is_a_strict_text_match():
    t = get_task("gsm8k")
    p = Problem("q", "?", "14")
    assert t.states_answer("So the answer is 14.", p)
    assert t.states_answer("Therefore, the final answer is: $14", p)
    assert t.states_answer("Total: \\boxed{14}", p)
    assert not t.states_answer("3 + 11 = 14 apples so far.", p)  # a result that equals the gold is not enough
    assert not t.states_answer("So the answer is 15.", p)


def test_states_answer_for_choices_and_math():
    assert get_task("medqa").states_answer("Thus the answer is (C) blue.", MC)
    assert not get_task("medqa").states_answer("Option C looks good.", MC)
    p = Problem("m", "?", "\\frac{1}{2}")
    assert get_task("math500").states_answer("So the answer is \\frac{1}{2}.", p)
    assert get_task("math500").states_answer("So the answer is $\\frac12$, as required.", p)


@pytest.mark.parametrize("step,value", [
    ("Multiplying 29 by 2 gives 58 marbles.", 58),
    ("29 * 2 = 58", 58),
    ("She has 58 marbles.", 58),  # no marker: the last number
    ("Then she adds 58 to 12, giving 70.", 70),  # an operand before the marker is not the result
    ("Taking away 5 leaves 63 - 5 = 58 marbles.", 58),
    ("Multiplying by 2 gives 58 * 2 = 116 marbles.", 116),
    ("Multiplying by 2 gives 58 * 2.", None),  # an unevaluated expression arrives at nothing
    ("That makes $8,000 in total.", 8000),
    ("116 is too many. So she has 58, which is fine.", 58),  # the last marker with a number after it
    ("Wait, let me double-check.", None),
])
def test_step_result_rule(step, value):
    assert step_result(step) == value


def test_states_answer_result_mode():
    t = get_task("gsm8k")
    p = Problem("q", "?", "14")
    assert STEP_TESTS == ("text", "result")
    assert t.states_answer("3 + 11 = 14 apples so far.", p, how="result")
    assert not t.states_answer("3 + 11 = 14 apples so far.", p)  # the default stays the paper's text match
    assert t.states_answer("So the answer is \\boxed{14}.", p, how="result")
    assert not t.states_answer("Adding 14 to 3 gives 17.", p, how="result")
    assert not get_task("medqa").states_answer("Option C looks good.", MC, how="result")  # text match for choices
    assert get_task("medqa").states_answer("Thus the answer is (C) blue.", MC, how="result")
    with pytest.raises(ValueError, match="valid step tests: text, result"):
        t.states_answer("So the answer is 14.", p, how="loose")


def test_messages_without_hint_are_unchanged():
    p = Problem("q", "How many?", "14")
    t = get_task("gsm8k")
    assert t.messages(p) == t.messages(p, None) == t.messages(p, "")
    assert t.messages(p, t.hint(p))[-1]["content"] == t.messages(p)[-1]["content"] + "\n" + t.hint(p)
    assert t.hint(p) == "Hint: the correct answer is 14. Show the reasoning that leads to it."


def test_strict_extraction_counts_only_the_answer_block():
    lenient, strict = get_task("synthetic"), get_task("synthetic", strict=True)
    p = lenient.load("test", limit=1)[0]
    for text in (f"so the answer is {p.answer}", f"... {p.answer}", f"\\boxed{{{p.answer}}}"):
        assert lenient.score(p, text) and not strict.score(p, text)
    ok = f"<think>\nx\n</think>\n<answer>\n{p.answer}\n</answer>"
    assert strict.score(p, ok) and lenient.score(p, ok)
