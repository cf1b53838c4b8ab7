"""Results tables, rebuilt from run folders alone: a round's accuracy with its interval, tokens and costs, the
paired comparison with another method, the paper's numbers beside them (``hsir.paper``), and where the time went.

Nothing here runs a model: a finished run folder (``runs/<profile>/methods/<method>/iter_<t>/``) is all a table
needs, so tables can be rebuilt on another machine from a copied folder.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from hsir import paper as paper_tables
from hsir.archive import archive_dir, archive_roots, archived_roots, m0_note
from hsir.claims import NUMBERS, against_m0, pool_pair, read_rounds, write_claims
from hsir.config import LoopConfig, figures_dir, kit_path, load_config, parse_sets
from hsir.evaluate import paired_difference
from hsir.methods import M0, METHODS, get_method
from hsir.power import write_power
from hsir.replicate import write_replicate
from hsir.rounds import markdown, operation_gaps, percent_interval, round_correct, round_result
from hsir.runs import Run, commit, write_text
from hsir.seeds import seed_roots
from hsir.tasks import get_task


def results_table(cfg: LoopConfig, methods: Sequence[str], paper: str | None = None, tokens_vs: str | None = None,
                  vs: str | None = None):
    """Every finished round of ``methods`` as a DataFrame, rebuilt from the run folders: accuracy in % with its
    95% interval, on the synthetic testbed the shares of solutions with fewer / more steps than their problem's
    operations, and for GRPO rounds their steps, rollout tokens and InDiv reward seconds. ``paper`` ("1a", "1b",
    "3", "5", "7") puts that table's numbers beside each row; ``tokens_vs`` adds each row's mean output tokens
    relative to that method's first round (Table 5's "↓ tokens" column); ``vs`` adds each row's accuracy minus
    that method's first round's on the same test problems, with a paired interval and the discordant counts
    (``evaluate.paired_difference``): with 128 test problems two accuracies' intervals overlap at differences the
    paired one resolves. With a one-round ``paper`` table (3, 5, 7) only first rounds are rows."""
    import pandas as pd

    from hsir.grpo import ledger_entry  # torch, through the rewards

    if paper is not None:
        paper_tables.check_table(paper)
    ref = None
    if vs is not None:
        ref_dir = cfg.run_root / "methods" / get_method(vs).name / "iter_1"
        if not (ref_dir / "metrics.json").exists():
            raise FileNotFoundError(f"no evaluated first round of {vs} to compare with: {ref_dir}/metrics.json")
        ref = round_correct(ref_dir)
    n_ops = {}
    if cfg.task == "synthetic":  # the testbed knows each problem's operations
        n_ops = {p.qid: p.meta["n_ops"] for p in get_task(cfg.task, cfg.data_dir).load(cfg.test_split)}
    rows = []
    for name in methods:
        grpo = get_method(name).trainer == "grpo"
        for it in sorted((cfg.run_root / "methods" / name).glob("iter_*"), key=lambda p: int(p.name[5:])):
            if paper in paper_tables.ONE_ROUND and it.name != "iter_1":
                continue
            if (it / "metrics.json").exists():
                row = round_result(it) | {"method": name, "iteration": int(it.name[5:])} | operation_gaps(it, n_ops)
                if grpo:
                    cost = ledger_entry(it / "model")
                    row |= {"grpo steps": cost["steps"], "rollout tokens": cost["tokens"],
                            "InDiv reward s": cost["indiv_seconds"]}
                if ref is not None:
                    d = paired_difference(round_correct(it), ref)
                    lo, hi = d["diff_ci95"]
                    row |= {f"vs {vs} (pts)": round(d["diff"] * 100, 1), f"vs {vs} 95% CI": percent_interval(lo, hi),
                            "right/wrong only here": f"{d['a_only']}/{d['b_only']}"}
                rows.append(row)
    res = pd.DataFrame(rows)
    if res.empty:
        return res
    res["accuracy (%)"] = (res["accuracy"] * 100).round(2)
    res["95% CI"] = [percent_interval(lo, hi) for lo, hi in res["accuracy_ci95"]]
    if tokens_vs is not None and tokens_vs in set(res["method"]):
        base = res.loc[res["method"] == tokens_vs, "mean_tokens"].iloc[0]
        res[f"tokens vs {tokens_vs} (%)"] = ((res["mean_tokens"] / base - 1) * 100).round(1)
    res["mean_tokens"] = res["mean_tokens"].round(1)
    for col in ("kept", "pairs", "grpo steps", "rollout tokens"):  # counts stay integers where some rows lack them
        if col in res:
            res[col] = res[col].astype("Int64")
    if paper is not None:
        res = pd.concat([res, paper_tables.beside(paper, res["method"], res["iteration"])], axis=1)
    return res


TABLE_COLUMNS = ("method", "iteration", "accuracy (%)", "95% CI", "mean_tokens", "fewer steps than ops (%)",
                 "more steps than ops (%)", "truncation_rate", "data_tokens", "kept", "pairs", "grpo steps")


def table_view(res, extra: Sequence[str] = ()):
    """The columns a results table is read by (those present), then ``extra`` ones, the paired comparison's and
    the paper's."""
    cols = ([c for c in (*TABLE_COLUMNS, *extra) if c in res] + [c for c in res if c.startswith("vs ")]
            + [c for c in ("right/wrong only here",) if c in res] + [c for c in res if c.startswith("paper ")])
    return res[list(dict.fromkeys(cols))]


