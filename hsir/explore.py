"""Look inside one round of the loop: every sample of every query, where VeriExit cut it, how each candidate scored,
whether the round kept it and why, and the DPO pair it went into. In JupyterLab (``explorer``, ipywidgets) and as
one self-contained HTML page: ``python -m hsir.explore --profile P --method M --round t --out FILE.html``
(inline CSS and JS, nothing fetched, every text escaped). The data come from ``hsir.explore_data.load_round``,
read from the round's folder alone; ``--vs METHOD`` adds the test problems where one method is right and the
other wrong, both answers side by side.
"""


from __future__ import annotations

import argparse
import html
import math
import sys
from pathlib import Path

from hsir.config import load_config
from hsir.explore_data import FILTERS, ORIGINAL, Comparison, Query, Round, Sample, available_rounds, load_round
from hsir.progress import say
from hsir.runs import write_text

# ------------------------------------------------------------------------------------------------ HTML views

ROOT_CLASS = "hsirx"  # every CSS rule is scoped under it, so the widget's styles stay out of JupyterLab's
CSS = """
.hsirx{font-family:system-ui,sans-serif;font-size:13px;color:#222;line-height:1.4}
.hsirx h1{font-size:18px;margin:4px 0}.hsirx h2{font-size:15px;margin:6px 0;display:inline}
.hsirx .settings,.hsirx .note{color:#555;margin:2px 0}
.hsirx .note{font-style:italic}
.hsirx .bar{position:sticky;top:0;background:#fafafa;border-bottom:1px solid #ccc;padding:6px;z-index:1}
.hsirx .bar label{margin-right:12px}
.hsirx section.query{border:1px solid #ccc;border-radius:4px;margin:10px 0;padding:6px 10px}
.hsirx .qhead{background:#f3f3f3;margin:-6px -10px 6px;padding:6px 10px}
.hsirx .sample{border-left:5px solid #999;margin:6px 0;padding:3px 8px;background:#fff}
.hsirx .sample.right{border-left-color:#2e7d32}.hsirx .sample.wrong{border-left-color:#c62828}
.hsirx .sample.child{margin-left:28px}
.hsirx .badge{display:inline-block;border-radius:3px;padding:0 5px;margin:1px 3px 1px 0;font-size:12px;
 background:#eee;border:1px solid #ccc}
.hsirx .b-right{background:#c8e6c9;border-color:#2e7d32}.hsirx .b-wrong{background:#ffcdd2;border-color:#c62828}
.hsirx .b-kept{background:#2e7d32;color:#fff;border-color:#2e7d32}
.hsirx .b-dropped{background:#ef6c00;color:#fff;border-color:#ef6c00}
.hsirx .b-pending{background:#90a4ae;color:#fff}
.hsirx .b-low{background:#ffcdd2;border-color:#c62828}.hsirx .b-high{background:#c8e6c9;border-color:#2e7d32}
.hsirx .b-cut{background:#fff176;border-color:#f9a825}.hsirx .b-flag{background:#e1f5fe;border-color:#0288d1}
.hsirx .why{color:#333;margin:2px 0}.hsirx .why b{color:#000}
.hsirx ol.steps{margin:3px 0 3px 22px;padding:0}
.hsirx ol.steps li{margin:1px 0;padding:1px 4px;white-space:pre-wrap}
.hsirx li.cut{background:#fff59d;outline:1px solid #f9a825}
.hsirx li.after{color:#888;text-decoration:line-through}
.hsirx li.prefix{color:#555;background:#f5f5f5}
.hsirx .marker{font-size:11px;color:#8d6e00;font-weight:bold}
.hsirx .cont{background:#e3f2fd;border:1px dashed #64b5f6;padding:3px 6px;white-space:pre-wrap;margin:3px 0}
.hsirx pre{white-space:pre-wrap;background:#f7f7f7;padding:4px;margin:2px 0}
.hsirx table.cmp{border-collapse:collapse;width:100%}
.hsirx table.cmp td,.hsirx table.cmp th{border:1px solid #ccc;padding:4px;vertical-align:top;width:33%}
.hsirx td.right{background:#e8f5e9}.hsirx td.wrong{background:#ffebee}
"""

