"""The loop on the smoke model with a scripted generator: VeriExit recovers what it should, the filter and the
selection keep what the method says, artifacts resume, and bad settings fail at once, naming the culprit."""

import json

import pytest

from hsir import generate, selection, selfimprove
from hsir.generate import Completion, GenStats
from hsir.methods import METHODS, get_method, run_order
from hsir.models import load_tokenizer
from hsir.results import results_table
from hsir.runs import read_json, read_jsonl
from hsir.selfimprove import LoopConfig, load_config, run_method
from hsir.tasks import get_task


class Scripted:
    """Sample 0 is right; sample 1 reaches the gold answer in a step, then adds an operation (VeriExit's case);
    a continuation after the exit prompt states the gold answer; greedy answers right on even queries."""

    backend = "scripted"

    def __init__(self, model_spec, tokenizer):
        self.model_spec, self.tokenizer, self.dtype = model_spec, tokenizer, "fp32"
        self.stats, self.calls = GenStats(), []
        self.by_question = {p.question: p for split in ("seed", "unlabeled", "test")
                            for p in get_task("synthetic").load(split, limit=16)}

    def _problem(self, prompt):
        text = prompt if isinstance(prompt, str) else self.tokenizer.decode(prompt)
        return next(p for q, p in self.by_question.items() if q in text), text

    def _done(self, text):
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return Completion(text, ids, len(ids), False, "stop")

    def generate(self, prompts, cfg):
        self.calls.append((len(prompts), cfg.n, cfg.temperature))
        out = []
        for prompt in prompts:
            p, text = self._problem(prompt)
            gold = int(p.answer)
            if not isinstance(prompt, str):  # a VeriExit continuation
                out.append([self._done(f"{gold}\n</answer>") for _ in range(cfg.n)])
                continue
            right = f"<think>\nStart with {gold - 1}.\n\nAdding 1 gives {gold}.\n</think>\n<answer>\n{gold}\n</answer>"
            wrong = (f"<think>\nStart with {gold - 1}.\n\nAdding 1 gives {gold}.\n\nMultiplying by 2 gives {2 * gold}.\n"
                     f"</think>\n<answer>\n{2 * gold}\n</answer>")
            if cfg.temperature == 0:
                n_q = int(p.qid.rsplit("-", 1)[1])
                out.append([self._done(right if n_q % 2 == 0 else wrong)])
            else:
                out.append([self._done(right if j % 2 == 0 else wrong) for j in range(cfg.n)])
        return out

    def close(self):
        pass


@pytest.fixture
def scripted(monkeypatch, smoke_model):
    made = []

    def factory(model, backend="auto", **kw):
        made.append(Scripted(model, smoke_model[1]))
        return made[-1]

    monkeypatch.setattr(generate, "make_generator", factory)
    return made


def smoke_cfg(tmp_path, **kw) -> LoopConfig:
    return load_config("smoke", {"root": str(tmp_path)} | kw)


