from collections import Counter

from hsir import synthetic
from hsir.tasks import get_task
from hsir.traces import split_steps


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = list(synthetic.rows("seed", n=50, seed=3))
    b = list(synthetic.rows("seed", n=50, seed=3))
    c = list(synthetic.rows("seed", n=50, seed=4))
    assert a == b
    assert [r["question"] for r in a] != [r["question"] for r in c]


def test_graded_difficulty_and_redundancy_share():
    seed = get_task("synthetic").load("seed")
    ops = Counter(p.meta["n_ops"] for p in seed)
    assert set(ops) == {1, 2, 3, 4, 5} and min(ops.values()) >= 40
    share = sum(p.meta["redundant"] for p in seed) / len(seed)
    assert 0.2 < share < 0.4


def test_every_trace_is_correct_and_states_its_answer_once_or_twice():
    task = get_task("synthetic")
    for p in task.load("seed"):
        for key in ("clean_trace", "redundant_trace"):
            trace = p.meta[key]
            assert task.score(p, trace)
            stating = [s for s in split_steps(trace) if task.states_answer(s, p)]
            assert len(stating) == (2 if key == "redundant_trace" else 1)
        assert p.reasoning == p.meta["redundant_trace" if p.meta["redundant"] else "clean_trace"]
        assert "double-check" in p.meta["redundant_trace"] or "verify" in p.meta["redundant_trace"] \
            or "re-check" in p.meta["redundant_trace"]
        assert len(p.meta["redundant_trace"]) > len(p.meta["clean_trace"])


def test_answers_are_positive_integers_and_splits_do_not_leak():
    task = get_task("synthetic")
    seen = {p.question for s in ("seed", "unlabeled") for p in task.load(s)}
    test = task.load("test")
    assert not seen & {p.question for p in test}
    assert all(int(p.answer) > 0 and str(int(p.answer)) == p.answer for p in test)
    assert all(p.reasoning for p in task.load("unlabeled", limit=20))  # gold traces for SFT-Oracle
    assert all(p.reasoning is None for p in test)


def test_wording_is_varied():
    qs = [p.question for p in get_task("synthetic").load("unlabeled")]
    openings = Counter(" ".join(q.split()[:4]) for q in qs)
    assert len(set(qs)) == len(qs)
    assert len(openings) >= 80  # names x opening templates, not one memorisable sentence
    assert max(openings.values()) / len(qs) < 0.05


def test_rechecks_labels_exactly_the_planted_redundancy():
    seed = get_task("synthetic").load("seed")
    assert all(synthetic.rechecks(p.meta["redundant_trace"]) for p in seed)
    assert not any(synthetic.rechecks(p.meta["clean_trace"]) for p in seed)
    assert [synthetic.rechecks(p.reasoning) for p in seed] == [p.meta["redundant"] for p in seed]


def test_operation_gap_counts_skipped_and_repeated_operations():
    p = get_task("synthetic").load("seed", limit=1)[0]
    n = p.meta["n_ops"]
    assert synthetic.operation_gap(p.meta["clean_trace"], n) == 0
    assert synthetic.operation_gap(p.meta["redundant_trace"], n) == n  # the re-check re-derives every operation
    steps = split_steps(p.meta["clean_trace"])
    skipped = "<think>\n" + "\n\n".join(steps[:1] + steps[2:]) + "\n</think>"  # one operation left out
    assert synthetic.operation_gap(skipped, n) == -1
