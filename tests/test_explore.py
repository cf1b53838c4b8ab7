"""The round explorer on real smoke rounds of HSIR-SFT and HSIR-DPO (the loop, the smoke model's training and InDiv;
a scripted generator writes the solutions, so that every case shows up): every candidate once with its why,
VeriExit's cut as samples.jsonl has it, the static page, the widget's state, and the comparison of two methods."""

import html
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from hsir import explore
from hsir.config import load_config
from hsir.generate import Completion, GenStats
from hsir.runs import read_json, read_jsonl
from hsir.selfimprove import Engine, run_method
from hsir.tasks import get_task
from hsir.traces import EXIT_PROMPT, split_steps
from hsir.veriexit import exit_cut

METHODS = ("HSIR-SFT", "HSIR-DPO")


class Cases:
    """Unlabeled query n: n % 4 == 0 one right and one wrong sample; 1 all wrong after a step that reaches the gold
    answer (VeriExit recovers it); 2 all wrong, never reaching it (no correct sample); 3 all right, short and long
    (no loser: DPO pairs nothing). A continuation states the gold answer. Greedy answers test problem n right when
    n is even, or odd for HSIR-DPO's models, so that the two methods disagree on every problem."""

    backend = "scripted"

    def __init__(self, model_spec, tokenizer):
        self.model_spec, self.tokenizer, self.dtype = model_spec, tokenizer, "fp32"
        self.stats = GenStats()
        task = get_task("synthetic")
        self.by_question = {p.question: p for split in ("unlabeled", "test") for p in task.load(split, limit=8)}

    def _done(self, text):
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return Completion(text, ids, len(ids), False, "stop")

    def _text(self, gold: int, kind: str) -> str:
        body, answer = {
            "right": (f"Start with {gold - 1}.\n\nAdding 1 gives {gold - 1} + 1 = {gold}.", gold),
            "long": (f"Start with {gold - 1}.\n\nAdding 1 gives {gold - 1} + 1 = {gold}.\n\nWait, let me double-check."
                     f"\n\nAgain, {gold - 1} + 1 = {gold}.", gold),
            "reach": (f"Start with {gold - 1}.\n\nAdding 1 gives {gold - 1} + 1 = {gold}.\n\nMultiplying by 2 gives "
                      f"{gold} * 2 = {2 * gold}.", 2 * gold),
            "miss": (f"Start with {gold + 5}.\n\nAdding 1 gives {gold + 5} + 1 = {gold + 6}.", gold + 6),
        }[kind]
        return f"<think>\n{body}\n</think>\n<answer>\n{answer}\n</answer>"

    def generate(self, prompts, cfg):
        out = []
        for prompt in prompts:
            text = prompt if isinstance(prompt, str) else self.tokenizer.decode(prompt)
            p = next(p for q, p in self.by_question.items() if q in text)
            gold, n = int(p.answer), int(p.qid.rsplit("-", 1)[1])
            if not isinstance(prompt, str):  # a VeriExit continuation
                out.append([self._done(f"{gold}\n</answer>") for _ in range(cfg.n)])
            elif cfg.temperature == 0:
                right = n % 2 == ("HSIR-DPO" in str(self.model_spec))
                out.append([self._done(self._text(gold, "right" if right else "miss"))])
            else:
                kinds = {0: ("right", "reach"), 1: ("reach", "reach"), 2: ("miss", "miss"), 3: ("right", "long")}[n % 4]
                out.append([self._done(self._text(gold, kinds[j % 2])) for j in range(cfg.n)])
        return out

    def close(self):
        pass


@pytest.fixture(scope="module")
def root(tmp_path_factory, smoke_model):
    """One smoke round of each method, shared by the module's tests."""
    root = tmp_path_factory.mktemp("explore")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules[Engine.__module__], "make_generator",
                   lambda model, backend="auto", **kw: Cases(model, smoke_model[1]))
        # HSIR-DPO's tau keeps every candidate, so that its all-right query's winners find no loser
        for name, tau in zip(METHODS, ("q0.25", "q0"), strict=True):
            run_method(name, load_config("smoke", {"root": str(root), "T": 1, "tau": tau}), log=lambda _: None)
    return root