def test_hsir_sft_round_recovers_filters_trains_and_evaluates(tmp_path, scripted):
    cfg = smoke_cfg(tmp_path, T=1)
    [res] = run_method("HSIR-SFT", cfg, log=lambda _: None)
    it = tmp_path / "methods" / "HSIR-SFT" / "iter_1"
    rows = read_jsonl(it / "samples.jsonl")
    sampled = [r for r in rows if r["origin"] == "sample"]
    ve = [r for r in rows if r["origin"] == "veriexit"]
    assert len(sampled) == cfg.n_unlabeled * cfg.K
    # each wrong sample's step "Adding 1 gives <gold>" is cut there and continued J times, correctly
    assert len(ve) == cfg.n_unlabeled * cfg.J and all(r["correct"] for r in ve)
    assert all(r["text"].count("Multiplying") == 0 and r["text"].endswith("</answer>") for r in ve)
    assert all(sampled[r["parent"]]["qid"] == r["qid"] and not sampled[r["parent"]]["correct"] for r in ve)
    sampling = read_json(it / "sampling.json")
    assert sampling["extra_solutions_gained"] == len(ve) and sampling["extra_queries_recovered"] == 0
    # candidates capped at K per query, then InDiv >= tau (a quantile: some dropped, each kept one above it)
    sel = read_json(it / "selection.json")
    assert sel["candidates"] == cfg.n_unlabeled * cfg.K
    train = read_jsonl(it / "train.jsonl")
    seed_rows = [r for r in train if r["origin"] == "seed"]
    kept = [r for r in train if r["origin"] != "seed"]
    assert len(seed_rows) == cfg.n_seed and 0 < len(kept) < sel["candidates"]
    # what the round trains on, by origin, in the sampler's tokens: D_s's traces beside the kept samples
    tok = load_tokenizer(cfg.model)
    seed_tokens = [len(tok(r["completion"][0]["content"], add_special_tokens=False)["input_ids"]) for r in seed_rows]
    composition = sel["train_by_origin"]
    assert composition["seed"] == {"rows": cfg.n_seed, "mean_tokens": round(sum(seed_tokens) / len(seed_tokens), 1)}
    assert composition["all"]["rows"] == len(train) == sum(v["rows"] for k, v in composition.items() if k != "all")
    assert all(r["indiv"] >= sel["tau_value"] and "InDiv" in r["why"] for r in kept)
    assert all(r["completion"][0]["content"].startswith("<think>") for r in kept)
    assert (it / "model" / "model.safetensors").exists()
    assert res["accuracy"] == 0.5 and res["n"] == cfg.n_test  # the scripted greedy answers
    assert res["data_tokens"] == sum(r["n_tokens"] for r in rows)
    stages = [e["stage"] for e in read_jsonl(tmp_path / "methods" / "HSIR-SFT" / "ledger.jsonl")]
    assert stages == ["iter_1/sample", "iter_1/select", "iter_1/train", "iter_1/eval"]


def test_methods_share_m0_samples_and_a_rerun_redoes_nothing(tmp_path, scripted):
    cfg = smoke_cfg(tmp_path, T=1)
    run_method("ReST-EM", cfg, log=lambda _: None)
    calls = sum(len(g.calls) for g in scripted)
    run_method("InDiv-only", cfg, log=lambda _: None)
    # InDiv-only samples M0 exactly as ReST-EM did: the cached samples are reused, only evaluation generates
    assert sum(len(g.calls) for g in scripted) - calls == 1
    a = read_jsonl(tmp_path / "methods" / "ReST-EM" / "iter_1" / "samples.jsonl")
    b = read_jsonl(tmp_path / "methods" / "InDiv-only" / "iter_1" / "samples.jsonl")
    assert a == b
    calls = sum(len(g.calls) for g in scripted)
    run_method("RFT", cfg, log=lambda _: None)  # at T = 1 its budget of K × T samples is M0's K samples
    assert sum(len(g.calls) for g in scripted) - calls == 1
    assert read_jsonl(tmp_path / "methods" / "RFT" / "iter_1" / "samples.jsonl") == a
    # ReST-EM keeps all correct samples; nothing is filtered
    sel = read_json(tmp_path / "methods" / "ReST-EM" / "iter_1" / "selection.json")
    assert sel["kept"] == sel["candidates"] == cfg.n_unlabeled
    before = sum(len(g.calls) for g in scripted)
    ledger = (tmp_path / "methods" / "ReST-EM" / "ledger.jsonl").read_text()
    run_method("ReST-EM", cfg, log=lambda _: None)
    assert sum(len(g.calls) for g in scripted) == before  # every stage skipped on rerun
    assert (tmp_path / "methods" / "ReST-EM" / "ledger.jsonl").read_text() == ledger
    table = results_table(cfg, ["ReST-EM", "InDiv-only"], paper="1a")
    assert list(table["method"]) == ["ReST-EM", "InDiv-only"] and (table["accuracy"] == 0.5).all()
    lo, hi = table["accuracy_ci95"][0]
    assert table["accuracy (%)"][0] == 50.0 and table["95% CI"][0] == f"[{lo * 100:.1f}, {hi * 100:.1f}]"
    assert table["paper GSM8K (1.5B)"][0] == 69.75  # ReST-EM round 1 in the paper's Table 1a
    assert table["paper GSM8K (1.5B)"].isna()[1]  # the paper has no InDiv-only row in Table 1a
    paired = results_table(cfg, ["ReST-EM", "InDiv-only"], vs="ReST-EM")
    assert list(paired["vs ReST-EM (pts)"]) == [0.0, 0.0] and paired["right/wrong only here"][1] == "0/0"
    with pytest.raises(FileNotFoundError, match="STaR"):
        results_table(cfg, ["ReST-EM"], vs="STaR")


