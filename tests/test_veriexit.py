import random

import pytest

from hsir import synthetic
from hsir.generate import Completion, GenStats
from hsir.runs import read_json, read_jsonl
from hsir.selfimprove import load_config, run_method
from hsir.tasks import Problem, get_task
from hsir.traces import EXIT_PROMPT, split_steps
from hsir.veriexit import cap_per_query, exit_cut, exit_prefix, prefix_ids, recovery

NUM = get_task("synthetic")

# A model's failed sample on a problem whose gold answer is 58: it reaches 58, then appends an operation the
# problem never had (DESIGN.md §7).
OVERSHOOT = ("<think>\nMia starts with 29 marbles.\n\nMultiplying by 2 gives 29 * 2 = 58 marbles.\n\n"
             "Multiplying by 2 gives 58 * 2 = 116 marbles.\n\nSo the answer is 116.\n</think>\n<answer>\n116\n</answer>")


def gold(answer) -> Problem:
    return Problem("q", "?", str(answer))


# ---- exit_prefix

def test_text_test_fires_on_the_stated_answer_not_on_an_operand():
    text = ("<think>\nLiam has 3 apples.\n\nAdding 14 to 3 gives 17.\n\nWait, 3 + 11 = 14 apples.\n\n"
            "So the answer is 14.\n\nHmm, maybe 15.\n</think>\n<answer>\n15\n</answer>")
    cut = "<think>\nLiam has 3 apples.\n\nAdding 14 to 3 gives 17.\n\nWait, 3 + 11 = 14 apples.\n\nSo the answer is 14."
    assert exit_prefix(text, gold(14), NUM) == cut + EXIT_PROMPT
    assert exit_prefix(text, gold(17), NUM) is None  # 17 is a result, never stated as the answer


def test_result_test_fires_on_the_value_a_step_arrives_at():
    cut = "<think>\nMia starts with 29 marbles.\n\nMultiplying by 2 gives 29 * 2 = 58 marbles."
    assert exit_prefix(OVERSHOOT, gold(58), NUM, "result") == cut + EXIT_PROMPT
    assert exit_prefix(OVERSHOOT, gold(58), NUM, "text") is None  # the paper's test recovers nothing here
    words = "<think>\nMia has 29 marbles.\n\nMultiplying 29 by 2 gives 58 marbles.\n\nThen 116.\n</think>"
    assert exit_cut(words, gold(58), NUM, "result") == "<think>\nMia has 29 marbles.\n\nMultiplying 29 by 2 gives 58 marbles."


def test_result_test_ignores_an_operand_equal_to_the_answer():
    text = ("<think>\nMia starts with 12 marbles.\n\nThen she adds 58 to 12, giving 70.\n\n"
            "Multiplying by 2 gives 58 * 2.\n\nSo the answer is 70.\n</think>\n<answer>\n70\n</answer>")
    assert exit_prefix(text, gold(58), NUM, "result") is None


def test_prefix_keeps_original_characters_and_works_without_the_closing_tag():
    text = "<think>\n  Mia has 29 marbles.  \n \n\n29 * 2 =   58  \n\nand then more, still thinking"  # cut by the length limit
    got = exit_prefix(text, gold(58), NUM, "result")
    assert got == "<think>\n  Mia has 29 marbles.  \n \n\n29 * 2 =   58" + EXIT_PROMPT
    assert text.startswith(got.removesuffix(EXIT_PROMPT))


def test_first_matching_step_wins_and_nothing_matches_gives_none():
    text = "<think>\nSo the answer is 7.\n\nSo the answer is 7 again.\n</think>\n<answer>\n9\n</answer>"
    assert exit_cut(text, gold(7), NUM) == "<think>\nSo the answer is 7."
    assert exit_prefix(text, gold(8), NUM) is None
    assert exit_prefix("", gold(8), NUM, "result") is None


def test_unknown_step_test_is_named():
    with pytest.raises(ValueError, match="valid step tests: text, result"):
        exit_prefix(OVERSHOOT, gold(58), NUM, "fuzzy")
    with pytest.raises(ValueError, match="'fuzzy'.*text, result"):
        NUM.states_answer("So the answer is 58.", gold(58), how="fuzzy")


# ---- states_answer(how="result") on the testbed's own steps