JS = """
function hsirxApply(){
  var on=[].slice.call(document.querySelectorAll('input.hsirx-flt:checked')).map(function(e){return e.value;});
  var text=document.getElementById('hsirx-search').value.toLowerCase();
  var n=0;
  [].slice.call(document.querySelectorAll('section.query')).forEach(function(s){
    var flags=s.getAttribute('data-flags').split(' ');
    var ok=on.every(function(f){return flags.indexOf(f)>=0;})&&(!text||s.getAttribute('data-text').indexOf(text)>=0);
    s.hidden=!ok; if(ok){n++;}
  });
  document.getElementById('hsirx-count').textContent=n;
}
function hsirxStart(){
  var want=decodeURIComponent(location.hash.slice(1)).split(',');
  if(location.hash){
    [].slice.call(document.querySelectorAll('input.hsirx-flt')).forEach(function(e){e.checked=want.indexOf(e.value)>=0;});
  }
  hsirxApply();
}
document.addEventListener('DOMContentLoaded',hsirxStart);
function hsirxCompare(){
  var on=[].slice.call(document.querySelectorAll('input.hsirx-side:checked')).map(function(e){return e.value;});
  [].slice.call(document.querySelectorAll('tr.cmp')).forEach(function(r){
    r.hidden=on.indexOf(r.getAttribute('data-side'))<0;
  });
}
"""


def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def badge(text: str, kind: str = "") -> str:
    return f'<span class="badge {kind}">{esc(text)}</span>'


def score_badges(s: Sample, rnd: Round) -> str:
    out = []
    if s.indiv is not None:
        tau = rnd.selection.get("tau_value")
        low = not math.isfinite(s.indiv) or (tau is not None and s.indiv < tau)
        out.append(badge(f"InDiv {s.indiv:.4f}" + ("" if tau is None else f" {'<' if low else '≥'} tau {tau:.4f}"),
                         "b-low" if low else "b-high"))
    if s.readiv is not None:
        out.append(badge(f"Eq.3 {s.readiv:.4f}"))
    if s.length is not None:
        out.append(badge(f"length {s.length}"))
    if s.op_gap is not None:
        gap = ("skipped an operation" if s.op_gap < 0 else "extra or re-derived steps" if s.op_gap > 0
               else "one step per operation")
        out.append(badge(f"op gap {s.op_gap:+d} ({gap})", "b-flag" if s.op_gap else ""))
    if s.rechecks:
        out.append(badge("re-checks (the planted redundancy)", "b-flag"))
    return "".join(out)


def steps_html(s: Sample) -> str:
    """The sample's steps; VeriExit's cut step marked, what followed it struck, a continuation's prefix greyed."""
    steps = s.steps
    if not steps:
        return f"<pre>{esc(s.text)}</pre>"
    items = []
    for i, step in enumerate(steps):
        cls, mark = "", ""
        if s.cut_step is not None and i == s.cut_step:
            cls, mark = "cut", ' <span class="marker">✂ VeriExit cut: this step reaches the gold answer</span>'
        elif s.cut_step is not None and i > s.cut_step and s.origin != "veriexit":
            cls = "after"
        elif s.origin == "veriexit":
            cls = "prefix"
        items.append(f'<li class="{cls}">{esc(step)}{mark}</li>')
    out = f'<ol class="steps">{"".join(items)}</ol>'
    if s.origin == "veriexit" and s.cut is not None:
        out += f'<div class="cont"><b>continuation after the exit prompt:</b> {esc(s.continuation)}</div>'
    return out