def table_text(res) -> str:
    """A results table as plain text, for a terminal or a note."""
    return "(no finished rounds)" if res.empty else table_view(res).to_string(index=False)


def ledger_table(cfg: LoopConfig, methods: Sequence[str]):
    """Seconds and tokens per stage, method and round (where the time went)."""
    import pandas as pd

    rows = []
    for name in methods:
        for entry in Run(cfg.run_root / "methods" / name).ledger():
            rows.append({"method": name} | entry)
    return pd.DataFrame(rows)


def stage_seconds(cfg: LoopConfig, methods: Sequence[str]):
    """Seconds per stage (sample, select, train, eval) summed over rounds, one row per method."""
    ledger = ledger_table(cfg, methods)
    if ledger.empty:
        return ledger
    stage = ledger["stage"].str.split("/").str[1]
    return ledger.pivot_table(index="method", columns=stage, values="seconds", aggfunc="sum", sort=False).round(1)


FIG_2 = [m.name for m in METHODS.values() if m.paper == "Fig. 2 right"]  # SFT on one solution chosen four ways
TABLES = {**{paper_tables.TITLES[t]: (t, rows) for t, rows in paper_tables.METHODS.items()},
          "Fig. 2 (right): SFT on one correct solution per query, chosen four ways": (None, FIG_2)}


def over_seeds(roots: Mapping[int, Path], methods: Sequence[str], n_boot: int = 2000, runs: Mapping | None = None):
    """A table's rows over the seeds that ran them (a DataFrame; empty when no row ran on two seeds or more): the
    mean accuracy with each seed's, and the paired difference with M0 pooled over those seeds, its interval
    resampling seeds and problems (``hsir.claims.against_m0``, as the claims file pools a comparison). ``runs``: the
    rounds already read (``hsir.claims.read_rounds``), for a caller that pools several tables."""
    room = against_m0(roots, rows=methods, n_boot=n_boot, runs=runs)
    if room.empty or not (room["n_seeds"] > 1).any():
        return room.iloc[0:0]
    return room.drop(columns=NUMBERS)


def compare(roots: Mapping, a: str, b: str, iteration: int = 1, n_boot: int = 2000, seed: int = 0) -> dict:
    """Any two rows, A - B, pooled over the seeds that ran both, as the claims pool a comparison: no direction and
    no verdict, for the questions a reader asks after the claims (which part of a method costs accuracy?). Returns
    ``pooled_paired_difference``'s fields with ``seeds`` as the list of seeds used; ValueError naming the rows and
    the roots when no seed ran both, or naming an unknown row."""
    for m in (a, b):
        if m not in METHODS:
            raise ValueError(f"unknown row {m!r}; rows are the methods of hsir.methods: {', '.join(METHODS)}")
    runs = read_rounds(roots, {a, b}, iteration, None)
    used, pooled = pool_pair(runs, roots, a, b, n_boot, seed)
    if pooled is None:
        have = {m: [s for s in roots if (s, m) in runs] for m in (a, b)}
        raise ValueError(f"no seed ran both {a!r} (seeds {have[a]}) and {b!r} (seeds {have[b]}) to round "
                         f"{iteration} under {', '.join(kit_path(Path(r)) for r in roots.values())}")
    return pooled | {"seeds": used}


