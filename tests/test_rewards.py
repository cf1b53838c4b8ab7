import math

import pytest

from hsir.indiv import indiv_scores
from hsir.rewards import (
    H_GRPO,
    PAPER_VARIANT,
    REWARDS,
    AccuracyReward,
    CosineReward,
    FormatReward,
    InDivReward,
    Long2ShortReward,
    check_groups,
    completion_text,
    cosine_reward,
    long2short,
    make_reward,
    make_rewards,
    normalise_group,
)
from hsir.traces import format_trace

EOS = 2
TRL_EXTRAS = {"trainer_state": object(), "log_extra": lambda *a, **k: None, "log_metric": lambda *a, **k: None}


def trace(answer, steps=("Two plus two is four.",)):
    return format_trace(list(steps), str(answer))


def ids_of(n, eos=True):
    """Token ids of a generated completion of n content tokens, ending with EOS unless cut by the limit."""
    return [7] * n + ([EOS] if eos else [])


# ---------------------------------------------------------------- Long2Short by hand

@pytest.mark.parametrize("lengths,correct,want", [
    ([10, 20, 30], [True, False, True], [0.5, 0.0, -0.5]),  # λ = 0.5, 0, -0.5; wrong keeps min(0, 0)
    ([10, 20, 30], [False, False, False], [0.0, 0.0, -0.5]),  # all wrong: only the penalty survives
    ([100, 150, 200, 300], [True] * 4, [0.5, 0.25, 0.0, -0.5]),  # all correct
    ([10, 10, 30], [True, True, True], [0.5, 0.5, -0.5]),  # ties share λ
    ([10, 10, 30], [True, False, False], [0.5, 0.0, -0.5]),
    ([5, 5, 5], [True, False, True], [0.0, 0.0, 0.0]),  # zero range: λ = 0 for all
    ([42], [True], [0.0]),  # a group of one has zero range
    ([], [], []),
])
def test_long2short_by_hand(lengths, correct, want):
    assert long2short(lengths, correct) == pytest.approx(want)


def test_long2short_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="lengths"):
        long2short([1, 2], [True])


# ---------------------------------------------------------------- CosFn by hand

def test_cosine_by_hand():
    got = cosine_reward([0, 25, 50, 50, 75, 0, 99, 100, 120, 40], [True, True, True, False, False, False, True, True,
                                                                     False, True],
                        max_len=100, truncated=[False] * 9 + [True])
    want = [
        2.0,  # correct, t = 0: r_0
        1 + 0.5 * (1 + math.cos(math.pi / 4)),  # 1.853553...
        1.5,  # correct, half way: r_T + ½(r_0 - r_T)
        -5.0,  # wrong, half way
        -5 * (1 + math.cos(3 * math.pi / 4)),  # -1.464466...: longer wrong answers are penalised less
        -10.0,  # wrong, t = 0: r_0
        1 + 0.5 * (1 + math.cos(0.99 * math.pi)),  # just under the limit: close to r_T = 1
        -10.0,  # t = T: over the limit, correct or not
        -10.0,  # t > T
        -10.0,  # flagged truncated
    ]
    assert got == pytest.approx(want)
    assert got[1] == pytest.approx(1.8535533905932737) and got[4] == pytest.approx(-1.4644660940672627)


def test_cosine_ties_and_bad_limit():
    assert cosine_reward([30, 30], [True, True], 60) == pytest.approx([1.5, 1.5])
    with pytest.raises(ValueError, match="max_len"):
        cosine_reward([1], [True], 0)
    with pytest.raises(ValueError, match="lengths"):
        cosine_reward([1, 2], [True], 10)


# ---------------------------------------------------------------- group normalisation by hand

@pytest.mark.parametrize("scores,want", [
    ([1.0, 2.0, 4.0], [0.25, 0.5, 1.0]),  # all positive: s / max
    ([1.0, 2.0, 2.0], [0.5, 1.0, 1.0]),  # ties at the max
    ([3.0, 3.0, 3.0], [1.0, 1.0, 1.0]),  # all equal and positive: s / max = 1
    ([-1.0, 1.0, 3.0], [0.0, 0.5, 1.0]),  # a non-positive score: min-max
    ([-3.0, -1.0], [0.0, 1.0]),  # all negative
    ([0.0, 1.0, 2.0], [0.0, 0.5, 1.0]),  # zero counts as non-positive (both readings agree here)
    ([-2.0, -2.0], [1.0, 1.0]),  # zero range: 1.0 each, as the ratio branch gives
    ([0.5, float("nan"), 1.0], [0.5, 0.0, 1.0]),  # NaN (too short) → 0, outside the max
    ([-1.0, float("nan"), 1.0], [0.0, 0.0, 1.0]),
    ([float("nan"), float("nan")], [0.0, 0.0]),
    ([-4.0], [1.0]),
])
def test_normalise_group_by_hand(scores, want):
    got = normalise_group(scores)
    assert got == pytest.approx(want)
    assert all(0.0 <= x <= 1.0 for x in got)


