"""A cost plan before a run: ``python -m hsir.plan --profile paper [--gpu H200] [--bench FILE]``.

**The plan**: per notebook of a profile and per table cell (method × round, or a notebook's own step), the tokens to
generate (samples, VeriExit continuations, answer-driven resamples, GRPO rollouts, greedy evaluation) and to train
(prompt + completion × epochs; DPO: a pair's two answers with their prompts; GRPO: every rollout), from the loop's
settings and the methods table. Work the kit caches (M0, a model's samples, VeriExit continuations, InDiv scores, a
method a later notebook reruns) is charged once; a cell reusing it names the cell that paid. What no setting fixes
is an ``Assumptions`` field, printed with the plan (a profile's measured shares where it has them,
``PROFILE_ASSUMPTIONS``; ``--assume`` sets any); prompt and seed-trace lengths are measured where the seed split loads.

**Hours** need a bench JSON: ``--bench FILE``, or ``--gpu NAME`` for ``bench/paper-shape-<name>.json`` (written on
that GPU by ``python -m hsir.bench paper-shape``). The fields read, rates over a whole stage::

    {"gpu": "H200", "model": "Qwen2.5-1.5B",
     "stages": {"generate": {"tokens_per_s": ...},  # sampled tokens/s (vLLM where it imports)
                "eval":     {"tokens_per_s": ...},  # greedy tokens/s; optional, default generate's
                "sft":      {"tokens_per_s": ...},  # trained tokens (prompt + completion)/s
                "dpo":      {"tokens_per_s": ...},  # pair tokens (2 prompts + chosen + rejected)/s
                "grpo":     {"seconds_per_step": ..., "tokens_per_step": ...},  # a whole step, rollouts included;
                            # tokens_per_step (optional): the bench's rollout tokens a step, scales to the plan's
                "score":    {"tokens_per_s": ...}}}  # InDiv forward tokens/s; optional, default 3 × sft's

``bench/device-h200.json`` is refused (no ``stages``): it timed the smoke and 135M shapes, not a paper model.

The preflight, what the machine lacks before anything starts, is ``hsir.preflight``.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from hsir import config
from hsir.analysis import subset_size
from hsir.config import ROOT, DPOSettings, GRPOSettings, LoopConfig, SFTSettings, settings_from
from hsir.data import where
from hsir.methods import get_method, run_order, samples_per_query, sampling_key
from hsir.seeds import seed_methods
from hsir.tasks import get_task


@dataclass(frozen=True)
class Assumptions:
    """What the settings leave open; defaults from the paper's M0 on GSM8K (Tables 1, 3) and the kit's R1 traces."""

    sample_fraction: float = 0.7  # mean sampled length / max_new_tokens (~1,666 tokens, capped at 2,048)
    eval_fraction: float = 0.4  # mean greedy length / eval_max_new_tokens (1,666 / 4,096)
    rollout_fraction: float = 0.7  # mean GRPO rollout / max_completion_length
    accuracy: float = 0.64  # share of samples correct, every round (M0: 63.99% on GSM8K)
    solved_queries: float = 0.9  # share of queries with ≥ 1 correct of K (one-per-query selection)
    failed_queries: float = 0.5  # share with ≥ 1 incorrect of K (answer-driven resamples; DPO winners with a loser)
    prefix_rate: float = 0.3  # share of failed samples with a step stating the gold answer (VeriExit)
    continuation_fraction: float = 0.1  # VeriExit continuation / mean sample (the exit prompt asks for the answer)
    recovered_fraction: float = 0.6  # a recovered solution / mean sample (cut at the first step with the answer)
    continuation_accuracy: float = 0.9
    hint_accuracy: float = 0.8  # answer-driven resamples correct
    hint_fraction: float = 0.7  # mean answer-driven resample / max_new_tokens (the paper's: as long as a sample)
    veriexit_cap_keep: float = 1.0  # share of a VeriExit method's candidates its per-query cap of K keeps
    indiv_keep: float = 0.7  # share kept by InDiv ≥ tau
    length_keep: float = 0.7  # share kept by the length-driven filter
    chars_per_token: float = 3.6  # the longest R1 trace: 13,657 characters, 3,810 Qwen tokens (issue 21)
    prompt_tokens: float = 110.0  # system + question + template; measured on the seed split where it loads
    seed_trace_tokens: float = 975.0  # a seed trace cut at max_length; measured on the seed split where it loads


# A profile's own shares where a run of it measured them; other profiles start from the paper's (the defaults above).
# embedded: issue 26's validation pilots (README, "What the whole run costs"); seed 5's ledgers at D_u 512 agree
# (samples 119.5 tokens of 384, 0.31; greedy 103 of 384, 0.27; 238 of 4,096 samples right, 0.058).
PROFILE_ASSUMPTIONS = {
    # rollout_fraction: GRPO's rollouts, 1,370 tokens a step of 4,096 possible in both AMX runs of `make reproduce`
    # (bench/cpu-rates-amx-run.json, -run2.json; the same M0, so the same rollouts); 0.4 before 2026-12-03
    "embedded": Assumptions(sample_fraction=0.314, eval_fraction=0.25, rollout_fraction=0.33, accuracy=0.056,
                            solved_queries=0.2, failed_queries=0.99, prefix_rate=0.053, continuation_fraction=0.064,
                            continuation_accuracy=0.77, indiv_keep=0.66,
                            # seeds 0-2's archived rounds (figures/embedded/rounds/*/methods/*/iter_1): answer-driven's
                            # hinted resamples, 449, 464, 435 of ~2,048 right, 159, 159, 156 tokens each; VeriExit-only's
                            # cap of K kept 640 of 827, 646 of 806, 649 of 850 (continuations crowd a few queries)
                            hint_accuracy=0.22, hint_fraction=0.41, veriexit_cap_keep=0.78),
}


def profile_assumptions(profile: str) -> Assumptions:
    """A profile's measured shares (``PROFILE_ASSUMPTIONS``), else the paper's defaults."""
    return PROFILE_ASSUMPTIONS.get(profile, Assumptions())


GENERATED, TRAINED = ("generate", "eval", "rollout"), ("sft", "dpo", "grpo")  # cell stages; also "score" (InDiv)
ONE_PER_QUERY = ("random", "shortest", "high_readiv", "low_readiv")
KNOWN_PARAMS = {"BAAI/bge-m3": 0.57e9, "embedded:smollm2-135m": 0.135e9, "smoke:tiny-llama": 1e6}
BYTES = {"param": 2, "checkpoint_param": 12, "generated_token": 10}  # bf16 model; weights + Adam; JSONL with ids


@dataclass
class Cell:
    """One table cell (a method's round) or one step of a notebook: tokens by stage, GRPO steps, models written."""

    notebook: str
    name: str
    tokens: dict[str, float] = field(default_factory=dict)
    grpo_steps: int = 0
    models: int = 0
    shared: list[str] = field(default_factory=list)  # cells that paid for work this one reuses

    def add(self, stage: str, n: float, model: bool = False) -> None:
        self.tokens[stage] = self.tokens.get(stage, 0.0) + n
        self.models += model

    def total(self, stages) -> float:
        return sum(self.tokens.get(s, 0.0) for s in stages)


class Planner:
    """The cells of a profile's notebooks; each piece of work the kit caches is charged to the first cell doing it."""

    def __init__(self, cfg: LoopConfig, a: Assumptions, note: str = "", seed_rows: int | None = None):
        self.cfg, self.a, self.paid, self.cells = cfg, a, {}, {}
        self.seed = cfg.seed  # the seed whose cells are being planned: another seed pays its own work, not M0
        self.note, self.seed_rows = note, seed_rows  # how the lengths were found; the seed split's rows here
        self.L = a.sample_fraction * cfg.max_new_tokens  # mean sampled length

    def total(self, stages) -> float:
        return sum(c.total(stages) for cs in self.cells.values() for c in cs)

    def disk_gib(self) -> float:
        """Model folders written and the base model, one training checkpoint at a time, the generations."""
        models = sum(c.models for cs in self.cells.values() for c in cs) + 1
        return (model_params(self.cfg.model) * (models * BYTES["param"] + BYTES["checkpoint_param"])
                + self.total(GENERATED) * BYTES["generated_token"]) / 2**30

    def once(self, cell: Cell, key: tuple, stage: str, n: float, model: bool = False, quiet: bool = False) -> float:
        """Charge ``n`` tokens to ``cell`` unless an earlier cell paid for ``key``; returns ``n`` either way. Work is
        per seed (each seed samples and trains its own), except training M0, which the seeds share (hsir.seeds)."""
        key = self.keyed(key)
        if key not in self.paid:
            self.paid[key] = f"{cell.notebook[:2]} {cell.name}"
            cell.add(stage, n, model)
        elif not quiet and self.paid[key] not in cell.shared:
            cell.shared.append(self.paid[key])
        return n

    def keyed(self, key: tuple) -> tuple:
        """``key`` for the seed being planned: work is per seed, except training M0, which the seeds share."""
        return key if key[0] == "train" else (self.seed, *key)

    def m0(self, cell: Cell, name: str = "m0", rows: int | None = None) -> None:
        """M0 (SFT-Initial) on D_s, or the weaker one on a share of it: built once, for every notebook."""
        s = settings_from(SFTSettings, self.cfg.m0_sft, "m0_sft")
        rows = rows or self.cfg.n_seed
        self.once(cell, ("train", name), "sft", s.epochs * rows * (self.a.prompt_tokens + self.a.seed_trace_tokens),
                  model=True, quiet=True)

    def samples(self, cell: Cell, model: str, kind: str, n: int, queries: int | None = None) -> float:
        """n samples per D_u query (of the first ``queries``) from ``model`` (cached per model and spec); returns how
        many."""
        q = min(queries or self.cfg.n_unlabeled, self.cfg.n_unlabeled)
        return self.once(cell, ("samples", model, kind, n, q), "generate", q * n * self.L) / self.L

    def veriexit(self, cell: Cell, model: str, samples: float, step_test: str) -> float:
        """J continuations of each failed sample with a step stating the gold answer; returns how many."""
        count = samples * (1 - self.a.accuracy) * self.a.prefix_rate * self.cfg.J
        self.once(cell, ("veriexit", model, step_test), "generate", count * self.a.continuation_fraction * self.L)
        return count

    def round_cell(self, notebook: str, name: str, t: int) -> Cell:
        """Round t of method ``name``: sampling, extra sampling, scoring, training, evaluation."""
        m, cfg, a, P = get_method(name), self.cfg, self.a, self.a.prompt_tokens
        cell = Cell(notebook, f"{name} t={t}" + (f" seed {self.seed}" if self.seed != cfg.seed else ""))
        key_r = self.keyed(("round", name, t))
        if key_r in self.paid:  # the method's folder already holds this round
            return replace(cell, shared=[self.paid[key_r]])
        self.paid[key_r] = f"{notebook[:2]} {cell.name}"
        self.m0(cell)
        key = "m0" if t == 1 else f"{name}/iter_{t - 1}"
        groups: list[tuple[float, float]] = []  # (candidates, mean length) that may be kept
        if m.trainer == "grpo":
            g = settings_from(GRPOSettings, cfg.grpo, "grpo")
            length = a.rollout_fraction * (g.max_completion_length or cfg.max_new_tokens)
            rollouts, cell.grpo_steps = g.steps * g.prompts_per_step * g.num_generations, g.steps
            if g.prompts == "learnable":  # the prompts are chosen from M0's K samples (shared with the SFT rows')
                self.samples(cell, "m0", "K", cfg.K)
            cell.add("rollout", rollouts * length)
            cell.add("grpo", rollouts * (P + length), model=True)
        elif m.self_generated:
            n = samples_per_query(m, cfg.K, cfg.T)
            sampled = self.samples(cell, key, sampling_key(m, cfg.K, cfg.T), n)
            groups.append((sampled * a.accuracy, self.L))
            if m.extra == "veriexit":
                groups.append((self.veriexit(cell, key, sampled, cfg.step_test) * a.continuation_accuracy,
                               a.recovered_fraction * self.L))
            elif m.extra == "answer_driven":
                hinted, hint_len = cfg.n_unlabeled * a.failed_queries * cfg.J, a.hint_fraction * cfg.max_new_tokens
                self.once(cell, ("answer_driven", key), "generate", hinted * hint_len)
                groups.append((hinted * a.hint_accuracy, hint_len))
            if m.cap_k:  # at most K candidates per query
                keep = min(1.0, cfg.n_unlabeled * cfg.K / sum(c for c, _ in groups))
                keep *= a.veriexit_cap_keep if m.extra == "veriexit" else 1.0
                groups = [(c * keep, ln) for c, ln in groups]
            if m.filter == "indiv":
                self.once(cell, ("indiv", key, m.extra), "score", sum(c * (P + ln) for c, ln in groups))
            groups = [(c * {"indiv": a.indiv_keep, "length": a.length_keep}.get(m.filter, 1.0), ln) for c, ln in groups]
            if m.select in ONE_PER_QUERY:
                groups = [(c * cfg.n_unlabeled * a.solved_queries / sum(c for c, _ in groups), ln) for c, ln in groups]
        if m.select == "oracle":
            groups = [(cfg.n_unlabeled, a.seed_trace_tokens)]
        if m.trainer != "grpo" and m.select != "none":
            self.train(cell, m.trainer, groups)
        cell.add("eval", cfg.n_test * a.eval_fraction * cfg.eval_max_new_tokens)
        return cell

    def train(self, cell: Cell, trainer: str, groups: list[tuple[float, float]]) -> None:
        """SFT on D_s and the kept candidates; DPO on each kept winner whose query has an incorrect sample."""
        cfg, P = self.cfg, self.a.prompt_tokens
        if trainer == "sft":
            s = settings_from(SFTSettings, cfg.sft, "sft")
            rows = cfg.n_seed * (P + self.a.seed_trace_tokens) + sum(c * min(P + ln, s.max_length) for c, ln in groups)
            return cell.add("sft", s.epochs * rows, model=True)
        d = settings_from(DPOSettings, cfg.dpo, "dpo")
        pair = lambda ln: min(P + ln, d.max_length) + min(P + self.L, d.max_length)  # noqa: E731  winner + loser
        cell.add("dpo", d.epochs * sum(c * self.a.failed_queries * pair(ln) for c, ln in groups), model=True)


def notebook_parameters(notebook: Path) -> tuple[dict, str]:
    """A notebook's parameters (papermill's ``parameters`` cell: name -> its default) and all its code."""
    cells = json.loads(notebook.read_text())["cells"]
    src = next(("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), "")
    params = {n.targets[0].id: literal(n.value) for n in ast.parse(src).body
              if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)}
    return params, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def notebook_params(profile: str) -> dict[str, tuple[dict, str]]:
    """Each notebook of the profile: its parameters (its defaults under the profile's yaml) and its code."""
    out = {}
    for yml in sorted((ROOT / "params" / profile).glob("*.yaml")):
        if not (nb := ROOT / "notebooks" / f"{yml.stem}.ipynb").exists():
            continue
        params, code = notebook_parameters(nb)
        out[nb.stem] = (params | (yaml.safe_load(yml.read_text()) or {}), code)
    return out


def literal(node: ast.expr):
    """A parameter's default when it is a literal; None for an expression the plan does not evaluate."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def notebook_cells(pl: Planner, nb: str, p: dict, code: str) -> list[Cell]:
    """The cells of one notebook, in the order it runs them."""
    a, cfg, cells = pl.a, pl.cfg, []
    if "eval_tasks" in p:  # 00: the base model, zero-shot
        cells += [Cell(nb, f"eval {task} ({n})", {"eval": n * a.eval_fraction * p["eval_max_new_tokens"]})
                  for task, n in p["eval_tasks"].items()]
        cells.append(Cell(nb, f"{p['K']} samples × {p['n_sample_queries']}",
                          {"generate": p["n_sample_queries"] * p["K"] * a.sample_fraction * p["sample_max_new_tokens"]}))
    if "n_m0_queries" in p:  # 07: M0's samples, InDiv on them and on the R1 traces
        cells.append(cell := Cell(nb, "M0 samples, InDiv"))
        pl.m0(cell)
        n, length, P = p["n_m0_queries"] * p["K"], a.sample_fraction * p["sample_max_new_tokens"], a.prompt_tokens
        cell.add("generate", n * length)
        cell.add("score", p["n_r1_traces"] * (P + a.seed_trace_tokens) + n * a.accuracy * (P + length))
    if "sample_model(" in code:  # 01: the weaker M0, and the histograms of base M, the weaker M0 and M0
        cells += [Cell(nb, "M0 and M0 on a quarter"), Cell(nb, f"histograms K={p['K_hist']}")]
        pl.m0(cells[-2])
        pl.m0(cells[-2], "m0-quarter", subset_size(cfg.n_seed, p.get("quarter", 0.25)))
        for model in ("base", "m0-quarter", "m0"):
            pl.samples(cells[-1], model, "K", p["K_hist"], p.get("hist_queries"))
    names = run_order(p.get("methods") or p.get("select_methods") or [])
    for s in dict.fromkeys([cfg.seed, *(p.get("seeds") or [])]):  # the claim rows again on every other seed
        pl.seed = s
        for name in seed_methods(names, first=s == cfg.seed):
            cells += [pl.round_cell(nb, name, t) for t in range(1, (cfg.T if get_method(name).iterative else 1) + 1)]
    pl.seed = cfg.seed
    if "own_reward_table(" in code:  # did a GRPO row raise its own reward: fresh samples of it and its start model
        for name in (n for n in p.get("reward_check") or [] if get_method(n).trainer == "grpo"):
            cells.append(cell := Cell(nb, f"{name} own reward"))
            pl.samples(cell, "m0", "K", cfg.K)  # which D_u queries are learnable (shared with the loop's)
            # learnable: some right and some wrong among M0's K, i.e. solved + failed - 1 of the queries
            share = max(0.0, a.solved_queries + a.failed_queries - 1.0)
            learnable = cfg.n_unlabeled * share * cfg.K * pl.L  # K fresh samples of each, per model
            pl.once(cell, ("own-reward", get_method(name).init), "generate", learnable)
            cell.add("generate", learnable)
    if "veriexit_report(" in code:  # VeriExit on M0's samples under each step test
        cells.append(cell := Cell(nb, "VeriExit report"))
        sampled = pl.samples(cell, "m0", "K", cfg.K)
        for st in config.STEP_TESTS:
            pl.veriexit(cell, "m0", sampled, st)
    return cells


def measured(cfg: LoopConfig, a: Assumptions) -> tuple[Assumptions, str, int | None]:
    """Prompt and seed-trace tokens from the seed split when it is local or cached (never the hub); its rows."""
    what = f"{cfg.task}/{cfg.seed_split}"
    try:
        if where(cfg.task, cfg.seed_split) == "missing":
            return a, f"{what} is not here: prompt and seed-trace tokens are the defaults", None
        task = get_task(cfg.task, cfg.data_dir)
        seed = task.load(cfg.seed_split, limit=cfg.n_seed)
    except (OSError, KeyError, ValueError) as e:
        return a, f"{what} did not load ({e}): prompt and seed-trace tokens are the defaults", None
    cut, n = settings_from(SFTSettings, cfg.m0_sft, "m0_sft").max_length, len(seed)
    prompt = sum(sum(len(m["content"]) for m in task.messages(p)) for p in seed) / n / a.chars_per_token + 10  # + template
    trace = sum(min(len(p.reasoning or "") / a.chars_per_token, cut - prompt) for p in seed) / n  # cut at max_length
    note = f"prompt and seed-trace tokens measured on {n} rows of {what}" + (
        f" (the profile asks n_seed={cfg.n_seed}; the plan counts {cfg.n_seed})" if n < cfg.n_seed else "")
    return replace(a, prompt_tokens=round(prompt, 1), seed_trace_tokens=round(trace, 1)), note, n


def plan(profile: str, assumptions: Assumptions | None = None, overrides: dict | None = None, measure: bool = True,
         seeds: list[int] | None = None) -> Planner:
    """The profile's notebooks, cell by cell; ``assumptions``: the profile's (``PROFILE_ASSUMPTIONS``, else the
    paper's defaults) when None; ``measure``: prompt and seed-trace tokens from the seed split;
    ``seeds``: the other seeds of the loop notebooks' claim rows, in place of their yaml's (``make reproduce SEEDS``)."""
    cfg, a = config.load_config(profile, overrides), assumptions or profile_assumptions(profile)
    a, note, rows = measured(cfg, a) if measure else (a, "prompt and seed-trace tokens as given", None)
    pl = Planner(cfg, a, note, rows)
    nbs = notebook_params(profile)
    if seeds is not None:
        nbs = {nb: (p | {"seeds": list(seeds)} if "seeds" in p else p, code) for nb, (p, code) in nbs.items()}
    pl.cells = {nb: notebook_cells(pl, nb, params, code) for nb, (params, code) in nbs.items()}
    return pl


def model_params(spec: str) -> float:
    """Parameters of a model, from the kit's table or the size in its name (``…-1.5B``); 0 when unknown."""
    m = re.search(r"(\d+(?:\.\d+)?)([BM])\b", spec)
    return KNOWN_PARAMS.get(spec) or (float(m.group(1)) * (1e9 if m.group(2) == "B" else 1e6) if m else 0.0)


def load_bench(path: str | Path) -> dict:
    """A paper-shape bench JSON (the module docstring's fields); anything else is refused, saying why."""
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc.get("stages"), dict):
        raise ValueError(f"{path} has no 'stages': not a paper-shape bench (python -m hsir.bench paper-shape writes one; "
                         "the fields are in hsir.plan's docstring)")
    return doc


def rate(stages: dict, stage: str) -> float | None:
    """Tokens/s of a stage (its steady rate, after the first optimizer step, where the bench has one: a paper run's
    thousands of steps go at that rate, not at a few-step bench's); evaluation falls back to sampling's, an InDiv
    pass (forward only) to 3 × SFT's."""
    got = stages.get(stage) or {}
    if r := got.get("steady_tokens_per_s") or got.get("tokens_per_s"):
        return float(r)
    base, factor = {"eval": ("generate", 1), "score": ("sft", 3)}.get(stage, (None, 0))
    return r * factor if base and (r := rate(stages, base)) else None


def cell_hours(cell: Cell, bench: dict) -> tuple[float, set[str]]:
    """GPU-hours of a cell on the bench's GPU, and the stages the bench has no rate for (left out)."""
    stages, seconds, missing = bench["stages"], 0.0, set()
    for stage, n in cell.tokens.items():
        if n and stage not in ("grpo", "rollout"):
            r = rate(stages, stage)
            seconds, missing = seconds + (n / r if r else 0.0), missing | (set() if r else {stage})
    if cell.grpo_steps:
        g = stages.get("grpo") or {}
        scale = cell.tokens.get("rollout", 0.0) / cell.grpo_steps / g["tokens_per_step"] if g.get("tokens_per_step") else 1.0
        seconds += cell.grpo_steps * g.get("seconds_per_step", 0.0) * scale
        missing |= set() if g.get("seconds_per_step") else {"grpo"}
    return seconds / 3600, missing


def device(bench: dict) -> str:
    """What a bench's hours are on: its GPU (paper-shape), or the CPU a CPU rates file names (``device``)."""
    return bench.get("gpu") or bench.get("device") or "?"


def tokens_text(n: float) -> str:
    return next((f"{n / d:.{p}f}{u}" for d, p, u in ((1e9, 2, "B"), (1e6, 1, "M"), (1e3, 1, "K")) if n >= d), f"{n:.0f}")


def plan_text(p: Planner, bench: dict | None = None, bench_note: str = "") -> str:
    c, a = p.cfg, [f"{f.name}={getattr(p.a, f.name)}" for f in fields(Assumptions)]
    lines = [f"[plan] {c.profile}: {c.model} on {c.task}; D_s {c.n_seed}, D_u {c.n_unlabeled}, test {c.n_test}; K {c.K}, "
             f"J {c.J}, T {c.T}; sampling {c.max_new_tokens}, evaluation {c.eval_max_new_tokens} tokens",
             "assumptions (--assume NAME=VALUE): " + ", ".join(a[:5]), "  " + ", ".join(a[5:11]), "  " + ", ".join(a[11:]),
             f"  {p.note}",
             f"hours: {device(bench)}, bench model {bench.get('model', '?')} ({bench_note})" if bench
             else f"hours: none; {bench_note}"]
    hours, missing = 0.0, set()
    for nb, cells in p.cells.items():
        lines.append(f"\n{nb}" + ("" if cells else ": no GPU work (reads finished runs)"))
        lines += [f"  {'cell':<26}{'generate':>9}{'train':>9}{'hours':>8}  reuses work of"] if cells else []
        nb_hours = 0.0
        for cell in cells:
            h, miss = cell_hours(cell, bench) if bench else (None, set())
            hours, nb_hours, missing = hours + (h or 0.0), nb_hours + (h or 0.0), missing | miss
            text = "" if h is None else f"{h:.2f}" + ("*" if miss else "")
            lines.append(f"  {cell.name:<26}{tokens_text(cell.total(GENERATED)):>9}{tokens_text(cell.total(TRAINED)):>9}"
                         f"{text:>8}  {', '.join(cell.shared)}")
        if bench and cells:
            lines.append(f"  {'notebook':<26}{'':>18}{nb_hours:>8.2f}")
    lines.append(f"\nall: generate {tokens_text(p.total(GENERATED))} tokens (evaluation {tokens_text(p.total(['eval']))}), "
                 f"train {tokens_text(p.total(TRAINED))}, InDiv passes {tokens_text(p.total(['score']))}"
                 + (f"; {hours:.1f} h on {device(bench)}" if bench else "") + f"; disk ~{p.disk_gib():.0f} GiB")
    if missing:
        lines.append(f"* the bench has no rate for {sorted(missing)}: those tokens are not in the hours")
    if bench and bench.get("generate_backend") == "hf" and c.backend == "vllm":
        gen = rate(bench["stages"], "generate")
        lines.append(f"* sampling and evaluation are charged at the bench's transformers rate ({gen} tokens/s: the bench "
                     "ran without vLLM); the profile samples with vLLM, so those hours are an upper bound")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--gpu", help="read bench/paper-shape-<GPU>.json, e.g. H200")
    ap.add_argument("--bench", help="a paper-shape bench JSON (the fields in this module's docstring)")
    ap.add_argument("--assume", nargs="*", default=[], metavar="NAME=VALUE", help="set an Assumptions field")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="override a loop setting")
    ap.add_argument("--seeds", nargs="*", type=int, metavar="N", help="other seeds of the claim rows (hsir.seeds)")
    args = ap.parse_args(argv)
    assume, known = config.parse_sets(args.assume), {f.name for f in fields(Assumptions)}
    if set(assume) - known:
        ap.error(f"unknown assumption(s) {sorted(set(assume) - known)}; valid: {sorted(known)}")
    p = plan(args.profile, replace(profile_assumptions(args.profile), **assume), config.parse_sets(args.set),
             measure=not {"prompt_tokens", "seed_trace_tokens"} & set(assume), seeds=args.seeds)
    path = Path(args.bench) if args.bench else ROOT / "bench" / f"paper-shape-{args.gpu.lower()}.json" if args.gpu else None
    if path and path.exists():
        try:
            print(plan_text(p, load_bench(path), str(path)))
        except ValueError as e:
            ap.error(str(e))
    else:
        print(plan_text(p, None, f"hours need {path}: run `python -m hsir.bench paper-shape` on that GPU" if path
                        else "hours need a bench JSON (--gpu NAME or --bench FILE)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