def compare_text(a: str, b: str, res: Mapping) -> str:
    """``compare``'s result as one line: accuracy and tokens, each with its interval and per-seed values."""
    acc = ", ".join(f"{s}: {v * 100:+.1f}" for s, v in zip(res["seeds"], res["per_seed"], strict=True))
    tok = ", ".join(f"{s}: {v:+.1f}" for s, v in zip(res["seeds"], res["tokens_per_seed"], strict=True))
    lo, hi = res["diff_ci95"]
    tlo, thi = res["tokens_ci95"]
    return (f"{a} - {b} (seeds {', '.join(map(str, res['seeds']))}, {res['n']} problems): accuracy "
            f"{res['diff'] * 100:+.1f} pts [{lo * 100:.1f}, {hi * 100:.1f}] ({acc}); tokens "
            f"{res['tokens_diff']:+.1f} [{tlo:.1f}, {thi:.1f}] ({tok})")


def write_tables(cfg: LoopConfig, out: Path, vs: str = M0, command: str | None = None,
                 roots: Mapping[int, Path] | None = None) -> str:
    """Every paper table (``hsir.paper.METHODS``, and Fig. 2's selection rows) that has a finished round in
    ``cfg``'s run folder, as markdown with the paper's numbers beside ours and each row paired against ``vs`` (M0),
    written atomically to ``out``. ``roots`` (seed -> run root, ``hsir.seeds.seed_roots``): where rows ran on
    several seeds, each table is followed by those rows over seeds (``over_seeds``). ``command`` is what the file
    says rebuilds it (default: the plain command for ``cfg.profile``)."""
    have_vs = (cfg.run_root / "methods" / vs / "iter_1" / "metrics.json").exists()
    where = kit_path(cfg.run_root)
    command = command or f"python -m hsir.results --profile {cfg.profile}"
    several = bool(roots) and len(roots) > 1
    # every table's rows over seeds, each evaluation read once (rows such as HSIR-SFT are in several tables)
    runs = read_rounds(roots, {M0, *(m for _, rows in TABLES.values() for m in rows)}, 1, None) if several else None
    seeds = "" if not several else (
        " Rows that ran on several seeds are pooled below each table over the seeds' run roots ("
        + ", ".join(f"seed {s}: `{kit_path(r)}`" for s, r in roots.items()) + "): the mean accuracy with each "
        f"seed's, and the paired difference with {M0} (M0, shared by the seeds) averaged over the seeds that ran the "
        "row, its 95% interval resampling seeds and problems (`hsir.claims.pooled_paired_difference`); a row with "
        "one seed listed ran on that seed only.")
    parts = [f"# Results of the {cfg.profile} profile",
             f"Rebuilt from `{where}` by `{command}` "
             f"({time.strftime('%Y-%m-%d')}, commit {commit() or 'unknown'}); accuracy is greedy on {cfg.n_test} test "
             f"problems with a 95% bootstrap interval; `vs {vs}` is paired on the same problems. On the synthetic "
             "testbed the step columns count solutions with fewer / more computation steps than their problem's "
             "operations. The paper's numbers (Qwen2.5, as printed) are not the same models or data: read them "
             "for direction only." + seeds]
    for title, (table, methods) in TABLES.items():
        res = results_table(cfg, methods, paper=table, vs=vs if have_vs else None,
                            tokens_vs="GRPO" if table == "5" else None)
        if res.empty:
            continue
        extra = {"3": ["extra_solutions_gained", "extra_queries_recovered"],
                 "5": ["tokens vs GRPO (%)", "rollout tokens", "InDiv reward s"]}.get(table, [])
        parts += [f"## {title}", markdown(table_view(res, extra))]
        pooled = over_seeds(roots, methods, runs=runs) if several else None
        if pooled is not None and len(pooled):
            parts += [f"Over seeds (first round of each row; M0 {pooled.attrs['m0 accuracy %']:.1f}%):",
                      markdown(pooled)]
    text = "\n\n".join(parts) + "\n"
    write_text(out, text)
    return text