def folder(root, method):
    return root / "methods" / method / "iter_1"


def row_id(r):
    return f"{r['origin']}:{r['req']}:{r['sample']}"


@pytest.mark.parametrize("method", METHODS)
def test_every_candidate_appears_once_with_its_why(root, method):
    rnd = explore.load_round(root, method, 1)
    it = folder(root, method)
    rows, train, sel = read_jsonl(it / "samples.jsonl"), read_jsonl(it / "train.jsonl"), read_json(it / "selection.json")
    scored = {s["id"] for s in read_jsonl(it / "scores.jsonl")}
    cands = rnd.candidates()
    ids = [c.id for c in cands]
    assert sorted(ids) == sorted(row_id(r) for r in rows if r["correct"]) and len(set(ids)) == len(ids)
    assert all(c.why and c.status in ("kept", "dropped") for c in cands)
    shown = [s for q in rnd.queries for s in q.samples]
    assert sorted(s.id for s in shown) == sorted(row_id(r) for r in rows)  # every sample, each in one query
    assert all(s.why.startswith("incorrect") and not s.status for s in shown if not s.correct)
    kept = {c.id: c for c in cands if c.status == "kept"}
    if method == "HSIR-SFT":
        picked = {row_id(r): r["why"] for r in train if r["origin"] != "seed"}
        assert len(kept) == sel["kept"] and {i: c.why for i, c in kept.items()} == picked
        assert rnd.other_train == {"seed": len(train) - len(picked)}
    else:
        assert set(kept) == {p["winner"] for p in train} and len(kept) == sel["pairs"]
        unpaired = [c for c in cands if c.drop == "no_pair"]
        assert unpaired and len(kept) + len(unpaired) == sel["kept"]
        assert all(c.qid == "synthetic-unlabeled-3" for c in unpaired)  # the query with no incorrect sample
        for p in train:
            winner = rnd.query(p["qid"]).samples
            loser = next(s for q in rnd.queries for s in q.samples if s.id == p["loser"])
            assert not loser.correct and {"role": "loser", "with": p["winner"], "why": p["why"]} in loser.pairs
            assert any(s.id == p["winner"] and s.pairs for s in winner)
    # the dropped ones, each by the loop's first rule that drops it
    capped = {c.id for c in cands if c.drop == "cap"}
    assert capped == set(ids) - scored and capped  # over K: two queries have more than K = 2 correct rows
    below = {c.id for c in cands if c.drop == "indiv"}
    assert below == {c.id for c in cands if c.id in scored and c.indiv < sel["tau_value"]}
    assert bool(below) == (method == "HSIR-SFT")  # HSIR-DPO's tau (q0) drops none
    assert all(f"< tau {sel['tau_value']:.4f}" in cands[ids.index(i)].why for i in below)
    assert {c.drop for c in cands if c.status == "dropped"} <= {"cap", "indiv", "no_pair"}
    table = rnd.candidates_table()
    assert list(table["id"]) == ids and set(table["status"]) == {"kept", "dropped"}


def test_a_veriexit_rows_cut_is_its_parents_text_through_the_step_that_reached_the_answer(root):
    rnd = explore.load_round(root, "HSIR-SFT", 1)
    rows = read_jsonl(folder(root, "HSIR-SFT") / "samples.jsonl")
    task = get_task("synthetic")
    problems = {p.qid: p for p in task.load("unlabeled", limit=4)}
    by_id = {s.id: s for q in rnd.queries for s in q.samples}
    ve = [r for r in rows if r["origin"] == "veriexit"]
    assert ve
    for r in ve:
        s, parent = by_id[row_id(r)], rows[r["parent"]]
        assert s.parent_id == row_id(parent) and s.id in by_id[s.parent_id].continuations
        assert s.cut == exit_cut(parent["text"], problems[r["qid"]], task, "result")  # the loop's own cut
        assert parent["text"].startswith(s.cut) and r["text"] == s.cut + EXIT_PROMPT + s.continuation
        gold = problems[r["qid"]].answer  # the step that reached it:
        assert split_steps(parent["text"])[s.cut_step] == f"Adding 1 gives {int(gold) - 1} + 1 = {gold}."
        assert by_id[s.parent_id].cut == s.cut and by_id[s.parent_id].cut_step == s.cut_step == 1


