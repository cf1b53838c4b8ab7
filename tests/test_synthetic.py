from collections import Counter

from hsir import synthetic
from hsir.config import load_config
from hsir.tasks import get_task
from hsir.traces import split_steps

DRAWN_LIKE_STREAM = {"validation": "test"}


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


def test_validation_split_is_disjoint_from_test_seed_and_unlabeled():
    val = list(synthetic.rows("validation"))
    assert len(val) == synthetic.SIZES["validation"] and val == list(synthetic.rows("validation"))  # reproducible
    assert all(r["qid"].startswith("synthetic-validation-") and "reasoning" not in r for r in val)
    questions = {r["question"] for r in val}
    assert len(questions) == len(val)
    for other, n in (("seed", None), ("unlabeled", None), ("test", synthetic.RESERVED_TEST)):
        rows = list(synthetic.rows(other, n=n))
        assert not questions & {r["question"] for r in rows}, other
        assert not {r["qid"] for r in val} & {r["qid"] for r in rows}, other


def test_validation_skips_test_questions_even_when_its_draws_repeat_them(monkeypatch):
    # natural repeats are rare, so force them: validation drawn from the test split's own random stream
    stream = synthetic._split_rng
    monkeypatch.setattr(synthetic, "_split_rng", lambda seed, split: stream(seed, DRAWN_LIKE_STREAM.get(split, split)))
    val = [r["question"] for r in synthetic.rows("validation", n=20)]
    test = [r["question"] for r in synthetic.rows("test", n=synthetic.RESERVED_TEST + 20)]
    assert val == test[synthetic.RESERVED_TEST:]  # every reserved test question skipped, the rest of the stream kept


def test_validation_split_has_the_test_splits_difficulty_mix(monkeypatch):
    def shares(split: str) -> dict[int, float]:
        ops = Counter(r["meta"]["n_ops"] for r in synthetic.rows(split))
        return {k: ops[k] / sum(ops.values()) for k in range(1, synthetic.MAX_OPS + 1)}

    test, val = shares("test"), shares("validation")
    assert all(abs(test[k] - val[k]) < 0.06 for k in test)  # 500 each: a share's standard error is about 0.018
    # drawn like the test split by construction: a test mix set later carries over to validation, not to D_s
    monkeypatch.setitem(synthetic.MIX, "test", (0, 0, 0, 1, 3))
    hard = Counter(r["meta"]["n_ops"] for r in synthetic.rows("validation", n=200))
    assert set(hard) == {4, 5} and hard[5] > 2 * hard[4]
    assert len({r["meta"]["n_ops"] for r in synthetic.rows("seed", n=100)}) == 5


def test_ood_split_is_harder_than_every_other_split_reproducible_and_disjoint():
    ood = list(synthetic.rows("ood"))
    assert len(ood) == synthetic.SIZES["ood"] and ood == list(synthetic.rows("ood"))  # reproducible
    lo, hi = synthetic.OOD_OPS
    ops = Counter(r["meta"]["n_ops"] for r in ood)
    assert set(ops) == set(range(lo, hi + 1)) and min(ops.values()) >= 100  # every harder difficulty, evenly
    assert lo > synthetic.MAX_OPS
    assert all(r["qid"].startswith("synthetic-ood-") and "reasoning" not in r for r in ood)
    assert all(r["meta"]["n_ops"] == len(r["meta"]["ops"]) and 0 < r["answer"] <= 999 for r in ood)
    questions = {r["question"] for r in ood}
    assert len(questions) == len(ood)
    for other in ("seed", "unlabeled", "test", "validation"):
        rows = list(synthetic.rows(other))
        assert max(r["meta"]["n_ops"] for r in rows) <= synthetic.MAX_OPS < lo, other  # more operations than any
        assert not questions & {r["question"] for r in rows}, other


def test_adding_the_ood_split_left_the_other_splits_unchanged():
    # digests of the whole splits before the ood split existed: its own random stream draws nothing from theirs
    from hsir.config import digest

    before = {"seed": "c3f6644f1016", "unlabeled": "ca6d814737d5", "test": "451c7498da15", "validation": "c6696b30a70d"}
    # the test split's first 500 rows: its size before it grew to 1,000 (test_the_grown_test_split_...)
    assert {s: digest(list(synthetic.rows(s, n=500 if s == "test" else None))) for s in before} == before


def test_the_grown_test_split_keeps_its_first_500_questions():
    grown = list(synthetic.rows("test"))
    assert len(grown) == synthetic.SIZES["test"] >= load_config("embedded").n_test  # the profile evaluates on it
    assert grown[:500] == list(synthetic.rows("test", n=500))  # the runs evaluated on 500 or fewer still compare
    assert grown[499]["question"] == ("Omar starts the day with 25 beads. The number of beads grows 2-fold. A friend "
                                      "gives Omar 10 more beads. A friend gives Omar 20 more beads. How many beads "
                                      "does Omar end up with?")  # the stream's 500th, as before it grew