# ---------------------------------------------------------------- groups

def test_check_groups():
    assert check_groups(6, 3, qids=list("aaabbb")) == [range(0, 3), range(3, 6)]
    assert check_groups(4, 2, prompts=["p", "p", "q", "q"]) == [range(0, 2), range(2, 4)]
    with pytest.raises(ValueError, match="whole groups"):
        check_groups(5, 2)
    with pytest.raises(ValueError, match="mix qid"):
        check_groups(6, 2, qids=list("aabccc"))  # a group split across processes: [a a][b c][c c]
    with pytest.raises(ValueError, match="mix prompt"):
        check_groups(4, 2, prompts=[[{"role": "user", "content": "x"}]] + [[{"role": "user", "content": "y"}]] * 3)
    with pytest.raises(ValueError, match="num_generations"):
        check_groups(4, 0)


# ---------------------------------------------------------------- accuracy and format

def test_completion_text_handles_both_formats():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "abc"}]) == "abc"
    with pytest.raises(TypeError):
        completion_text(3)


def test_accuracy_standard_and_conversational():
    acc = AccuracyReward("gsm8k")
    comps = [trace(4), trace(5), "so the answer is 4", "no answer here"]
    got = acc(prompts=["q"] * 4, completions=comps, completion_ids=[ids_of(5)] * 4, answer=["4"] * 4,
              qid=["g1"] * 4, **TRL_EXTRAS)
    assert got == [1.0, 0.0, 1.0, 0.0]
    conv = [[{"role": "assistant", "content": c}] for c in comps]
    assert acc(prompts=[[{"role": "user", "content": "q"}]] * 4, completions=conv, answer=["4"] * 4) == got
    assert acc(completions=[trace("8,000")], answer=[8000]) == [1.0]  # a numeric gold column is fine too


def test_accuracy_gives_nothing_to_a_truncated_rollout():
    acc = AccuracyReward("gsm8k", max_completion_length=6, eos_token_ids=EOS)
    ids = [ids_of(5), ids_of(6, eos=False), ids_of(9, eos=False), ids_of(3, eos=False)]
    # 5 + EOS: stopped at the limit, fine; 6 without EOS: cut; 9: cut; 3 without EOS (a stop string): not cut
    got = acc(completions=[trace(4)] * 4, completion_ids=ids, answer=["4"] * 4)
    assert got == [1.0, 0.0, 0.0, 1.0]
    assert acc.truncated(ids) == [False, True, True, False]


def test_truncation_takes_eos_and_pad_from_a_tokenizer():
    class Tok:
        eos_token_id, pad_token_id = 2, 0

    acc = AccuracyReward("gsm8k", max_completion_length=3, tokenizer=Tok())
    assert acc.truncated([[5, 5, 2], [5, 5, 0], [5, 5, 5]]) == [False, False, True]
    blind = AccuracyReward("gsm8k", max_completion_length=3)  # no EOS known: at the limit counts as cut
    assert blind.truncated([[5, 5, 2], [5, 5]]) == [True, False]


def test_accuracy_for_a_choice_task_needs_choices():
    acc = AccuracyReward("arc")
    choices = {"A": "red", "B": "green", "C": "blue"}
    got = acc(completions=[trace("C"), trace("A"), trace("blue")], answer=["C"] * 3, choices=[choices] * 3)
    assert got == [1.0, 0.0, 1.0]
    # a datasets struct column fills labels a row lacks with None; the hub's label/text lists also work
    padded = {"A": "red", "B": "green", "C": "blue", "D": None}
    lists = {"label": ["1", "2"], "text": ["yes", "no"]}
    assert acc(completions=[trace("D"), trace("2")], answer=["C", "2"], choices=[padded, lists]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="choices"):
        acc(completions=[trace("C")], answer=["C"])
    with pytest.raises(ValueError, match="answer"):
        acc(completions=[trace("C")], choices=[choices])


def test_format_reward():
    fmt = FormatReward()
    comps = [trace(4), "<think>\nx\n</think>\n<answer>\n</answer>", "4", trace(4) + " more", "<think>x</think>"]
    assert fmt(prompts=["q"] * 5, completions=comps, completion_ids=[[1]] * 5, **TRL_EXTRAS) == [1, 0, 0, 0, 0]
    assert fmt(completions=[[{"role": "assistant", "content": trace(4)}]]) == [1.0]