def read_roots(cfg: LoopConfig, seeds: Sequence[int] = (), archived: Path | None = None) -> dict[int, Path]:
    """The seed roots a report reads: the run folders (``hsir.seeds.seed_roots``), or an archive's (``archived``)."""
    return seed_roots(cfg, seeds) if archived is None else archived_roots(cfg, archived, seeds)


def claims_file(cfg: LoopConfig, seeds: Sequence[int] = (), out: Path | None = None, command: str | None = None,
                archived: Path | None = None, problems: tuple[int, int] | None = None) -> str:
    """``figures/<profile>/claims.md`` (or ``out``) from the run roots of ``seeds`` (default: every seed root that
    exists, ``hsir.seeds.seed_roots``): the verdict per claim, ``hsir.claims``. ``archived``: read the archived
    rounds there instead (``hsir.archive``; every seed archived, when ``seeds`` is empty). ``problems``: (start,
    stop), the test split's problems start..stop-1 alone: a look at part of a test set that grew, e.g. the
    problems a first look had not seen. Returns the Markdown."""
    # the split is read only where needed: an archive's claims rebuild without the benchmark's files
    test = get_task(cfg.task, cfg.data_dir).load(cfg.test_split) if cfg.task == "synthetic" or problems else []
    n_ops = {p.qid: p.meta["n_ops"] for p in test} if cfg.task == "synthetic" else None
    out = out or figures_dir(cfg.profile) / "claims.md"
    only, part = None, ""
    if problems:
        start, stop = problems
        if not 0 <= start < stop <= len(test):
            raise ValueError(f"problems {start}:{stop}: the {cfg.task} {cfg.test_split} split has {len(test)} "
                             "problems; give start:stop with 0 <= start < stop <= that")
        only = {p.qid for p in test[start:stop]}
        part = (f" Only the {cfg.test_split} split's problems {start} to {stop - 1} ({stop - start}, in the split's "
                "order) are read; each round's other answers are left out.")
    roots = read_roots(cfg, seeds, archived)
    return write_claims(roots, out, n_ops, command=command, note=(m0_note(roots) + part).strip(), only=only)


def power_file(cfg: LoopConfig, seeds: Sequence[int] = (), out: Path | None = None, command: str | None = None,
               archived: Path | None = None) -> str:
    """``figures/<profile>/power.md`` (or ``out``): the seeds and problems each accuracy comparison of the claims
    would need to resolve a stated effect (``hsir.power``), from the same roots as ``claims_file``."""
    roots = read_roots(cfg, seeds, archived)
    return write_power(roots, out or figures_dir(cfg.profile) / "power.md", command=command, note=m0_note(roots))


def replicate_file(cfg: LoopConfig, replicate: Path, seeds: Sequence[int] = (), out: Path | None = None,
                   command: str | None = None, archived: Path | None = None) -> str:
    """``figures/<profile>/replicate.md`` (or ``out``): the claims' accuracy comparisons on ``replicate``, a run (or
    archived) root with an M0 of its own, against the seeds of ``claims_file``'s roots (``hsir.replicate``)."""
    if not (Path(replicate) / "methods").is_dir():
        raise FileNotFoundError(f"{replicate}: not a run root (no methods/ folder with evaluated rounds)")
    roots = read_roots(cfg, seeds, archived)
    return write_replicate(roots, Path(replicate), out or figures_dir(cfg.profile) / "replicate.md",
                           command=command)