def test_queries_carry_their_filters_and_the_testbeds_view(root):
    rnd = explore.load_round(root, "HSIR-SFT", 1)
    flags = {q.qid: q.flags for q in rnd.queries}
    assert "recovered_by_veriexit" in flags["synthetic-unlabeled-1"] and "cut_by_veriexit" in flags["synthetic-unlabeled-0"]
    assert [q.qid for q in rnd.filtered(["no_correct"])] == ["synthetic-unlabeled-2"]
    assert [q.qid for q in rnd.filtered(["recovered_by_veriexit"])] == ["synthetic-unlabeled-1"]
    assert {q.qid for q in rnd.filtered(["dropped_by_indiv"])} == {c.qid for c in rnd.candidates() if c.drop == "indiv"}
    q3 = rnd.query("synthetic-unlabeled-3")
    assert q3.question and q3.gold and q3.meta["n_ops"] >= 1
    long = next(s for s in q3.samples if "double-check" in s.text)
    assert long.rechecks and long.op_gap == 2 - q3.meta["n_ops"]  # two steps with an equation
    assert rnd.step_level  # the smoke profile's step/received-max: one score per solution, steps shown
    with pytest.raises(KeyError, match="valid"):
        rnd.filtered(["nope"])


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.attrs: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.attrs.append((tag, dict(attrs)))