def test_paired_difference_resamples_problems_once_for_both():
    from hsir.evaluate import paired_difference

    a = {f"q{i}": i < 60 for i in range(100)}  # right on 0-59
    b = {f"q{i}": 10 <= i < 60 for i in range(100)} | {"extra": True}  # right on 10-59; a problem a lacks
    d = paired_difference(a, b)
    assert d["n"] == 100 and d["diff"] == pytest.approx(0.10) and (d["a_only"], d["b_only"]) == (10, 0)
    lo, hi = d["diff_ci95"]
    assert 0 < lo < 0.10 < hi < 0.2  # a never worse: the paired interval stays above 0
    with pytest.raises(ValueError, match="share no problem"):
        paired_difference({"x": True}, {"y": True})


def test_the_cli_prints_a_finished_table_without_running_anything(tmp_path, scripted, monkeypatch, capsys):
    cfg = smoke_cfg(tmp_path, T=1)
    run_method("ReST-EM", cfg, log=lambda _: None)
    monkeypatch.setattr(selfimprove, "Engine", lambda *a: pytest.fail("--table must not start an engine"))
    calls, _ = sum(len(g.calls) for g in scripted), capsys.readouterr()
    argv = ["--profile", "smoke", "--set", f"root={tmp_path}", "T=1", "--method", "ReST-EM", "STaR", "--table", "1a"]
    assert selfimprove.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(len(g.calls) for g in scripted) == calls
    assert "95% CI" in out[0] and "paper GSM8K (1.5B)" in out[0]
    assert len(out) == 2 and out[1].split()[:2] == ["ReST-EM", "1"]  # STaR has no finished round: no row
    with pytest.raises(SystemExit):
        selfimprove.main(argv[:-1] + ["2"])
    assert "--table '2': no such paper table; valid: 1a, 1b, 3, 5, 7" in capsys.readouterr().err
    assert selfimprove.main(argv[:-1]) == 0  # a bare --table: ours only, no paper columns
    assert "paper" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="valid: 1a, 1b, 3, 5, 7"):
        results_table(cfg, ["ReST-EM"], paper="2")
    # Table 3 (ablations) gives the paper's Qwen2.5-1.5B GSM8K accuracy and tokens; Table 1b has no ReST-EM row
    [row] = results_table(cfg, ["ReST-EM"], paper="3").to_dict("records")
    assert (row["paper GSM8K (1.5B)"], row["paper GSM8K tokens"]) == (69.75, 1382)
    assert "paper GSM8K (1.5B)" not in results_table(cfg, ["ReST-EM"], paper="1b")
    # every paper table with a finished round, as markdown, written without running anything
    from hsir import results

    assert results.main(["--profile", "smoke", "--set", f"root={tmp_path}", "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "## Table 1a" in text and "## Table 3" in text and "## Table 5" not in text  # no GRPO run here
    assert f"--profile smoke --set root={tmp_path} --out" in text  # the file names the command that rebuilds it
    row = next(line for line in text.splitlines() if line.startswith("| ReST-EM | 1 |"))
    kept = read_json(tmp_path / "methods" / "ReST-EM" / "iter_1" / "selection.json")["kept"]
    assert f"| {kept} |" in row and "| 69.75 |" in row  # counts print as integers; the paper's number beside
    assert sum(len(g.calls) for g in scripted) == calls


def test_iterations_sample_from_the_previous_round_and_train_from_m(tmp_path, scripted):
    cfg = smoke_cfg(tmp_path, T=2)
    res = run_method("STaR", cfg, log=lambda _: None)
    assert [r["iteration"] for r in res] == [1, 2]
    folder = tmp_path / "methods" / "STaR"
    assert read_json(folder / "iter_2" / "model" / "sft.json")["base"] == cfg.model  # from M, not M_1
    assert [g.model_spec for g in scripted][:1] == [str(tmp_path / "m0")]
    assert str(folder / "iter_1" / "model") in [g.model_spec for g in scripted]  # round 2 sampled M_1
    greedy_calls = [c for g in scripted for c in g.calls if c[2] == 0]
    assert all(n == 1 for _, n, _ in greedy_calls)  # STaR: one greedy answer per query
    # Table 1a lists both rounds beside the paper's T = 1, 2; the one-round ablation table only the first
    assert list(results_table(cfg, ["STaR"], paper="1a")["iteration"]) == [1, 2]
    assert list(results_table(cfg, ["STaR"], paper="3")["iteration"]) == [1]


def test_selection_rules_pick_one_per_query():
    kept = [{"qid": "a", "length": 5, "readiv": 0.2, "why": "c", "text": "x"},
            {"qid": "a", "length": 3, "readiv": 0.9, "why": "c", "text": "y"},
            {"qid": "b", "length": 4, "readiv": 0.5, "why": "c", "text": "z"},
            {"qid": "b", "length": 4, "readiv": 0.5, "why": "c", "text": "z "}]
    tied = {"z", "z "}  # query b's two candidates tie on length and Eq.3: either, at random with the seed
    for how, first in (("shortest", "y"), ("high_readiv", "y"), ("low_readiv", "x")):
        got = [k["text"] for k in selection.select(how, kept, 0)]
        assert got[0] == first and got[1] in tied and got == [k["text"] for k in selection.select(how, kept, 0)], how
    assert [k["text"] for k in selection.select("dedup", kept, 0)] == ["x", "y", "z"]
    r1, r2 = selection.select("random", kept, 0), selection.select("random", kept, 0)
    assert r1 == r2 and len(r1) == 2
    assert len(selection.select("all", kept, 0)) == 4


def test_bad_settings_fail_at_once_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['KK'\].*valid keys"):
        load_config("smoke", {"KK": 3})
    with pytest.raises(ValueError, match=r"m0_sft: unknown key\(s\) \['learning_rate'\]"):
        load_config("smoke", {"m0_sft": {"learning_rate": 1e-3}})
    with pytest.raises(ValueError, match="indiv_variant 'nope' unknown"):
        load_config("smoke", {"indiv_variant": "nope"})
    with pytest.raises(KeyError, match="unknown method 'HSIR'; valid methods: SFT-Initial"):
        get_method("HSIR")
    with pytest.raises(SystemExit):
        selfimprove.main(["--profile", "smoke", "--method", "nope", "--set", f"root={json.dumps(str(tmp_path))}"])


def test_a_folder_written_under_other_settings_is_refused(tmp_path):
    cfg = smoke_cfg(tmp_path)
    folder = tmp_path / "methods" / "ReST-EM"
    selfimprove.check_identity(folder, get_method("ReST-EM"), cfg)
    selfimprove.check_identity(folder, get_method("ReST-EM"), smoke_cfg(tmp_path, T=5))  # more rounds resume
    with pytest.raises(RuntimeError, match=r"differs in \['K'\]"):
        selfimprove.check_identity(folder, get_method("ReST-EM"), smoke_cfg(tmp_path, K=4))
    with pytest.raises(RuntimeError, match=r"differs in \['method'"):
        selfimprove.check_identity(folder, get_method("STaR"), cfg)
    # a folder written before a setting existed stays valid while that setting keeps its default
    run = read_json(folder / "run.json")
    del run["config"]["data_seed"]
    (folder / "run.json").write_text(json.dumps(run))
    selfimprove.check_identity(folder, get_method("ReST-EM"), cfg)
    with pytest.raises(RuntimeError, match=r"differs in \['data_seed'\]"):
        selfimprove.check_identity(folder, get_method("ReST-EM"), smoke_cfg(tmp_path, data_seed=1))
    # one that recorded its test size (before a grown test set resumed) stays valid at another
    run = read_json(folder / "run.json")
    run["config"]["n_test"] = 2
    (folder / "run.json").write_text(json.dumps(run))
    selfimprove.check_identity(folder, get_method("ReST-EM"), smoke_cfg(tmp_path, n_test=8))


def test_a_larger_test_set_evaluates_a_finished_round_again_and_nothing_else(tmp_path, scripted):
    run_method("ReST-EM", smoke_cfg(tmp_path, T=1, n_test=4), log=lambda _: None)
    before = sum(len(g.calls) for g in scripted)
    [res] = run_method("ReST-EM", smoke_cfg(tmp_path, T=1, n_test=8), log=lambda _: None)  # not refused
    assert sum(len(g.calls) for g in scripted) - before == 1  # one greedy evaluation, no sampling or training
    it = tmp_path / "methods" / "ReST-EM" / "iter_1"
    assert res["n"] == 8 and read_json(it / "metrics.json")["synthetic"]["n"] == 8
    assert len(read_jsonl(it / "eval_synthetic.jsonl")) == 8
    stages = [e["stage"] for e in read_jsonl(tmp_path / "methods" / "ReST-EM" / "ledger.jsonl")]
    assert stages == ["iter_1/sample", "iter_1/select", "iter_1/train", "iter_1/eval", "iter_1/eval"]
    run_method("ReST-EM", smoke_cfg(tmp_path, T=1, n_test=8), log=lambda _: None)
    assert len(read_jsonl(tmp_path / "methods" / "ReST-EM" / "ledger.jsonl")) == 5  # evaluated at 8: skipped


def test_the_evaluation_generates_eval_chunk_problems_a_call_and_a_folder_keeps_its_size(tmp_path, scripted):
    with pytest.raises(ValueError, match="eval_chunk must be at least 1"):
        smoke_cfg(tmp_path, eval_chunk=0)
    [res] = run_method("SFT-Initial", smoke_cfg(tmp_path, n_test=8, eval_chunk=3), log=lambda _: None)
    greedy_calls = [n for g in scripted for n, _, temperature in g.calls if temperature == 0]
    assert greedy_calls == [3, 3, 2] and res["n"] == 8
    assert read_json(tmp_path / "methods" / "SFT-Initial" / "iter_1" / "metrics.json")["synthetic"]["chunk"] == 3
    # greedy texts depend on the batch a problem shares: answers made at another size are another run
    with pytest.raises(RuntimeError, match=r"differs in \['eval_chunk'\]"):
        run_method("SFT-Initial", smoke_cfg(tmp_path, n_test=8, eval_chunk=4), log=lambda _: None)


def test_every_method_entry_is_valid_and_the_table_lists_them():
    from hsir.methods import Method, table

    assert {"SFT-Initial", "SFT-Oracle", "STaR", "ReST-EM", "RFT", "ReGenesis", "HSIR-SFT", "answer-driven",
            "VeriExit-only", "InDiv-only", "length-driven"} <= set(METHODS)
    assert list(table().index) == list(METHODS)
    # a method that starts from another's first round runs after it; the other is added when missing
    assert run_order(["HSIR-SFT+H-GRPO", "GRPO"]) == ["HSIR-SFT", "HSIR-SFT+H-GRPO", "GRPO"]
    assert run_order(["GRPO", "HSIR-SFT", "HSIR-SFT+H-GRPO"]) == ["GRPO", "HSIR-SFT", "HSIR-SFT+H-GRPO"]
    with pytest.raises(ValueError, match="select='best'"):
        Method("x", "", select="best")


def test_veriexit_bench_compares_rates_at_the_same_budget(tmp_path, scripted):
    from hsir.bench.veriexit import veriexit_bench

    res = veriexit_bench("smoke", {"root": str(tmp_path)})
    ve, rs = res["methods"]["veriexit"], res["methods"]["resampling"]
    assert res["hard_queries"] == 1 and ve["prefixes"] == 1 and ve["correct"] == ve["generations"] == 2
    assert res["budget_tokens"] == ve["tokens"] > 0 and rs["generations"] == res["samples_per_query_at_budget"]
    assert res["veriexit_vs_resampling"] == ve["correct_per_1k_tokens"] / rs["correct_per_1k_tokens"]


def _row(qid, origin, req, sample, correct, text=None):
    return {"qid": qid, "origin": origin, "req": req, "sample": sample, "correct": correct, "pred": "1",
            "text": text or f"{qid}-{origin}-{req}-{sample}", "why": "correct"}


def test_pairs_winners_with_random_losers_of_their_own_query():
    winners = [_row("a", "sample", 0, 0, True), _row("a", "veriexit", 0, 1, True),  # several winners, one VeriExit
               _row("b", "sample", 1, 0, True),  # no loser for b
               _row("d", "sample", 3, 0, True)]
    filtered = _row("a", "sample", 0, 3, True)  # a correct candidate the filter dropped: never a loser
    losers = [_row("a", "sample", 0, 2, False), _row("a", "sample", 0, 4, False),
              _row("c", "sample", 2, 0, False),  # no winner for c
              _row("d", "sample", 3, 1, False)]
    pairs = selection.make_pairs(winners, losers, seed=0)
    assert [(p["qid"], p["winner"]) for p in pairs] == [("a", "sample:0:0"), ("a", "veriexit:0:1"), ("d", "sample:3:0")]
    assert all(p["loser"] in {"sample:0:2", "sample:0:4"} for p in pairs[:2]) and pairs[2]["loser"] == "sample:3:1"
    assert all(filtered["text"] not in (p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs)
    assert selection.make_pairs(winners, losers, seed=0) == pairs  # seeded
    assert all("loser: incorrect sample" in p["why"] for p in pairs)


def test_hsir_dpo_round_trains_m_prev_with_dpo_on_pairs(tmp_path, scripted):
    cfg = smoke_cfg(tmp_path, T=1, dpo={"lr": 1e-3, "batch_size": 4, "epochs": 1, "bf16": False})
    run_method("HSIR-DPO", cfg, log=lambda _: None)
    it = tmp_path / "methods" / "HSIR-DPO" / "iter_1"
    pairs = read_jsonl(it / "train.jsonl")
    samples = read_jsonl(it / "samples.jsonl")
    wrong = {r["text"] for r in samples if not r["correct"] and r["origin"] == "sample"}
    assert pairs and all(p["rejected"][0]["content"] in wrong for p in pairs)
    assert all(p["prompt"][-1]["role"] == "user" and "InDiv" in p["why"] for p in pairs)
    rep = read_json(it / "model" / "dpo.json")
    assert rep["base"] == str(tmp_path / "m0") and rep["settings"]["beta"] == 0.1  # from M_{t-1}, β of Eq.2
    assert read_json(it / "selection.json")["pairs"] == len(pairs)


def test_a_dpo_round_without_pairs_keeps_the_previous_model(tmp_path, monkeypatch, smoke_model):
    class AllWrong(Scripted):
        def generate(self, prompts, cfg):
            out = super().generate(prompts, cfg)
            return [[self._done(c.text.replace("<answer>\n", "<answer>\n-")) for c in cs] for cs in out]

    monkeypatch.setattr(generate, "make_generator", lambda model, backend="auto", **kw: AllWrong(model, smoke_model[1]))
    cfg = smoke_cfg(tmp_path, T=1)
    [res] = run_method("IRPO", cfg, log=lambda _: None)
    it = tmp_path / "methods" / "IRPO" / "iter_1"
    assert read_jsonl(it / "train.jsonl") == [] and read_json(it / "model" / "dpo.json")["unchanged"]
    assert res["accuracy"] == 0.0 and (it / "model" / "model.safetensors").exists()


def test_sample_model_samples_the_first_n_queries_under_their_own_key(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from hsir import sampling
    from hsir.loopdata import Data

    task = get_task("synthetic")
    data = Data(task, seed=[], unlabeled=task.load("unlabeled", limit=5), test=[])
    engine = SimpleNamespace(use=lambda model: SimpleNamespace(tokenizer=None))
    monkeypatch.setattr(sampling, "task_requests", lambda task, problems, tok: list(problems))
    monkeypatch.setattr(sampling, "generate_rows", lambda task, reqs, gen, scfg, path: (reqs, path))
    cfg = LoopConfig(root=str(tmp_path))
    some, some_path = sampling.sample_model(cfg, data, engine, "m", "m0", 4, n_queries=2)
    every, every_path = sampling.sample_model(cfg, data, engine, "m", "m0", 4)
    assert some == data.unlabeled[:2] and every == data.unlabeled
    assert some_path != every_path  # a histogram on fewer queries never reads the loop's cached samples
    with pytest.raises(ValueError, match="n_queries"):
        sampling.sample_model(cfg, data, engine, "m", "m0", 4, n_queries=0)


def test_cached_generations_of_a_retrained_model_are_refused(tmp_path):
    from hsir.sampling import generations_path

    cfg = LoopConfig(root=str(tmp_path))
    (tmp_path / "m0").mkdir()
    (tmp_path / "m0" / "sft.json").write_text('{"seconds": 1}')
    path = generations_path(cfg, "m0", "samples", {"n": 8})
    assert path.parent == tmp_path / "generations" / "m0" and (path.parent / "model.json").exists()
    assert generations_path(cfg, "m0", "samples", {"n": 8}) == path  # the same M0: the same cache
    (tmp_path / "m0" / "sft.json").write_text('{"seconds": 2}')  # M0 deleted and trained again
    with pytest.raises(RuntimeError, match="retrained"):
        generations_path(cfg, "m0", "samples", {"n": 8})
    assert generations_path(cfg, "base", "samples", {"n": 8}).parent.name == "base"  # the base model has no report