# ---------------------------------------------------------------- Long2Short and CosFn objects

def test_long2short_reward_by_hand():
    l2s = Long2ShortReward("gsm8k", num_generations=4, max_completion_length=40, eos_token_ids=EOS)
    comps = [trace(4), trace(4), trace(5), trace(4)] + [trace(9)] * 4
    ids = [ids_of(10), ids_of(20), ids_of(30), ids_of(40, eos=False)] + [ids_of(12)] * 4
    got = l2s(prompts=["p"] * 4 + ["q"] * 4, completions=comps, completion_ids=ids, answer=["4"] * 4 + ["3"] * 4,
              qid=["a"] * 4 + ["b"] * 4, **TRL_EXTRAS)
    # group a: lengths 10, 20, 30, 40 (EOS not counted): λ = 0.5, 1/6, -1/6, -0.5; the third is wrong and the
    # fourth is correct in text but cut by the limit, so wrong. Group b: all wrong, zero range: 0.
    assert got == pytest.approx([0.5, 1 / 6, -1 / 6, -0.5, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="whole groups"):
        l2s(completions=comps[:6], completion_ids=ids[:6], answer=["4"] * 6, qid=["a"] * 6)
    with pytest.raises(ValueError, match="mix qid"):
        l2s(completions=comps, completion_ids=ids, answer=["4"] * 8, qid=["a"] * 3 + ["b"] * 5)


def test_long2short_reward_measures_with_a_tokenizer_when_ids_are_missing(smoke_model):
    _, tok = smoke_model
    l2s = Long2ShortReward("gsm8k", num_generations=2, tokenizer=tok)
    short, long = trace(4), trace(4, ["Two plus two is four.", "Check: four minus two is two, right."])
    assert l2s(prompts=["p", "p"], completions=[short, long], answer=["4", "4"]) == pytest.approx([0.5, -0.5])
    with pytest.raises(ValueError, match="completion_ids"):
        Long2ShortReward("gsm8k", num_generations=2)(completions=[short, long], answer=["4", "4"])


def test_cosine_reward_object():
    cos = CosineReward("gsm8k", max_completion_length=100, eos_token_ids=EOS)
    comps = [trace(4), trace(5), trace(4), trace(4)]
    ids = [ids_of(50), ids_of(50), ids_of(99), ids_of(100, eos=False)]
    got = cos(prompts=["p"] * 4, completions=comps, completion_ids=ids, answer=["4"] * 4, **TRL_EXTRAS)
    assert got == pytest.approx([1.5, -5.0, 1 + 0.5 * (1 + math.cos(0.99 * math.pi)), -10.0])
    with pytest.raises(ValueError, match="max_completion_length"):
        CosineReward("gsm8k", max_completion_length=None)


# ---------------------------------------------------------------- registry

def test_registry_builds_every_reward_from_one_context(smoke_model):
    model, tok = smoke_model
    context = {"task": "gsm8k", "num_generations": 2, "max_completion_length": 64, "tokenizer": tok, "model": model,
               "variant": "token/plain", "unrelated": 1}
    rewards = make_rewards(REWARDS, **context)
    assert [r.__name__ for r in rewards] == list(REWARDS) == ["accuracy", "format", "long2short", "cosine", "indiv"]
    assert rewards[4].variant == ("none", "max", "gram", "token") and rewards[2].num_generations == 2
    assert rewards[0].eos_token_ids == {tok.eos_token_id, tok.pad_token_id}
    with pytest.raises(TypeError, match="task"):
        make_reward("accuracy")
    with pytest.raises(KeyError, match="unknown reward"):
        make_reward("length")
    assert [n for n, _ in H_GRPO] == ["accuracy", "format", "indiv"] and [w for _, w in H_GRPO] == [1.0, 1.0, 0.2]


# ---------------------------------------------------------------- InDiv reward on the smoke model

SOLUTIONS = [
    trace(4, ["Two plus two is four.", "So the answer is 4."]),
    trace(4, ["Add the two numbers: 2 + 2 = 4.", "Check it: 4 - 2 = 2, right.", "The answer is 4."]),
    trace(5, ["Two plus two is five, I think.", "Two plus two is five, I think."]),
    "4",  # one token: no score → 0
]


def test_indiv_reward_on_the_smoke_model(smoke_model):
    model, tok = smoke_model
    messages = [[{"role": "user", "content": "What is two plus two?"}]] * 4 + [[{"role": "user", "content": "1+1?"}]] * 4
    comps = [[{"role": "assistant", "content": c}] for c in SOLUTIONS + SOLUTIONS[::-1]]
    reward = InDivReward(model, tok, variant=PAPER_VARIANT, num_generations=4)
    logged = {}
    model.train()
    try:
        got = reward(prompts=messages, completions=comps, completion_ids=[[1]] * 8, qid=["a"] * 4 + ["b"] * 4,
                     answer=["4"] * 8, trainer_state=None, log_extra=None, log_metric=logged.__setitem__)
        assert model.training and all(m.training for m in model.modules())  # training mode restored
    finally:
        model.eval()
    assert len(got) == 8 and all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in got)
    assert got[3] == 0.0 and got[4] == 0.0  # the one-token completion, in both groups
    assert max(got[:4]) == 1.0 and max(got[4:]) == 1.0
    # the same scores as the kit's InDiv pass on the chat-templated prompt, then normalised per group
    prompt = tok.apply_chat_template(messages[0], tokenize=False, add_generation_prompt=True)
    raw = indiv_scores(model, tok, [prompt] * 4, SOLUTIONS, *PAPER_VARIANT[:2], 1e-3, *PAPER_VARIANT[2:])
    assert reward.last_raw[:4] == pytest.approx(raw, nan_ok=True)
    assert got[:4] == pytest.approx(normalise_group(raw))
    assert reward.calls == 1 and reward.seconds > 0 and set(logged) == {"indiv/raw_mean", "indiv/seconds"}
    # eval mode stays eval; a string prompt equal to the templated text gives the same rewards
    again = reward(prompts=[prompt] * 4, completions=SOLUTIONS)
    assert not model.training and again == pytest.approx(got[:4]) and reward.calls == 2


