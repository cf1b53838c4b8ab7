"""The data model of one round of the loop, for the explorer (``hsir.explore``): every sample of every query, where
VeriExit cut it, how each candidate scored, whether the round kept it and why, and the DPO pair it went into.

The data model (``load_round``) is read from the round's folder alone, ``<run root>/methods/<method>/iter_<t>/``:
samples.jsonl (M_{t-1}'s samples and the extra sampling's rows), scores.jsonl (per scored candidate: length,
InDiv, Eq.3), train.jsonl (the kept rows with their ``why``; for DPO the pairs), selection.json, sampling.json,
eval_*.jsonl and metrics.json, plus the method folder's run.json (the method and settings that wrote them).
Nothing is recomputed with a model. Each query's question, gold answer and testbed meta come from the task named in
run.json where its data loads (the synthetic testbed always does); without them the rest still shows.

Derived, not stored:
- a dropped candidate's why. The loop records why for kept rows only. A correct row missing from scores.jsonl went
  over the K cap of its query; a scored one missing from train.jsonl failed the filter (InDiv below the round's tau,
  or relative length over the cutoff), was not the one picked per query, duplicated a kept text, or (DPO) had no
  incorrect sample of its query to pair with: checked in that order, the loop's order.
- VeriExit's cut. A continuation's text is its parent's text through the step that reached the gold answer, then
  the exit prompt (``hsir.traces.EXIT_PROMPT``), then what the model wrote; the cut is the first part (or the row's
  ``prefix`` less the exit prompt, where a row records it).
- on the synthetic testbed, each sample's operation gap (``hsir.synthetic.operation_gap``: steps with an equation
  minus the problem's operations; below 0 it skipped work, above 0 it added or re-derived some) and whether it
  re-checks itself the way the planted redundancy of the seed traces does (``hsir.synthetic.rechecks``).

Per-step InDiv is not recorded: scores.jsonl holds one InDiv per solution, also for a step-level variant (whose
score is built from the steps). The views show each sample's steps (``hsir.traces.split_steps``) with that one
score beside them; they do not recompute per-step scores with a model.

``--vs METHOD`` (``vs=`` in Python) compares the round's greedy test answers with another method's (its same round,
else its last evaluated one): the test problems where one is right and the other wrong, both answers side by side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hsir.methods import get_method
from hsir.rounds import eval_rows
from hsir.runs import read_json, read_jsonl
from hsir.synthetic import operation_gap, rechecks
from hsir.tasks import Problem, get_task
from hsir.traces import EXIT_PROMPT, split_steps

ORIGINAL = ("sample", "greedy", "guideline")  # M_{t-1}'s own samples; other origins are extra sampling
FILTERS = {  # query filters: name -> label (the widget's and the page's checkboxes)
    "dropped_by_indiv": "dropped by InDiv",
    "recovered_by_veriexit": "recovered by VeriExit",
    "no_correct": "no correct sample",
    "cut_by_veriexit": "cut by VeriExit",
}
ONE_PER_QUERY = ("random", "shortest", "high_readiv", "low_readiv")


# ------------------------------------------------------------------------------------------------ the data model

@dataclass
class Sample:
    """One row of samples.jsonl with what the round made of it."""

    id: str  # f"{origin}:{req}:{sample}", the id scores.jsonl and the DPO pairs use
    index: int  # its line in samples.jsonl, which a VeriExit row's ``parent`` names
    qid: str
    origin: str
    text: str
    correct: bool
    pred: str | None
    n_tokens: int
    truncated: bool
    parent_id: str | None = None  # a continuation: the failed sample it continues
    cut: str | None = None  # VeriExit's cut: the (parent's) text through the step that reached the gold answer
    cut_step: int | None = None  # that step's index among the (parent's) steps
    continuations: list[str] = field(default_factory=list)  # a cut sample: the ids of its continuations
    candidate: bool = False  # correct: the round selected from these
    status: str = ""  # kept | dropped | pending (selection not run) | "" (not a candidate)
    drop: str = ""  # why dropped, as a code: cap, indiv, length, select, dedup, no_pair, unscored, unknown
    why: str = ""
    length: int | None = None
    indiv: float | None = None
    readiv: float | None = None
    pairs: list[dict] = field(default_factory=list)  # DPO: {"role": winner | loser, "with": other id, "why": ...}
    op_gap: int | None = None  # synthetic testbed only
    rechecks: bool | None = None  # synthetic testbed only

    @property
    def steps(self) -> list[str]:
        return split_steps(self.text)

    @property
    def continuation(self) -> str:
        """What the model wrote after VeriExit's exit prompt (empty for other rows)."""
        return self.text[len(self.cut) + len(EXIT_PROMPT):] if self.origin == "veriexit" and self.cut is not None else ""