def sample_html(s: Sample, rnd: Round) -> str:
    head = [f"<b>{esc(s.id)}</b>", badge("correct" if s.correct else "wrong", "b-right" if s.correct else "b-wrong"),
            badge(f"answer {s.pred}"), badge(f"{s.n_tokens} tokens")]
    if s.truncated:
        head.append(badge("truncated", "b-wrong"))
    if s.status:
        head.append(badge(s.status + (f" ({s.drop})" if s.drop else ""), f"b-{s.status}"))
    if s.cut_step is not None:
        head.append(badge(f"cut at step {s.cut_step + 1}", "b-cut"))
    head.append(score_badges(s, rnd))
    pairs = "".join(f'<div class="why">DPO pair: <b>{esc(p["role"])}</b> against {esc(p["with"])}</div>' for p in s.pairs)
    if s.status == "kept" and not s.pairs and rnd.method_info.get("trainer") == "dpo":
        pairs = '<div class="why">DPO pair: none</div>'
    cls = "right" if s.correct else "wrong"
    cls += " child" if s.parent_id else ""
    return (f'<div class="sample {cls}" data-id="{esc(s.id)}">{" ".join(head)}'
            f'<div class="why"><b>why:</b> {esc(s.why)}</div>{pairs}{steps_html(s)}'
            f"<details><summary>raw text</summary><pre>{esc(s.text)}</pre></details></div>")


def ordered(q: Query) -> list[Sample]:
    """A query's samples, each cut sample followed by its continuations."""
    by_id = {s.id: s for s in q.samples}
    out = []
    for s in q.samples:
        if s.parent_id and s.parent_id in by_id:
            continue
        out.append(s)
        out += [by_id[c] for c in s.continuations if c in by_id]
    return out


def query_head(q: Query) -> str:
    own = [s for s in q.samples if s.origin in ORIGINAL]
    extra = [s for s in q.samples if s.origin not in ORIGINAL]
    parts = [f"<b>{esc(q.qid)}</b>", badge(f"{sum(s.correct for s in own)}/{len(own)} samples correct")]
    if extra:
        parts.append(badge(f"{sum(s.correct for s in extra)}/{len(extra)} extra rows correct"))
    parts += [badge(f"{q.count('kept')} kept", "b-kept"), badge(f"{q.count('dropped')} dropped", "b-dropped")]
    parts += [badge(FILTERS[f], "b-flag") for f in sorted(q.flags)]
    body = f"<div>{' '.join(parts)}</div>"
    if q.question is not None:
        body += f"<div><b>question:</b> {esc(q.question)}</div><div><b>gold answer:</b> {esc(q.gold)}</div>"
    if q.meta.get("n_ops") is not None:
        body += f"<div><b>testbed:</b> {q.meta['n_ops']} operations ({esc(', '.join(q.meta.get('ops', [])))})</div>"
    return f'<div class="qhead">{body}</div>'


def query_html(q: Query, rnd: Round, anchor: str = "") -> str:
    text = esc(f"{q.qid} {q.question or ''}".lower())
    return (f'<section class="query" id="{esc(anchor)}" data-flags="{" ".join(sorted(q.flags))}" data-text="{text}">'
            f'{query_head(q)}{"".join(sample_html(s, rnd) for s in ordered(q))}</section>')