def _specs(n: int):
    rng = random.Random(7)
    return [synthetic.sample_spec(rng, 1 + i % synthetic.MAX_OPS) for i in range(n)]


def test_every_synthetic_op_step_arrives_at_its_own_value_and_not_its_operand():
    for spec in _specs(300):
        steps = split_steps(synthetic.trace(spec))
        assert len(steps) == len(spec.ops) + 2
        assert NUM.states_answer(steps[0], gold(spec.start), how="result")
        x = spec.start
        for step, (_kind, b, y) in zip(steps[1:-1], spec.ops, strict=True):
            assert NUM.states_answer(step, gold(y), how="result"), step
            assert not NUM.states_answer(step, gold(y), how="text"), step
            for operand in {x, b} - {y}:
                assert not NUM.states_answer(step, gold(operand), how="result"), (step, operand)
            x = y
        assert NUM.states_answer(steps[-2], gold(spec.answer), how="result")  # the last op reaches the gold
        assert NUM.states_answer(steps[-1], gold(spec.answer), how="text")


def test_redundant_trace_recheck_steps_arrive_where_the_clean_ones_do():
    for spec in _specs(60):
        steps = split_steps(synthetic.trace(spec, redundant=True))
        arrived = [s for s in steps if NUM.states_answer(s, gold(spec.answer), how="result")]
        # the last op step, "So the answer is", then again in the re-check: op step, "gives N again", answer
        assert len(arrived) >= 5, steps


def test_result_cut_on_a_synthetic_trace_is_the_gold_trace_through_its_last_op():
    for spec in _specs(50):
        trace = synthetic.trace(spec)
        if spec.start == spec.answer or any(y == spec.answer for _, _, y in spec.ops[:-1]):
            continue  # the answer reached earlier by chance: the cut is earlier, as the rule says
        cut = exit_cut(trace, gold(spec.answer), NUM, "result")
        assert cut == trace[: trace.index("\n\nSo the answer is")]


# ---- prefix_ids

@pytest.fixture(scope="module")
def tok():
    from hsir.models import load_tokenizer

    return load_tokenizer("smoke:tiny-llama")  # SmolLM2's tokenizer, offline


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def reference_run(tokenizer, ids: list[int], text: str) -> int:
    """The longest own run by brute force (a decode per length), without trailing tokens that decode to nothing."""
    decoded = [tokenizer.decode(ids[:k], skip_special_tokens=True) for k in range(len(ids) + 1)]
    k = max(k for k in range(len(ids) + 1) if text.startswith(decoded[k]))
    while k > 0 and decoded[k - 1] == decoded[k]:
        k -= 1
    return k


def test_prefix_ids_continue_the_models_own_tokens_at_a_step_cut(tok):
    ids = encode(tok, OVERSHOOT) + [tok.eos_token_id]
    cut = exit_cut(OVERSHOOT, gold(58), NUM, "result")
    got = prefix_ids(tok, ids, cut)
    k = len(encode(tok, cut))
    assert got[:k] == ids[:k] and tok.decode(ids[:k]) == cut
    assert tok.decode(got) == cut + EXIT_PROMPT
    assert got[k:] == encode(tok, EXIT_PROMPT)


def test_prefix_ids_keep_non_canonical_model_tokens(tok):
    # The model spelled " marbles" as " mar" + "bles"; re-tokenising the text would merge them.
    head, tail = "<think>\nMia has 29 mar", "bles.\n\nSo she has 58 marbles in all.\n\nMore."
    ids = encode(tok, head) + encode(tok, tail)
    assert ids != encode(tok, head + tail)
    cut = exit_cut(head + tail, gold(58), NUM, "result")
    assert cut == "<think>\nMia has 29 marbles.\n\nSo she has 58 marbles in all."
    got = prefix_ids(tok, ids, cut)
    n_own = next(k for k in range(len(ids)) if tok.decode(ids[:k]) == cut)
    assert got == ids[:n_own] + encode(tok, EXIT_PROMPT)
    assert tok.decode(got) == cut + EXIT_PROMPT
    assert got != encode(tok, cut + EXIT_PROMPT)