def test_indiv_reward_rejects_broken_groups(smoke_model):
    model, tok = smoke_model
    reward = InDivReward(model, tok, variant="step/received-max", num_generations=2)
    with pytest.raises(ValueError, match="whole groups"):
        reward(prompts=["p"] * 3, completions=SOLUTIONS[:3])
    with pytest.raises(ValueError, match="mix qid"):
        reward(prompts=["p"] * 4, completions=SOLUTIONS, qid=["a", "b", "b", "a"])
    with pytest.raises(ValueError, match="mix prompt"):
        reward(prompts=["p", "q", "q", "q"], completions=SOLUTIONS)
    assert reward.calls == 0
    got = reward(prompts=["p"] * 4, completions=SOLUTIONS)  # step granularity: fewer than 2 steps → 0
    assert all(0.0 <= x <= 1.0 for x in got) and got[3] == 0.0
    with pytest.raises(ValueError, match="variant"):
        InDivReward(model, tok, variant=("self", "max", "gram", "sentence"))


# ---------------------------------------------------------------- inside TRL's GRPOTrainer

def test_rewards_inside_trl_grpo_trainer(tmp_path):
    """One GRPO step on a fresh tiny Llama: TRL calls each reward with the keywords and group layout assumed here."""
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from hsir.models import load_model

    model, tok = load_model("smoke:tiny-llama", dtype="fp32", device="cpu")  # not the shared fixture: it trains
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "qid": f"q{i}", "answer": str(2 * i)}
            for i in range(2)]
    seen = []

    def spy(**kwargs):
        seen.append(kwargs)
        return [0.0] * len(kwargs["completions"])

    names = [n for n, _ in H_GRPO]
    rewards = make_rewards(names, task="gsm8k", num_generations=2, max_completion_length=6, tokenizer=tok, model=model)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=6,
                      max_steps=1, use_cpu=True, bf16=False, report_to=[], logging_steps=1, save_strategy="no",
                      reward_weights=[w for _, w in H_GRPO] + [0.0])
    trainer = GRPOTrainer(model=model, reward_funcs=[*rewards, spy], args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tok)
    assert trainer.reward_func_names == [*names, "spy"]
    trainer.train()
    (kw,) = seen
    assert set(kw) == {"prompts", "completions", "completion_ids", "qid", "answer", "trainer_state", "log_extra",
                       "log_metric"}
    qids = kw["qid"]
    assert len(qids) == 4 and qids[0] == qids[1] and qids[2] == qids[3]  # each prompt's G rollouts are contiguous
    assert isinstance(kw["completions"][0], list) and kw["completions"][0][0]["role"] == "assistant"
    assert all(len(ids) <= 6 for ids in kw["completion_ids"])
    log = trainer.state.log_history[0]
    assert {f"rewards/{n}/mean" for n in names} <= set(log) and "indiv/seconds" in log
    assert 0.0 <= log["rewards/indiv/mean"] <= 1.0 and rewards[2].calls == 1 and model.training