def round_head(rnd: Round) -> str:
    st, sel = rnd.settings, rnd.selection
    keys = ("task", "K", "J", "step_test", "indiv_variant", "tau", "length_cutoff", "extraction")
    settings = ", ".join(f"{k} {st[k]}" for k in keys if k in st)
    m = rnd.method_info
    method = ", ".join(f"{k} {m.get(k)}" for k in ("sampling", "extra", "filter", "select", "trainer", "cap_k"))
    cands = rnd.candidates()
    parts = [f"<h1>{esc(rnd.label)}</h1>", f'<div class="settings">method: {esc(method)}</div>',
             f'<div class="settings">settings: {esc(settings)}</div>',
             f'<div class="settings">candidates {len(cands)}: kept {sum(s.status == "kept" for s in cands)}, '
             f'dropped {sum(s.status == "dropped" for s in cands)}'
             + (f", tau value {sel['tau_value']:.4f}" if sel.get("tau_value") is not None else "")
             + ("; train.jsonl also has " + ", ".join(f"{n} {esc(k)} rows" for k, n in rnd.other_train.items())
                if rnd.other_train else "") + "</div>"]
    metrics = next(iter(rnd.metrics.values()), None)
    if metrics:
        parts.append(f'<div class="settings">greedy test accuracy {metrics["accuracy"]:.3f} on {metrics["n"]} '
                     f'problems, {metrics["mean_tokens"]:.0f} tokens</div>')
    if rnd.step_level:
        parts.append('<div class="note">step-level InDiv: per-step scores are not recorded (scores.jsonl holds one '
                     "score per solution); each sample shows its steps with that score</div>")
    parts += [f'<div class="note">{esc(n)}</div>' for n in rnd.notes]
    legend = (badge("correct", "b-right") + badge("wrong", "b-wrong") + badge("kept", "b-kept") + badge("dropped", "b-dropped")
              + badge("InDiv ≥ tau", "b-high") + badge("InDiv < tau", "b-low") + badge("VeriExit cut", "b-cut")
              + " steps after the cut are struck; a continuation's prefix is grey, what it wrote is blue")
    parts.append(f'<div class="settings">legend: {legend}</div>')
    return "".join(parts)


def answer_cell(row: dict, who: str, right: bool) -> str:
    return (f'<td class="{"right" if right else "wrong"}"><b>{"right" if right else "wrong"}:</b> {esc(row[who + "_pred"])}'
            f'<details><summary>text</summary><pre>{esc(row[who + "_text"])}</pre></details></td>')


def comparison_html(c: Comparison | None, controls: bool = True) -> str:
    if c is None:
        return ""
    boxes = "".join(f'<label><input type="checkbox" class="hsirx-side" value="{side}" checked '
                    f'onchange="hsirxCompare()"> {esc(label)} ({len(c.side(side))})</label> '
                    for side, label in (("a_only", f"right only in {c.a}"), ("b_only", f"right only in {c.b}")))
    rows = []
    for r in c.rows:
        a_ok = r["side"] == "a_only"
        rows.append(f'<tr class="cmp" data-side="{r["side"]}"><td><b>{esc(r["qid"])}</b><br>{esc(r["question"] or "")}'
                    f"<br>gold: {esc(r['gold'])}</td>{answer_cell(r, 'a', a_ok)}{answer_cell(r, 'b', not a_ok)}</tr>")
    head = (f"<summary><h2>{esc(c.a)} against {esc(c.b)}: {len(c.side('a_only'))} right only in {esc(c.a)}, "
            f"{len(c.side('b_only'))} right only in {esc(c.b)}, of {c.n} test problems</h2></summary>")
    table = (f'<table class="cmp"><tr><th>problem</th><th>{esc(c.a)}</th><th>{esc(c.b)}</th></tr>{"".join(rows)}</table>'
             if rows else "<div>they agree on every problem</div>")
    return f"<details open>{head}{f'<div>{boxes}</div>' if controls and rows else ''}{table}</details>"


def page_html(rnd: Round) -> str:
    """The round as one self-contained HTML document: inline CSS and JS, nothing fetched, all text escaped. Filters
    can be preset in the address: ``page.html#no_correct,dropped_by_indiv``."""
    boxes = "".join(f'<label><input type="checkbox" class="hsirx-flt" value="{k}" onchange="hsirxApply()"> {esc(v)} '
                    f"({len(rnd.filtered([k]))})</label>" for k, v in FILTERS.items())
    bar = (f'<div class="bar">filters (a query shows when it passes every checked one): {boxes}'
           '<input id="hsirx-search" placeholder="query id or words" oninput="hsirxApply()"> '
           f'<span id="hsirx-count">{len(rnd.queries)}</span> of {len(rnd.queries)} queries shown</div>')
    queries = "".join(query_html(q, rnd, f"q{i}") for i, q in enumerate(rnd.queries))
    cmp = f'<div class="compare">{comparison_html(rnd.comparison)}</div>' if rnd.comparison else ""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{esc(rnd.label)}: samples, cuts and scores</title><style>{CSS}</style><script>{JS}</script>"
            f'</head><body><div class="{ROOT_CLASS}">{round_head(rnd)}{cmp}{bar}{queries}</div></body></html>\n')