def test_prefix_ids_when_the_models_token_crosses_the_cut(tok):
    text = "<think>\nMultiplying 29 by 2 gives 58 marbles.\n\nThen more."
    ids = encode(tok, text)
    cut = text[: text.index(" marbles") + len(" marb")]  # inside the token " marbles"
    got = prefix_ids(tok, ids, cut)
    k = ids.index(encode(tok, " marbles")[0])
    assert got[:k] == ids[:k] and got[k] != ids[k]
    assert tok.decode(got) == cut + EXIT_PROMPT


def test_prefix_ids_with_a_tokenizer_that_merges_the_step_break():
    # Qwen2.5's pre-tokenizer lets punctuation absorb newlines, so ".\n\n" is one token that crosses the cut.
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    qwen = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(qwen), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator([OVERSHOOT] * 20, trainer)
    qtok = PreTrainedTokenizerFast(tokenizer_object=bpe)
    ids = encode(qtok, OVERSHOOT)
    merged = qtok.convert_tokens_to_ids(".ĊĊ")
    assert merged in ids
    cut = exit_cut(OVERSHOOT, gold(58), NUM, "result")
    got = prefix_ids(qtok, ids, cut)
    k = ids.index(merged)  # the first ".\n\n" ends step 1; the cut is at the second one
    k = ids.index(merged, k + 1)
    assert got[:k] == ids[:k]
    assert qtok.decode(got) == cut + EXIT_PROMPT
    assert got[k] == merged  # "." re-tokenised together with the exit prompt's "\n\n"


def test_prefix_ids_match_a_brute_force_reference_on_multibyte_text(tok):
    text = "<think>\nNaïve ünïcødé: 漢字 costs 58 € each 🙂.\n\nSo 2 × 58 € = 116 €.\n\nDone ✓\n</think>"
    ids = encode(tok, text) + [tok.eos_token_id]
    assert tok.decode(ids, skip_special_tokens=True) == text
    for cut_at in range(0, len(text) + 1, 3):
        cut = text[:cut_at]
        got = prefix_ids(tok, ids, cut)
        k = reference_run(tok, ids, cut)
        rest = cut[len(tok.decode(ids[:k], skip_special_tokens=True)) :]
        assert got == ids[:k] + encode(tok, rest + EXIT_PROMPT), cut_at
        assert tok.decode(got) == cut + EXIT_PROMPT, cut_at
    whole = prefix_ids(tok, ids, text)
    assert whole == ids[:-1] + encode(tok, EXIT_PROMPT)  # the end-of-sequence token is not carried over


# ---- cap_per_query and recovery

def rows_for(qid: str, n: int) -> list[dict]:
    return [{"qid": qid, "origin": "veriexit" if i % 2 else "sample", "sample": i, "text": f"{qid} solution {i}",
             "correct": True, "n_tokens": 10 + i} for i in range(n)]


def test_cap_per_query_keeps_k_at_random_deterministically():
    rows = rows_for("a", 12) + rows_for("b", 3) + rows_for("c", 10)
    kept = cap_per_query(rows, K=4, seed=0)
    assert kept == cap_per_query(rows, K=4, seed=0)
    assert [sum(r["qid"] == q for r in kept) for q in "abc"] == [4, 3, 4]
    assert [r for r in rows if r["qid"] == "b"] == [r for r in kept if r["qid"] == "b"]
    positions = [rows.index(r) for r in kept]
    assert positions == sorted(positions)  # input order
    choices = {tuple(r["sample"] for r in cap_per_query(rows, 4, seed) if r["qid"] == "a") for seed in range(8)}
    assert len(choices) > 1  # the seed matters
    assert cap_per_query(rows, K=0, seed=0) == []
    with pytest.raises(ValueError):
        cap_per_query(rows, K=-1, seed=0)


def test_cap_per_query_is_independent_of_other_queries_and_row_order():
    a = rows_for("a", 12)
    alone = cap_per_query(a, K=4, seed=3)
    others_first = rows_for("b", 9) + rows_for("c", 7) + a
    shuffled = others_first[:]
    random.Random(1).shuffle(shuffled)
    for rows in (others_first, shuffled):
        mixed = [r for r in cap_per_query(rows, K=4, seed=3) if r["qid"] == "a"]
        assert sorted(r["sample"] for r in mixed) == sorted(r["sample"] for r in alone)