@dataclass
class Query:
    qid: str
    question: str | None
    gold: str | None
    meta: dict
    samples: list[Sample]

    @property
    def flags(self) -> set[str]:
        """The ``FILTERS`` this query passes."""
        own = [s for s in self.samples if s.origin in ORIGINAL]
        out = set()
        if any(s.drop == "indiv" for s in self.samples):
            out.add("dropped_by_indiv")
        if not any(s.correct for s in own) and any(s.correct for s in self.samples if s.origin == "veriexit"):
            out.add("recovered_by_veriexit")
        if not any(s.correct for s in self.samples):
            out.add("no_correct")
        if any(s.origin == "veriexit" for s in self.samples):
            out.add("cut_by_veriexit")
        return out

    def count(self, status: str) -> int:
        return sum(s.status == status for s in self.samples)


@dataclass
class Comparison:
    """The test problems where this round and another method's round disagree (greedy evaluation)."""

    a: str  # "HSIR-SFT iter_1"
    b: str
    n: int  # test problems both answered
    rows: list[dict]  # qid, question, gold, side (a_only | b_only), a_pred, a_text, b_pred, b_text

    def side(self, which: str) -> list[dict]:
        return [r for r in self.rows if r["side"] == which]


@dataclass
class Round:
    method: str
    iteration: int
    folder: Path
    method_info: dict  # the method entry run.json records (hsir.methods.Method as a dict)
    settings: dict  # the loop settings run.json records
    queries: list[Query]
    sampling: dict
    selection: dict
    metrics: dict
    other_train: dict[str, int]  # train.jsonl rows that are no sample of the round: seed traces, oracle traces
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why

    @property
    def label(self) -> str:
        return f"{self.method} iter_{self.iteration}"

    @property
    def step_level(self) -> bool:
        return str(self.settings.get("indiv_variant", "")).startswith("step/")

    def candidates(self) -> list[Sample]:
        return [s for q in self.queries for s in q.samples if s.candidate]

    def query(self, qid: str) -> Query:
        return next(q for q in self.queries if q.qid == qid)

    def filtered(self, flags: Iterable[str] = ()) -> list[Query]:
        """The queries that pass every filter in ``flags`` (names of ``FILTERS``)."""
        flags = set(flags)
        unknown = flags - set(FILTERS)
        if unknown:
            raise KeyError(f"unknown filters {sorted(unknown)}; valid: {list(FILTERS)}")
        return [q for q in self.queries if flags <= q.flags]

    def table(self):
        """One row per query: samples, correct, VeriExit rows, candidates kept and dropped, its filters."""
        import pandas as pd

        cols = ["qid", "samples", "correct", "extra rows", "extra correct", "kept", "dropped", "filters"]
        return pd.DataFrame([{
            "qid": q.qid, "samples": sum(s.origin in ORIGINAL for s in q.samples),
            "correct": sum(s.correct and s.origin in ORIGINAL for s in q.samples),
            "extra rows": sum(s.origin not in ORIGINAL for s in q.samples),
            "extra correct": sum(s.correct and s.origin not in ORIGINAL for s in q.samples),
            "kept": q.count("kept"), "dropped": q.count("dropped"), "filters": ", ".join(sorted(q.flags)),
        } for q in self.queries], columns=cols)

    def candidates_table(self):
        """One row per candidate: its scores, kept or dropped, and why."""
        import pandas as pd

        cols = ("id", "qid", "origin", "length", "indiv", "readiv", "status", "drop", "why")
        return pd.DataFrame([{c: getattr(s, c) for c in cols} for s in self.candidates()], columns=list(cols))