def write_page(run_root: str | Path, method: str, iteration: int, out: str | Path, vs: str | None = None,
               vs_round: int | None = None) -> Path | None:
    """Write the round's static page to ``out``; None, saying so, when the round has not run."""
    try:
        rnd = load_round(run_root, method, iteration, vs, vs_round)
    except FileNotFoundError as e:
        say(f"no page written: {e}")
        return None
    write_text(out, page_html(rnd))
    return Path(out)


# ------------------------------------------------------------------------------------------------ JupyterLab

class ExplorerState:
    """The explorer's choices as plain Python (method, round, query, filters, the method compared with), so that
    what it shows follows from them testably, without a browser; ``Explorer`` wraps it in widgets."""

    def __init__(self, run_root: str | Path, method: str | None = None, iteration: int | None = None,
                 vs: str | None = None):
        self.run_root, self.vs = Path(run_root), vs
        self.available = available_rounds(self.run_root)
        self.method = method or next(iter(self.available), None)
        self.iteration = iteration or (self.rounds()[0] if self.rounds() else 1)
        self.filters: set[str] = set()
        self.query: str | None = None
        self._cache: dict[tuple, Round | str] = {}
        self._settle()

    def methods(self) -> list[str]:
        return list(dict.fromkeys([*self.available, *([self.method] if self.method else [])]))

    def rounds(self) -> list[int]:
        return self.available.get(self.method, []) if self.method else []

    def _load(self) -> Round | str:
        key = (self.method, self.iteration, self.vs)
        if key not in self._cache:
            try:
                self._cache[key] = load_round(self.run_root, self.method, self.iteration, self.vs)
            except FileNotFoundError as e:
                self._cache[key] = f"{e}. Rounds here: {self.available or 'none'}"
        return self._cache[key]

    @property
    def round(self) -> Round | None:
        got = self._load() if self.method else "no method has run under " + str(self.run_root)
        return got if isinstance(got, Round) else None

    @property
    def message(self) -> str:
        """Why nothing shows, or ''."""
        got = self._load() if self.method else f"no method has run under {self.run_root}"
        return got if isinstance(got, str) else ""

    def visible(self) -> list[Query]:
        rnd = self.round
        return rnd.filtered(self.filters) if rnd else []

    def current(self) -> Query | None:
        return next((q for q in self.visible() if q.qid == self.query), None)

    def _settle(self) -> None:
        qids = [q.qid for q in self.visible()]
        if self.query not in qids:
            self.query = qids[0] if qids else None

    def set_method(self, method: str) -> None:
        self.method = method
        if self.rounds() and self.iteration not in self.rounds():
            self.iteration = self.rounds()[0]
        self._settle()

    def set_round(self, iteration: int) -> None:
        self.iteration = int(iteration)
        self._settle()

    def set_vs(self, vs: str | None) -> None:
        self.vs = vs or None

    def set_filter(self, name: str, on: bool) -> None:
        if name not in FILTERS:
            raise KeyError(f"unknown filter {name!r}; valid: {list(FILTERS)}")
        (self.filters.add if on else self.filters.discard)(name)
        self._settle()

    def set_query(self, qid: str | None) -> None:
        if qid is not None and qid not in [q.qid for q in self.visible()]:
            raise KeyError(f"query {qid!r} is not among those the filters show")
        self.query = qid

    def table(self):
        """The round's per-query table (``Round.table``), or the message saying why there is none."""
        rnd = self.round
        if rnd is None:
            return self.message
        return rnd.table() if rnd.queries else f"{rnd.label} has no queries to show: " + "; ".join(rnd.notes)