def problem_range(text: str) -> tuple[int, int]:
    """``START:STOP`` (``--problems``) as two ints."""
    try:
        start, stop = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give START:STOP, e.g. 512:1000") from None
    return start, stop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Write the paper's tables, or the verdict per claim, from a profile's finished runs.")
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="loop settings, e.g. T=2")
    ap.add_argument("--claims", action="store_true",
                    help="the verdict per claim of the paper, pooled over seeds (hsir.claims): figures/<profile>/claims.md")
    ap.add_argument("--power", action="store_true",
                    help="the seeds and test problems each claim's accuracy comparison would need to resolve a stated "
                         "effect (hsir.power): figures/<profile>/power.md")
    ap.add_argument("--replicate", metavar="ROOT",
                    help="the claims' accuracy comparisons on ROOT, a run that trained its own M0 (a clean clone on "
                         "another box), against the seeds' (hsir.replicate): figures/<profile>/replicate.md")
    ap.add_argument("--seeds", nargs="*", type=int, default=[],
                    help="the seeds to pool, in the claims or below the tables (default: the profile's and every "
                         "<run root>-seed<N>)")
    ap.add_argument("--archive", action="store_true",
                    help="copy every seed root's evaluated rounds into figures/<profile>/rounds/ (hsir.archive), to "
                         "commit: what a later session on another machine pools its seeds with")
    ap.add_argument("--archived", action="store_true",
                    help="with --claims, --power, --replicate or --compare: read the seeds' archived rounds "
                         "(figures/<profile>/rounds/) instead of runs/ (--replicate's ROOT is read where it is)")
    ap.add_argument("--archive-to", help="the archive's folder (default: figures/<profile>/rounds)")
    ap.add_argument("--problems", metavar="START:STOP", type=problem_range,
                    help="with --claims: only the test split's problems START..STOP-1 (e.g. 512:1000, the problems a "
                         "first look on 512 had not seen)")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"),
                    help="print A - B (accuracy and tokens) pooled over the seeds that ran both, as the claims pool a "
                         "comparison, without a verdict (hsir.results.compare); with --archived, from the archive")
    ap.add_argument("--out", help="default: figures/<profile>/tables.md (claims.md with --claims, power.md with "
                                  "--power, replicate.md with --replicate)")
    args = ap.parse_args(argv)
    if args.problems and not args.claims:
        ap.error("--problems goes with --claims")
    cfg = load_config(args.profile, parse_sets(args.set))
    command = " ".join(["python -m hsir.results", *(shlex.quote(a) for a in argv or sys.argv[1:])])
    reads = args.claims or args.compare or args.power or args.replicate
    if args.archive and reads or args.archived and not reads or args.archive_to and not (
            args.archive or args.archived) or sum(map(bool, (args.claims, args.compare, args.power,
                                                             args.replicate))) > 1:
        ap.error("--archive (then --claims --archived), --claims, --power, --replicate ROOT or --compare A B, each "
                 "[--archived]; "
                 "--archive-to goes with --archive or --archived")
    dest = Path(args.archive_to) if args.archive_to else archive_dir(cfg)
    if args.compare:
        roots = read_roots(cfg, args.seeds, dest if args.archived else None)
        try:
            print(compare_text(*args.compare, compare(roots, *args.compare)))
        except ValueError as e:
            ap.error(str(e))
        return 0
    if args.archive:
        roots = seed_roots(cfg, args.seeds)
        written, refused = archive_roots(roots, dest)
        for s, root in roots.items():
            print(f"seed {s}: " + (f"refused: {refused[s]}" if s in refused else
                                   f"{len(written[s])} files written under {kit_path(dest / root.name)}"))
        return 1 if refused else 0
    if args.replicate:
        try:
            print(replicate_file(cfg, Path(args.replicate), args.seeds, Path(args.out) if args.out else None, command,
                                 archived=dest if args.archived else None))
        except (ValueError, FileNotFoundError) as e:
            ap.error(str(e))
        return 0
    if args.power:
        print(power_file(cfg, args.seeds, Path(args.out) if args.out else None, command,
                         archived=dest if args.archived else None))
        return 0
    if args.claims:
        print(claims_file(cfg, args.seeds, Path(args.out) if args.out else None, command,
                          archived=dest if args.archived else None, problems=args.problems))
        return 0
    out = Path(args.out) if args.out else figures_dir(args.profile) / "tables.md"
    print(write_tables(cfg, out, command=command, roots=seed_roots(cfg, args.seeds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
