import pytest

from hsir.traces import EXIT_PROMPT, answer_block, format_trace, has_format, prefix_through_step, split_steps


def test_format_and_split_round_trip():
    t = format_trace(["Step one.", "Step two\nspans lines.", "So the answer is 3."], "3")
    assert t.startswith("<think>\nStep one.") and t.endswith("<answer>\n3\n</answer>")
    assert split_steps(t) == ["Step one.", "Step two\nspans lines.", "So the answer is 3."]
    assert answer_block(t) == "3"
    assert has_format(t)


def test_has_format_rejects_broken_layouts():
    assert not has_format("no tags at all 3")
    assert not has_format("<think>\nx\n</think>\n<answer>\n\n</answer>")  # empty answer
    assert not has_format("<think>\nx\n</think>\n<answer>\n3\n</answer> trailing words")
    assert not has_format("<think>\nx\n</think>\n<answer>\n3\n</answer><answer>4</answer>")


def test_answer_block_of_a_cut_generation_runs_to_the_end():
    assert answer_block("<think>\na\n</think>\n<answer>\n4") == "4"
    assert answer_block("no block") is None


def test_prefix_through_step_keeps_the_original_text():
    text = "<think>\nA is 2.\n\n  B is 3.\n\nSo the answer is 5.\n\nWait, recheck.\n</think>\n<answer>\n5\n</answer>"
    prefix = prefix_through_step(text, 2)
    assert prefix == "<think>\nA is 2.\n\n  B is 3.\n\nSo the answer is 5."
    assert (prefix + EXIT_PROMPT).endswith("So the answer is 5.\n\n</think>\n<answer>\n")
    with pytest.raises(IndexError):
        prefix_through_step(text, 9)