def test_the_static_page_holds_every_query_and_fetches_nothing(root, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert explore.main(["--profile", "smoke", "--root", str(root), "--method", "HSIR-SFT", "--round", "1",
                         "--out", str(out), "--vs", "HSIR-DPO"]) == 0
    page = out.read_text()
    rows = read_jsonl(folder(root, "HSIR-SFT") / "samples.jsonl")
    rnd = explore.load_round(root, "HSIR-SFT", 1, vs="HSIR-DPO")
    assert not re.search(r"https?://", page, re.I) and "@import" not in page
    tags = Tags()
    tags.feed(page)
    assert not [(t, a) for t, a in tags.attrs if "src" in a or (t == "link" and "href" in a)]
    sections = [a for t, a in tags.attrs if t == "section"]
    assert [a["data-flags"] for a in sections] == [" ".join(sorted(q.flags)) for q in rnd.queries]
    assert {r["qid"] for r in rows} == {q.qid for q in rnd.queries} and all(f"<b>{q.qid}</b>" in page for q in rnd.queries)
    assert all(f'data-id="{row_id(r)}"' in page for r in rows)  # every sample
    assert [a["value"] for t, a in tags.attrs if t == "input" and "hsirx-flt" in a.get("class", "")] == list(explore.FILTERS)
    assert "VeriExit cut" in page and "dropped by InDiv" in page and "kept" in page
    cmp_rows = [a["data-side"] for t, a in tags.attrs if t == "tr" and a.get("class") == "cmp"]
    assert sorted(cmp_rows) == sorted(r["side"] for r in rnd.comparison.rows) and cmp_rows
    # a missing round says so and writes nothing
    assert explore.main(["--root", str(root), "--method", "STaR", "--round", "1", "--out", str(tmp_path / "x.html")]) == 1
    assert "no round folder" in capsys.readouterr().out and not (tmp_path / "x.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM, reason="no headless Chromium here (Debian's chromium package)")
def test_the_page_filters_in_a_browser_with_the_network_cut_off(root, tmp_path):
    """The page's own JS, in headless Chromium with every host unresolvable and a dead proxy: the filters preset in
    the address hide exactly the queries the data model filters out."""
    rnd = explore.load_round(root, "HSIR-SFT", 1)
    page = explore.write_page(root, "HSIR-SFT", 1, tmp_path / "page.html")
    for preset in ([], ["no_correct"], ["recovered_by_veriexit", "cut_by_veriexit"], ["no_correct", "cut_by_veriexit"]):
        dom = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
                              "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom",
                              f"{page.as_uri()}#{','.join(preset)}"], capture_output=True, text=True, timeout=120).stdout
        tags = Tags()
        tags.feed(dom)
        shown = [int(a["id"][1:]) for t, a in tags.attrs if t == "section" and "hidden" not in a]
        assert [rnd.queries[i].qid for i in shown] == [q.qid for q in rnd.filtered(preset)], preset


def test_all_text_is_escaped(root):
    rnd = explore.load_round(root, "HSIR-SFT", 1)
    q = rnd.queries[0]
    evil = "<script>alert(1)</script> & <b onload=x>"
    s = replace(q.samples[0], text=f"<think>\n{evil}\n</think>", pred=evil, why=evil)
    page = explore.page_html(replace(rnd, queries=[replace(q, question=evil, samples=[s])]))
    assert evil not in page and html.escape(evil) in page
    assert page.count("<script>") == 1  # the page's own


def test_the_widget_state_follows_its_filters(root):
    st = explore.ExplorerState(root, "HSIR-SFT", 1)
    everyone = [q.qid for q in st.visible()]
    assert everyone == [f"synthetic-unlabeled-{i}" for i in range(4)] and st.query == everyone[0] and not st.message
    st.set_filter("no_correct", True)
    assert [q.qid for q in st.visible()] == ["synthetic-unlabeled-2"] and st.query == "synthetic-unlabeled-2"
    st.set_filter("recovered_by_veriexit", True)
    assert st.visible() == [] and st.query is None and st.current() is None
    st.set_filter("no_correct", False)
    assert [q.qid for q in st.visible()] == ["synthetic-unlabeled-1"] and st.query == "synthetic-unlabeled-1"
    st.set_method("HSIR-DPO")  # the filters stay
    assert st.round.method == "HSIR-DPO" and [q.qid for q in st.visible()] == ["synthetic-unlabeled-1"]
    with pytest.raises(KeyError):
        st.set_query("synthetic-unlabeled-0")
    missing = explore.ExplorerState(root, "STaR", 1)
    assert missing.round is None and "no round folder" in missing.message and missing.visible() == []
    # the widgets drive the same state
    ex = explore.explorer(root, "HSIR-SFT", 1, vs="HSIR-DPO")
    assert ex.query.options and "synthetic-unlabeled-0" in ex.view.value and "right only in" in ex.compare.value
    ex.checks["no_correct"].value = True
    assert ex.state.filters == {"no_correct"} and [v for _, v in ex.query.options] == ["synthetic-unlabeled-2"]
    assert "synthetic-unlabeled-2" in ex.view.value and "synthetic-unlabeled-0" not in ex.view.value
    ex.checks["no_correct"].value = False
    ex.query.value = "synthetic-unlabeled-3"
    assert ex.state.query == "synthetic-unlabeled-3" and "synthetic-unlabeled-3" in ex.view.value
    assert "no round folder" in explore.explorer(root, "STaR", 1).head.value


def test_two_methods_compared_on_the_problems_one_gets_right(root):
    rnd = explore.load_round(root, "HSIR-SFT", 1, vs="HSIR-DPO")
    a = {r["qid"]: r for r in read_jsonl(folder(root, "HSIR-SFT") / "eval_synthetic.jsonl")}
    b = {r["qid"]: r for r in read_jsonl(folder(root, "HSIR-DPO") / "eval_synthetic.jsonl")}
    c = rnd.comparison
    assert c.a == "HSIR-SFT iter_1" and c.b == "HSIR-DPO iter_1" and c.n == len(a)
    assert [r["qid"] for r in c.side("a_only")] == [q for q in a if a[q]["correct"] and not b[q]["correct"]]
    assert [r["qid"] for r in c.side("b_only")] == [q for q in a if b[q]["correct"] and not a[q]["correct"]]
    assert c.side("a_only") and c.side("b_only")  # the scripted greedy answers disagree on every problem
    for r in c.rows:
        assert (r["a_pred"], r["b_pred"]) == (a[r["qid"]]["pred"], b[r["qid"]]["pred"]) and r["question"]
    assert explore.load_round(root, "HSIR-SFT", 1, vs="STaR").comparison is None  # STaR has not run: said in notes