def round_folder(run_root: str | Path, method: str, iteration: int) -> Path:
    return Path(run_root) / "methods" / method / f"iter_{iteration}"


def available_rounds(run_root: str | Path) -> dict[str, list[int]]:
    """Method -> its rounds with samples or an evaluation under ``run_root``."""
    out: dict[str, list[int]] = {}
    for d in sorted((Path(run_root) / "methods").glob("*/iter_*")):
        if d.name[5:].isdigit() and ((d / "samples.jsonl").exists() or (d / "metrics.json").exists()):
            out.setdefault(d.parent.name, []).append(int(d.name[5:]))
    return {m: sorted(ts) for m, ts in out.items()}


def load_round(run_root: str | Path, method: str, iteration: int, vs: str | None = None,
               vs_round: int | None = None) -> Round:
    """The round's data model (module docstring); ``vs``: compare its test answers with that method's round."""
    folder = round_folder(run_root, method, iteration)
    if not folder.is_dir():
        raise FileNotFoundError(f"no round folder {folder}: {method} has not run round {iteration} under {run_root}")
    ident = read_json(folder.parent / "run.json") if (folder.parent / "run.json").exists() else {}
    method_info = ident.get("method") or asdict(get_method(method))
    settings = ident.get("config", {})
    opt = lambda name, read: read(folder / name) if (folder / name).exists() else None
    rows = opt("samples.jsonl", read_jsonl) or []
    scores = {s["id"]: s for s in opt("scores.jsonl", read_jsonl) or []}
    train = opt("train.jsonl", read_jsonl)
    selection = opt("selection.json", read_json) or {}
    notes: list[str] = []
    problems = problems_of(settings, notes)
    samples = [sample_of(i, r) for i, r in enumerate(rows)]
    link_veriexit(samples, rows)
    explain(samples, scores, train, method_info, settings, selection, problems)
    for s in samples:
        meta = problems[s.qid].meta if s.qid in problems else {}
        if "n_ops" in meta:
            s.op_gap, s.rechecks = operation_gap(s.text, meta["n_ops"]), rechecks(s.text)
    by_q: dict[str, list[Sample]] = {}
    for s in samples:
        by_q.setdefault(s.qid, []).append(s)
    queries = [Query(q, getattr(problems.get(q), "question", None), _str(getattr(problems.get(q), "answer", None)),
                     dict(getattr(problems.get(q), "meta", {}) or {}), ss) for q, ss in by_q.items()]
    other: dict[str, int] = {}
    for r in train or []:
        if r.get("origin") in ("seed", "oracle"):
            other[r["origin"]] = other.get(r["origin"], 0) + 1
    rnd = Round(method, iteration, folder, method_info, settings, queries, opt("sampling.json", read_json) or {},
                selection, opt("metrics.json", read_json) or {}, other, notes=notes)
    if not rows:
        notes.append("no samples.jsonl: the method samples nothing itself" if (folder / "metrics.json").exists()
                     else "no samples.jsonl yet: the round's sampling has not finished")
    if vs:
        rnd.comparison = compare(run_root, method, iteration, vs, vs_round, problems, notes)
    return rnd


def _str(x) -> str | None:
    return None if x is None else str(x)


def problems_of(settings: dict, notes: list[str]) -> dict[str, Problem]:
    """The round's D_u and test problems (question, gold answer, meta) from the task it ran on, by qid; empty, with a
    note, where the task's data is not on this machine (the views then show the round's files alone)."""
    if not settings.get("task"):
        notes.append("run.json names no task: questions and gold answers are not shown")
        return {}
    try:
        task = get_task(settings["task"], settings.get("data_dir"))
        out: dict[str, Problem] = {}
        # the whole test split: a round's answers may cover more than the n_test its folder recorded (n_test grows)
        for split, n in ((settings.get("unlabeled_split", "unlabeled"), settings.get("n_unlabeled")),
                         (settings.get("test_split", "test"), None)):
            out |= {p.qid: p for p in task.load(split, limit=n)}
        return out
    except Exception as e:  # noqa: BLE001 - any failure to load data only hides the questions
        notes.append(f"the {settings['task']} problems did not load ({type(e).__name__}: {e}): questions and gold "
                     "answers are not shown")
        return {}