def wrap(body: str) -> str:
    return f'<style>{CSS}</style><div class="{ROOT_CLASS}">{body}</div>'


class Explorer:
    """The ipywidgets explorer: method, round, the method to compare with, filters and query, over one
    ``ExplorerState``; the selected query's samples as steps, VeriExit's cut and the scores marked by colour."""

    def __init__(self, state: ExplorerState):
        import ipywidgets as w

        self.state, self._busy = state, False
        self.method = w.Dropdown(description="method", options=state.methods(), value=state.method)
        self.iteration = w.Dropdown(description="round", options=state.rounds() or [state.iteration], value=state.iteration)
        others = list(dict.fromkeys([*state.methods(), *([state.vs] if state.vs else [])]))
        self.vs = w.Dropdown(description="compare with", options=[("(none)", "")] + [(m, m) for m in others],
                             value=state.vs or "")
        self.checks = {k: w.Checkbox(description=v, value=False, indent=False) for k, v in FILTERS.items()}
        self.query = w.Dropdown(description="query", layout=w.Layout(width="60%"))
        self.head, self.view, self.compare = w.HTML(), w.HTML(), w.HTML()
        self.method.observe(lambda ch: self._on(state.set_method, ch["new"]), "value")
        self.iteration.observe(lambda ch: self._on(state.set_round, ch["new"]), "value")
        self.vs.observe(lambda ch: self._on(state.set_vs, ch["new"]), "value")
        for k, box in self.checks.items():
            box.observe(lambda ch, k=k: self._on(lambda on: state.set_filter(k, on), ch["new"]), "value")
        self.query.observe(lambda ch: self._on(state.set_query, ch["new"]), "value")
        self.box = w.VBox([w.HBox([self.method, self.iteration, self.vs]), w.HBox(list(self.checks.values())),
                           self.query, self.head, self.view, self.compare])
        self.refresh()

    def _on(self, setter, value) -> None:
        if not self._busy:
            setter(value)
            self.refresh()

    def refresh(self) -> None:
        """Show what the state says (options, the query's samples, the comparison)."""
        s, self._busy = self.state, True
        try:
            self.iteration.options = s.rounds() or [s.iteration]
            self.iteration.value = s.iteration
            rnd = s.round
            self.query.options = [(f"{q.qid} · {', '.join(sorted(q.flags)) or '-'}", q.qid) for q in s.visible()]
            self.query.value = s.query
            self.head.value = wrap(round_head(rnd) + f"<div>{len(s.visible())} of {len(rnd.queries)} queries pass "
                                   "the filters</div>") if rnd else wrap(f"<b>{esc(s.message)}</b>")
            q = s.current()
            self.view.value = wrap(query_html(q, rnd)) if q and rnd else ""
            self.compare.value = wrap(comparison_html(rnd.comparison, controls=False)) if rnd and rnd.comparison else ""
        finally:
            self._busy = False

    def _repr_mimebundle_(self, **kw):
        return self.box._repr_mimebundle_(**kw)


def explorer(run_root: str | Path, method: str | None = None, iteration: int | None = None,
             vs: str | None = None) -> Explorer:
    """The explorer on ``run_root``'s rounds, opened at ``method``'s round ``iteration``; a missing round is said,
    not raised."""
    return Explorer(ExplorerState(run_root, method, iteration, vs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write one round of a method as a self-contained HTML page.")
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--method", required=True)
    ap.add_argument("--round", type=int, default=1)
    ap.add_argument("--out", required=True, help="the HTML file to write")
    ap.add_argument("--vs", metavar="METHOD", help="also compare the round's test answers with METHOD's")
    ap.add_argument("--vs-round", type=int, help="METHOD's round (default: the same round, else its last)")
    ap.add_argument("--root", help="the run root (default: the profile's runs folder)")
    args = ap.parse_args(argv)
    root = Path(args.root) if args.root else load_config(args.profile).run_root
    out = write_page(root, args.method, args.round, args.out, args.vs, args.vs_round)
    if out is None:
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