def test_recovery_counts_only_queries_that_had_no_correct_sample():
    new = [{"qid": "a", "correct": True, "n_tokens": 5}, {"qid": "a", "correct": True, "n_tokens": 6},
           {"qid": "b", "correct": False, "n_tokens": 7}, {"qid": "c", "correct": True, "n_tokens": 8}]
    assert recovery({"a", "b"}, new) == {"queries_recovered": 1, "solutions_gained": 3, "tokens": 26, "generations": 4}
    assert recovery(set(), []) == {"queries_recovered": 0, "solutions_gained": 0, "tokens": 0, "generations": 0}


# ---- the answer-driven baseline's hint

def test_hint_ends_the_user_message_and_names_the_gold(tok):
    p = Problem("q", "Mia has 29 marbles and doubles them. How many?", "58")
    hint = NUM.hint(p)
    assert "58" in hint
    user = NUM.messages(p, hint)[-1]["content"]
    assert user.endswith("\n" + hint) and user.startswith(NUM.messages(p)[-1]["content"])
    with_hint, plain = NUM.prompt(p, tok, hint=hint), NUM.prompt(p, tok)
    assert hint in with_hint and "58" not in plain and "Hint" not in plain
    mc = Problem("c", "Sky colour?", "C", choices={"A": "red", "B": "green", "C": "blue", "D": "black"})
    assert "option C" in get_task("medqa").hint(mc) and "option C" in get_task("arc").hint(mc)
    assert get_task("medqa").messages(mc, get_task("medqa").hint(mc))[-1]["content"].endswith(get_task("medqa").hint(mc))


# ---- the loop's VeriExit stage with a model that is sometimes wrong

# Per unlabeled query (by its index): what its K=2 samples are, and for a VeriExit continuation of sample j, the
# J=2 continuations k: "right" states the gold, "wrong" gold + 1, "cut" states the gold but hits the length limit.
SAMPLES = {0: ("right", "overshoot"), 1: ("overshoot", "overshoot"), 2: ("overshoot", "overshoot"), 3: ("miss", "miss")}
CONTINUATIONS = {(0, 1): ("right", "right"), (1, 0): ("wrong", "wrong"), (1, 1): ("right", "wrong"),
                 (2, 0): ("wrong", "wrong"), (2, 1): ("cut", "wrong")}


class SometimesWrong:
    """A scripted model on the synthetic task, deterministic per query, sample and continuation (tables above).

    An "overshoot" sample reaches the gold in its second step ("Adding 1+j gives <gold>"), then doubles it; a "miss"
    never reaches the gold, so VeriExit has no prefix for it. A continuation reads j back from its prefix."""

    backend = "scripted"

    def __init__(self, tokenizer):
        self.model_spec, self.tokenizer, self.dtype, self.stats = "scripted", tokenizer, "fp32", GenStats()
        task = get_task("synthetic")
        self.problems = [p for split in ("unlabeled", "test") for p in task.load(split, limit=4)]
        self.continued: list[tuple[int, int, int, Completion]] = []  # (query, sample j, continuation k, what it gave)

    def _done(self, text: str, cut: bool = False) -> Completion:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return Completion(text, ids, len(ids), cut, "length" if cut else "stop")

    @staticmethod
    def sample(kind: str, gold: int, j: int) -> str:
        steps = {"right": [f"Start with {gold - 1}.", f"Adding 1 gives {gold}."],
                 "overshoot": [f"Start with {gold - 1 - j}.", f"Adding {1 + j} gives {gold}.",
                               f"Multiplying by 2 gives {2 * gold}."],
                 "miss": [f"Start with {gold + 3}.", f"Adding 4 gives {gold + 7}."]}[kind]
        answer = {"right": gold, "overshoot": 2 * gold, "miss": gold + 7}[kind]
        return "<think>\n" + "\n\n".join(steps) + f"\n</think>\n<answer>\n{answer}\n</answer>"

    def generate(self, prompts, cfg):
        out = []
        for prompt in prompts:
            text = prompt if isinstance(prompt, str) else self.tokenizer.decode(prompt)
            [p] = [p for p in self.problems if p.question in text]
            q, gold = int(p.qid.rsplit("-", 1)[1]), int(p.answer)
            if cfg.temperature == 0:  # evaluation
                out.append([self._done(self.sample("right" if q % 2 == 0 else "miss", gold, 0))])
            elif isinstance(prompt, str):  # K samples
                out.append([self._done(self.sample(SAMPLES[q][j], gold, j)) for j in range(cfg.n)])
            else:  # a VeriExit continuation of sample j, read back from the prefix "Adding <1 + j> gives <gold>"
                j = int(text.rsplit("Adding ", 1)[1].split()[0]) - 1
                row = []
                for k, kind in enumerate(CONTINUATIONS[q, j]):
                    row.append(self._done(f"{gold + (kind == 'wrong')}\n</answer>", cut=kind == "cut"))
                    self.continued.append((q, j, k, row[-1]))
                out.append(row)
        return out

    def close(self):
        pass