def sample_of(index: int, r: dict) -> Sample:
    return Sample(f"{r['origin']}:{r['req']}:{r['sample']}", index, r["qid"], r["origin"], r.get("text") or "",
                  bool(r.get("correct")), _str(r.get("pred")), int(r.get("n_tokens") or 0), bool(r.get("truncated")))


def veriexit_cut(row: dict, parent_text: str) -> str:
    """A VeriExit row's cut (module docstring); it must be the start of its parent's text, else the files disagree."""
    prefix = row.get("prefix")
    if prefix:
        cut = prefix[: -len(EXIT_PROMPT)] if prefix.endswith(EXIT_PROMPT) else prefix
    else:
        at = row["text"].find(EXIT_PROMPT)
        cut = row["text"][:at] if at >= 0 else row["text"]
    if not parent_text.startswith(cut) or not row["text"].startswith(cut + EXIT_PROMPT):
        raise ValueError(f"VeriExit row {row['origin']}:{row['req']}:{row['sample']} does not continue its parent "
                         f"(row {row.get('parent')} of samples.jsonl) through a step of it")
    return cut


def link_veriexit(samples: Sequence[Sample], rows: Sequence[dict]) -> None:
    """Each VeriExit row's cut and parent; each cut sample's cut and continuations."""
    for s, r in zip(samples, rows, strict=True):
        if s.origin != "veriexit" or r.get("parent") is None:
            continue
        parent = samples[r["parent"]]
        s.parent_id, s.cut = parent.id, veriexit_cut(r, parent.text)
        s.cut_step = len(split_steps(s.cut)) - 1
        parent.cut, parent.cut_step = s.cut, s.cut_step
        parent.continuations.append(s.id)


def explain(samples: Sequence[Sample], scores: dict[str, dict], train: list[dict] | None, method: dict,
            settings: dict, selection: dict, problems: dict[str, Problem]) -> None:
    """Each sample's candidate status, scores, pairs and why: from train.jsonl where kept, derived where dropped."""
    by_id = {s.id: s for s in samples}
    kept_why: dict[str, str] = {}
    for r in train or []:
        if "winner" in r:  # a DPO pair
            kept_why.setdefault(r["winner"], r["why"])
            for role, me, other in (("winner", r["winner"], r["loser"]), ("loser", r["loser"], r["winner"])):
                if me in by_id:
                    by_id[me].pairs.append({"role": role, "with": other, "why": r["why"]})
        elif r.get("req") is not None and r.get("origin") not in ("seed", "oracle"):
            kept_why[f"{r['origin']}:{r['req']}:{r['sample']}"] = r["why"]
    rel = relative_lengths([scores[s.id] for s in samples if s.id in scores])
    n_correct: dict[str, int] = {}
    for s in samples:
        n_correct[s.qid] = n_correct.get(s.qid, 0) + s.correct
    for s in samples:
        if not s.correct:
            s.why = incorrect_why(s, by_id, problems)
            continue
        s.candidate = True
        sc = scores.get(s.id)
        if sc:
            s.length, s.indiv, s.readiv = sc.get("length"), sc.get("indiv"), sc.get("readiv")
        if train is None:
            s.status, s.why = "pending", "correct; the round's selection has not run yet"
        elif s.id in kept_why:
            s.status, s.why = "kept", kept_why[s.id]
        else:
            s.status = "dropped"
            s.drop, s.why = drop_reason(s, sc, rel.get(s.id), method, settings, selection, n_correct[s.qid])


def relative_lengths(scores: Sequence[dict]) -> dict[str, float]:
    """(len - min) / (max - min) among each query's scored candidates, as the length-driven filter computes it."""
    by_q: dict[str, list[dict]] = {}
    for s in scores:
        by_q.setdefault(s["qid"], []).append(s)
    out = {}
    for group in by_q.values():
        lo, hi = min(s["length"] for s in group), max(s["length"] for s in group)
        out |= {s["id"]: 0.0 if hi == lo else (s["length"] - lo) / (hi - lo) for s in group}
    return out