class ScriptedEngine:
    """The loop's engine interface (``use`` a model, ``close``) with one scripted generator for every model."""

    def __init__(self, gen):
        self.gen, self.swaps = gen, []

    def use(self, model: str):
        return self.gen

    def close(self) -> None:
        pass


def test_loop_counts_exactly_what_veriexit_recovered(tmp_path, tok, smoke_model):
    """VeriExit-only for one round with a model that is right on some queries, prefixes and continuations and
    wrong on others: the rows, ``recovery`` and the loop's report count exactly the recovered queries, the
    solutions gained and the continuations that failed (a length-cut one among them, though it states the gold)."""
    cfg = load_config("smoke", {"root": str(tmp_path), "n_unlabeled": 4, "K": 2, "J": 2, "step_test": "result"})
    gen = SometimesWrong(tok)
    [res] = run_method("VeriExit-only", cfg, ScriptedEngine(gen), log=lambda _: None)
    rows = read_jsonl(tmp_path / "methods" / "VeriExit-only" / "iter_1" / "samples.jsonl")
    sampled, ve = rows[:8], rows[8:]
    assert [(r["qid"], r["origin"], r["correct"]) for r in sampled] == [
        (f"synthetic-unlabeled-{q}", "sample", kind == "right") for q in range(4) for kind in SAMPLES[q]]
    # one prefix per failed sample that reaches the gold (not the misses of query 3), each continued J=2 times
    assert sorted({(q, j) for q, j, _, _ in gen.continued}) == sorted(CONTINUATIONS)
    got = [(int(r["qid"].rsplit("-", 1)[1]), sampled[r["parent"]]["sample"], r["sample"], r["correct"]) for r in ve]
    assert all(r["origin"] == "veriexit" for r in ve)
    assert sorted(got) == sorted((q, j, k, kind == "right") for (q, j), kinds in CONTINUATIONS.items()
                                 for k, kind in enumerate(kinds))
    gold = {p.qid: p for p in gen.problems}
    [cut] = [r for r in ve if r["truncated"]]  # states the gold, but hit the length limit: not correct
    assert cut["pred"] == gold[cut["qid"]].answer and not cut["correct"]
    for r in ve:  # each continues its parent's own text, cut after "Adding 1+j gives <gold>."
        assert r["text"].startswith(exit_prefix(sampled[r["parent"]]["text"], gold[r["qid"]], NUM, "result"))
        assert "Multiplying" not in r["text"]
    # only query 1 had no correct sample and now has one; query 0's gains count as solutions, not recoveries
    recovered = {r["qid"] for r in ve if r["correct"]} - {r["qid"] for r in sampled if r["correct"]}
    assert recovered == {"synthetic-unlabeled-1"}
    failed = {r["qid"] for r in sampled} - {r["qid"] for r in sampled if r["correct"]}
    expected = {"queries_recovered": 1, "solutions_gained": 3, "generations": 10,
                "tokens": sum(c.n_tokens for *_, c in gen.continued)}
    assert recovery(failed, ve) == expected
    assert expected["generations"] - expected["solutions_gained"] == 7  # continuations that failed, the cut one included
    report = read_json(tmp_path / "methods" / "VeriExit-only" / "iter_1" / "sampling.json")
    assert report == {"sampled": 8, "sample_correct": 1, "sample_tokens": sum(r["n_tokens"] for r in sampled),
                      "prefixes": 5} | {f"extra_{k}": v for k, v in expected.items()}
    assert {k: res[k] for k in report} == report  # the results table's row carries the same counts
    # the candidates: query 0's right sample and 2 continuations capped at K=2, query 1's one continuation
    assert read_json(tmp_path / "methods" / "VeriExit-only" / "iter_1" / "selection.json")["candidates"] == 3