def drop_reason(s: Sample, score: dict | None, rel: float | None, method: dict, settings: dict, selection: dict,
                n_correct: int) -> tuple[str, str]:
    """(code, why) of a correct candidate that is not in train.jsonl: the first of the loop's rules that drops it."""
    if score is None:
        if method.get("cap_k"):
            return "cap", (f"over the cap: its query has {n_correct} correct rows and keeps K = {settings.get('K')} "
                           "at random (cap_per_query), the baselines' budget")
        return "unscored", "correct but not in scores.jsonl (not a candidate of the round)"
    if method.get("filter") == "indiv":
        tau_value = selection.get("tau_value")
        x = s.indiv
        if x is None or not math.isfinite(x) or (tau_value is not None and x < tau_value):
            shown = "none" if x is None else f"{x:.4f}"
            return "indiv", f"dropped by InDiv: {shown} < tau {_num(tau_value)} ({settings.get('tau')})"
    if method.get("filter") == "length" and rel is not None and rel > float(settings.get("length_cutoff", 0.5)):
        return "length", (f"dropped by length: relative length {rel:.2f} > {settings.get('length_cutoff', 0.5)} among "
                          "its query's candidates")
    how = method.get("select")
    if how in ONE_PER_QUERY:
        return "select", f"passed, but another candidate of its query was the one picked ({how})"
    if how == "dedup":
        return "dedup", "the same text (up to spacing) as a kept candidate of its query"
    if how in ("oracle", "none"):
        return "select", f"the method trains on no sampled candidate (select: {how})"
    if method.get("trainer") == "dpo":
        return "no_pair", "kept by the filter, but its query has no incorrect sample to pair it with: in no DPO pair"
    return "unknown", "not in train.jsonl, and no rule of the method explains it"


def _num(x) -> str:
    return "?" if x is None else f"{x:.4f}"


def incorrect_why(s: Sample, by_id: dict[str, Sample], problems: dict[str, Problem]) -> str:
    gold = getattr(problems.get(s.qid), "answer", None)
    why = "incorrect: cut by the length limit" if s.truncated else f"incorrect: answered {s.pred!r}"
    if gold is not None and not s.truncated:
        why += f", gold {str(gold)!r}"
    if s.continuations:
        good = sum(by_id[c].correct for c in s.continuations)
        why += (f"; VeriExit cut it at step {s.cut_step + 1} (reaches the gold answer) and continued it "
                f"{len(s.continuations)} times: {good} correct")
    if s.parent_id:
        why += f"; a VeriExit continuation of {s.parent_id}"
    return why


def compare(run_root: str | Path, method: str, iteration: int, vs: str, vs_round: int | None,
            problems: dict[str, Problem], notes: list[str]) -> Comparison | None:
    """This round's greedy test answers against ``vs``'s (round ``vs_round``, else the same round, else its last
    evaluated one): the problems one gets right and the other wrong."""
    a_dir = round_folder(run_root, method, iteration)
    rounds = [t for t in available_rounds(run_root).get(vs, []) if (round_folder(run_root, vs, t) / "metrics.json").exists()]
    b_t = vs_round or (iteration if iteration in rounds else (rounds[-1] if rounds else None))
    if not (a_dir / "metrics.json").exists() or b_t is None or not (round_folder(run_root, vs, b_t) / "metrics.json").exists():
        notes.append(f"no comparison with {vs}: {method} iter_{iteration} or {vs} has no evaluated round")
        return None
    a = {r["qid"]: r for r in eval_rows(a_dir)}
    b = {r["qid"]: r for r in eval_rows(round_folder(run_root, vs, b_t))}
    common = [q for q in a if q in b]
    rows = []
    for side, want in (("a_only", True), ("b_only", False)):
        for q in common:
            if bool(a[q]["correct"]) == want and bool(b[q]["correct"]) != want:
                p = problems.get(q)
                rows.append({"qid": q, "question": getattr(p, "question", None), "gold": _str(getattr(p, "answer", None)),
                             "side": side, "a_pred": _str(a[q].get("pred")), "a_text": a[q].get("text", ""),
                             "b_pred": _str(b[q].get("pred")), "b_text": b[q].get("text", "")})
    return Comparison(f"{method} iter_{iteration}", f"{vs} iter_{b_t}", len(common), rows)
