"""Run a profile's notebooks in order with papermill: ``python -m hsir.reproduce --profile embedded``.

A notebook runs in a profile when ``params/<profile>/<notebook stem>.yaml`` exists; its keys become the
notebook's parameters (plus ``profile``). Executed copies go to ``runs/<profile>/notebooks/`` (a ``--seeds 1 2`` run:
``notebooks-seeds-1-2/``); the notebooks
write their figures under ``figures/<profile>/``. ``$HSIR_RUNS_DIR`` and ``$HSIR_FIGURES_DIR`` move both
(``hsir.config``; the kernels inherit them), so that a test or a second checkout leaves the kit's folders alone.
Profiles: ``smoke`` (tiny random model, for tests), ``embedded`` (the real 135M model on a CPU), ``paper`` (hub
models on GPUs).

The console shows one line per notebook, the kit's ``[hsir]`` progress lines, errors, and a closing summary;
each kernel's whole output is in ``runs/<profile>/logs/<notebook>.log`` (``<notebook>-seeds-1-2.log``) and the
libraries' INFO logs in ``runs/<profile>/logs/libraries.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from hsir.archive import archive_dir, archive_roots
from hsir.config import ROOT, digest, figures_dir, kit_path, load_config, runs_dir
from hsir.plan import notebook_parameters
from hsir.preflight import blocking, preflight, preflight_text
from hsir.progress import PREFIX, clock
from hsir.runs import commit, read_jsonl, write_json, write_text
from hsir.seeds import seed_roots
from hsir.time_spent import breakdown, breakdown_table, measured_rates, work_entries


def notebooks_for(profile: str, only: list[str] | None = None) -> list[tuple[Path, Path]]:
    params_dir = ROOT / "params" / profile
    if not params_dir.is_dir():
        known = sorted(p.name for p in (ROOT / "params").iterdir() if p.is_dir())
        raise SystemExit(f"unknown profile {profile!r}: no folder {params_dir}; profiles: {known}")
    pairs = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if only and not any(nb.stem.startswith(o) for o in only):
            continue
        params = params_dir / f"{nb.stem}.yaml"
        if params.exists():
            pairs.append((nb, params))
    if only and not pairs:
        raise SystemExit(f"no notebook matches {only} with parameters in {params_dir}")
    return pairs


class _Console:
    """A kernel stream for papermill: everything to the notebook's log file; to the console only the kit's own
    ``[hsir]`` lines (stdout) and error lines (stderr), so that a whole run fits on a screen."""

    def __init__(self, log, stream: str, echo=print):
        self.log, self.stream, self.echo, self.warnings = log, stream, echo, 0

    def write(self, text: str) -> None:
        self.log.write(text)
        for line in text.splitlines():
            if self.stream == "stdout" and line.startswith(PREFIX):
                self.echo("  " + line)
            elif self.stream == "stderr" and ("Error" in line or "ERROR" in line) and "Warning" not in line:
                self.echo("  ! " + line)
            elif self.stream == "stderr" and "warn" in line.lower():
                self.warnings += 1

    def flush(self) -> None:
        self.log.flush()


def archive(profile: str, echo=print) -> None:
    """Archive the profile's evaluated rounds (``hsir.archive``) after a run, finished or stopped, so that committing
    ``figures/<profile>/rounds/`` keeps them when the machine is gone. Any failure here is printed, never raised:
    it must not hide why the run stopped, nor cost the run its record."""
    try:
        cfg = load_config(profile)
        written, refused = archive_roots(seed_roots(cfg), archive_dir(cfg))
    except Exception as e:  # noqa: BLE001 - see the docstring
        echo(f"[reproduce] rounds not archived: {type(e).__name__}: {e}")
        return
    for s, why in refused.items():
        echo(f"[reproduce] seed {s}'s rounds not archived: {why}")
    if n := sum(map(len, written.values())):
        echo(f"[reproduce] archived {n} files of evaluated rounds under {archive_dir(cfg)} (commit them to keep them "
             "beyond this machine)")


def run(profile: str, only: list[str] | None = None, out_root: Path | None = None, kernel: str | None = None,
        echo=print, seeds: list[int] | None = None) -> list[Path]:
    """Execute the profile's notebooks in order. The console shows which notebook runs, the kit's progress lines
    inside it, and a summary; the kernels' whole output and the libraries' INFO logs go to ``<root>/logs/``.
    ``out_root`` (default ``runs_dir(profile)``) holds only these; the notebooks' own artifacts and figures follow
    ``$HSIR_RUNS_DIR`` and ``$HSIR_FIGURES_DIR``. ``seeds``: the other seeds every notebook with a ``seeds``
    parameter runs its claim rows on (``hsir.seeds``), in place of its yaml's."""
    import papermill as pm

    root = Path(out_root) if out_root else runs_dir(profile)
    tag = run_tag(seeds)  # a run with other seeds keeps its own executed notebooks and attempts
    out_dir, log_dir = root / f"notebooks{tag}", root / "logs"
    attempts = log_dir / f"reproduce{tag}.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    # the kernels inherit these: progress as lines, library logs to log_dir (hsir.progress)
    # (not TQDM_DISABLE: vLLM divides by its disabled bar's elapsed time and fails)
    env = {"HSIR_PROGRESS": "lines", "HSIR_LOG_DIR": str(log_dir)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    pairs, done, times = notebooks_for(profile, only), [], []
    whole = not only  # only a run of the whole profile is timed in its attempts file and run.md
    timed = attempts if whole else None
    digests = {nb.stem: notebook_digest(nb, p) for nb, p in pairs}
    killed = log_killed(attempts) if whole else None
    if killed:
        echo(f"[reproduce] the last attempt of {killed['notebook']} was killed after {clock(killed['seconds'])} "
             f"(its heartbeat); logged in {attempts}")
    finished = finished_earlier(attempts, digests) if whole else set()
    old_term = signal.signal(signal.SIGTERM, _stop) if threading.current_thread() is threading.main_thread() else None
    try:
        for i, (nb, params_file) in enumerate(pairs, 1):
            params = yaml.safe_load(params_file.read_text()) or {}
            if not isinstance(params, dict):
                raise SystemExit(f"{params_file}: expected a mapping of parameter names to values")
            params["profile"] = profile
            if seeds is not None and takes_seeds(nb):
                params["seeds"] = list(seeds)
            out, log_path = out_dir / nb.name, log_dir / f"{nb.stem}{tag}.log"
            if nb.stem in finished:
                echo(f"[reproduce] {i}/{len(pairs)} {nb.name} finished in an earlier attempt of this run, unchanged "
                     f"since; skipped ({attempts})")
                done.append(out)
                continue
            echo(f"[reproduce] {i}/{len(pairs)} {nb.name} ({profile}); full output: {log_path}")
            t0, nb_digest = time.perf_counter(), digests[nb.stem]
            with open(log_path, "w", encoding="utf-8") as log, Heartbeat(timed, nb.stem, nb_digest):
                stdout, stderr = _Console(log, "stdout", echo), _Console(log, "stderr", echo)
                try:
                    pm.execute_notebook(str(nb), str(out), parameters=params, cwd=str(ROOT), kernel_name=kernel,
                                        progress_bar=False, log_output=False, stdout_file=stdout, stderr_file=stderr)
                except pm.PapermillExecutionError as e:
                    echo(f"[reproduce] {nb.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}")
                    echo(f"[reproduce] the executed notebook (with the traceback): {out}; its log: {log_path}")
                    log_attempt(timed, nb.stem, time.perf_counter() - t0, f"failed: {e.ename}", nb_digest)
                    raise
                except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C, or SIGTERM (below): its time still counts
                    log_attempt(timed, nb.stem, time.perf_counter() - t0, f"stopped: {type(e).__name__}", nb_digest)
                    raise
                except Exception as e:  # the kernel died (memory), or papermill itself failed
                    log_attempt(timed, nb.stem, time.perf_counter() - t0, f"failed: {type(e).__name__}", nb_digest)
                    raise
            seconds = time.perf_counter() - t0
            log_attempt(timed, nb.stem, seconds, "finished", nb_digest)
            warned = f", {stderr.warnings} warning lines in its log" if stderr.warnings else ""
            echo(f"[reproduce] {nb.name} done in {clock(seconds)}{warned}")
            done.append(out)
            times.append((nb.name, seconds))
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        archive(profile, echo)
    summary(profile, times, out_dir, log_dir, echo)
    if whole:  # the whole profile ran: its record, with every attempt the log holds; the next run starts a new log
        path = figures_dir(profile) / f"run{tag}.md"
        write_text(path, run_record(profile, read_jsonl(attempts), seeds=seeds, roots=work_roots(profile)))
        attempts.rename(log_dir / f"reproduce{tag}-{time.strftime('%Y%m%dT%H%M%S')}.jsonl")
        echo(f"  {'the run, attempt by attempt:':<36} {path}")
    return done


def takes_seeds(notebook: Path) -> bool:
    """Whether a notebook's parameters cell declares ``seeds`` (the loop notebooks 01-05)."""
    return "seeds" in notebook_parameters(notebook)[0]


def _stop(signum, frame):
    """SIGTERM (a killed job, a CI timeout) as a stop: the notebook's attempt is logged before the run ends."""
    raise SystemExit(f"signal {signum}")


# in the run's log folder: one line per notebook attempt (finished, failed or stopped) of a whole-profile run,
# reproduce.jsonl (reproduce-seeds-1-2.jsonl for --seeds 1 2); a run that finishes writes run.md (run-seeds-1-2.md)
# from it and renames it with the time, so the next run is timed afresh


def run_tag(seeds: list[int] | None) -> str:
    """What names a run's attempts, executed notebooks and record: "" for the profile's run, "-seeds-1-2" for
    ``--seeds 1 2``, so that stopping one and starting the other mixes neither."""
    return "" if seeds is None else f"-seeds-{'-'.join(map(str, seeds)) or 'none'}"


def notebook_digest(notebook: Path, params_file: Path) -> str:
    """The notebook, its parameter file and the profile's shared settings (its yaml files that are no notebook's:
    ``selfimprove.yaml``, ``data.yaml``) as run: a finished attempt is reused only while all are unchanged."""
    shared = sorted(y for y in params_file.parent.glob("*.yaml") if not (notebook.parent / f"{y.stem}.ipynb").exists())
    return digest([f.read_text(encoding="utf-8") for f in (notebook, params_file, *shared)])


BOX_KEYS = ("cpu_model", "cpu_capability", "amx", "avx512_bf16", "threads", "gpu")  # what run.md names


def _attempt(notebook: str, seconds: float, outcome: str, nb_digest: str | None, box: dict) -> dict:
    return {"notebook": notebook, "seconds": round(seconds, 1), "outcome": outcome,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit() or "unknown", "digest": nb_digest,
            "box": box}


def _box() -> dict:
    from hsir.bench.common import machine

    return {k: v for k, v in machine().items() if k in BOX_KEYS}


def _append(path: Path, entry: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def log_attempt(path: Path | None, notebook: str, seconds: float, outcome: str, nb_digest: str | None = None) -> None:
    """Append one notebook attempt to the run's attempts file ``path`` (None: a partial run, not timed): a run killed
    and resumed keeps both attempts' time (a kill -9 runs no handler: ``Heartbeat`` covers it).
    ``nb_digest``: ``notebook_digest``."""
    if path is not None:
        _append(path, _attempt(notebook, seconds, outcome, nb_digest, _box()))


KILLED = "killed: no stop logged, timed to its last heartbeat"
HEARTBEAT_EVERY = 60.0  # seconds between a running notebook's heartbeats


def heartbeat_path(attempts: Path) -> Path:
    """Where a running notebook's attempt so far is kept beside the attempts file (``Heartbeat``)."""
    return attempts.with_suffix(".running.json")


class Heartbeat:
    """While a notebook runs, its attempt so far, rewritten atomically every ``every`` seconds beside the attempts
    file. A kill -9 (a session's end, the out-of-memory killer) runs no handler and would leave the attempt's time
    out of ``run.md``; the next run finds the heartbeat and logs the attempt up to its last beat
    (``log_killed``), within ``every`` seconds of the truth. A logged attempt (finished, failed, stopped) removes it."""

    def __init__(self, attempts: Path | None, notebook: str, nb_digest: str | None, every: float = HEARTBEAT_EVERY):
        self.path = None if attempts is None else heartbeat_path(attempts)
        self.notebook, self.digest, self.every = notebook, nb_digest, every
        self._done = threading.Event()

    def _beat(self) -> None:
        write_text(self.path, json.dumps(_attempt(self.notebook, time.perf_counter() - self._t0, KILLED,
                                                  self.digest, self._box)))

    def _loop(self) -> None:
        while not self._done.wait(self.every):
            self._beat()

    def __enter__(self) -> Heartbeat:
        if self.path is not None:
            self._t0, self._box = time.perf_counter(), _box()
            self._beat()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.path is not None:
            self._done.set()
            self._thread.join()
            self.path.unlink(missing_ok=True)


def log_killed(attempts: Path) -> dict | None:
    """A heartbeat left by a killed run becomes its attempt in the attempts file (returned), then goes."""
    beat = heartbeat_path(attempts)
    if not beat.exists():
        return None
    try:
        entry = json.loads(beat.read_text(encoding="utf-8"))
    except json.JSONDecodeError:  # written atomically, so only a hand-edited file; its time is lost, as before
        entry = None
    if entry is not None:
        _append(attempts, entry)
    beat.unlink()
    return entry


def finished_earlier(attempts: Path, digests: dict[str, str]) -> set[str]:
    """The notebooks an earlier attempt of this run (its open attempts file) finished, whose ``notebook_digest`` is
    unchanged since (``digests``: notebook -> digest now): a resumed ``make reproduce`` skips them
    instead of reopening each (a minute or more, loading models to skip cached stages); ``--only`` reruns one."""
    if not attempts.exists():
        return set()
    return {a["notebook"] for a in read_jsonl(attempts)
            if a["outcome"] == "finished" and a.get("digest") is not None and a.get("digest") == digests.get(a["notebook"])}


def work_roots(profile: str) -> list[Path]:
    """Where a profile's notebooks leave their work: ``runs/<profile>`` and its seed roots (``hsir.seeds``)."""
    return [p for p in seed_roots(load_config(profile)).values() if p.is_dir()]


def _per_notebook(attempts: list[dict]) -> dict[str, list[dict]]:
    per: dict[str, list[dict]] = {}
    for a in attempts:
        per.setdefault(a["notebook"], []).append(a)
    return per


def _split(tries: list[dict]) -> tuple[list[dict], list[dict], int | None]:
    """A notebook's attempts: those its time counts (up to the first that finished, or all), those after, and the
    index of the first that finished."""
    first = next((i for i, a in enumerate(tries) if a["outcome"] == "finished"), None)
    return (tries, [], None) if first is None else (tries[: first + 1], tries[first + 1 :], first)


def attempts_box(attempts: list[dict], box: dict | None = None) -> dict:
    """The box a run ran on: the last one its attempts recorded, else ``box``, else this one (attempts logged before
    they recorded a box)."""
    return next((a["box"] for a in reversed(attempts) if a.get("box")), None) or box or _box()


def counted_attempts(attempts: list[dict]) -> list[dict]:
    """The attempts a run's total counts (``run_record``'s rule), in the file's order per notebook."""
    return [a for tries in _per_notebook(attempts).values() for a in _split(tries)[0]]


def run_record(profile: str, attempts: list[dict], box: dict | None = None, seeds: list[int] | None = None,
               roots: Sequence[Path] = (), work: tuple[list[dict], list[str]] | None = None) -> str:
    """``figures/<profile>/run.md``: each notebook's time to finish, summed over its attempts up to the first that
    finished (a stopped notebook's time up to the stop included, a killed one's up to its last heartbeat; the file
    says how many attempts each notebook took), the total, the box and the commits. Attempts after a
    notebook had finished (a resume reopening it, a rerun after a change) are counted apart, so the total is the
    run's own work and the overhead of stopping it is still shown. The box is the one the attempts recorded (the
    last that did), else ``box``, else this one. ``seeds``: a ``--seeds`` run's, named in its heading. ``roots``:
    the run folders, for a second table of where each notebook's counted time went (``hsir.time_spent``); ``work``,
    what ``work_entries`` read from them, where the caller has it already."""
    from hsir.bench.common import describe

    recorded = [a["box"] for a in attempts if a.get("box")]
    boxes = {json.dumps(b, sort_keys=True) for b in recorded}
    box = attempts_box(attempts, box)
    rows = []
    for nb, tries in sorted(_per_notebook(attempts).items()):
        tried, after, first = _split(tries)
        seconds = round(sum(a["seconds"] for a in tried))
        later = ", ".join(a["outcome"] for a in after if a["outcome"] != "finished")
        outcome = "finished" + (f" (later: {later})" if later else "") if first is not None else tries[-1]["outcome"]
        rows.append({"notebook": nb, "time": clock(seconds), "seconds": seconds, "attempts": len(tried),
                     "after": len(after), "after_seconds": round(sum(a["seconds"] for a in after)),
                     "outcome": outcome, "finished": first is not None})
    total, extra = sum(r["seconds"] for r in rows), sum(r["after_seconds"] for r in rows)
    unfinished = [r["notebook"] for r in rows if not r["finished"]]
    commits = sorted({a["commit"] for a in attempts})
    command = "make reproduce" + ("" if seeds is None else f' SEEDS="{" ".join(map(str, seeds))}"')
    head = [f"# `{command}`, profile {profile}: the run, measured",
            f"Total **{clock(total)}** ({total / 3600:.2f} h) over {len(rows)} notebooks"
            + (f"; not finished: {', '.join(unfinished)}" if unfinished else "")
            + (f"; plus {clock(extra)} reopening notebooks after they had finished" if extra else "") + ". "
            f"Attempts from {attempts[0]['time'] if attempts else '-'} to {attempts[-1]['time'] if attempts else '-'}; "
            f"commit{'s' if len(commits) > 1 else ''} {', '.join(commits) or '-'}.",
            f"Box: {describe(box)}"
            + (f" ({len(boxes)} different boxes in the attempts: their times do not add up as one box's)"
               if len(boxes) > 1 else "")
            + ("" if recorded else " (not recorded by the attempts: the box that wrote this file)") + ".",
            "Each notebook's time is summed over its attempts up to the first that finished "
            "(`runs/<profile>/logs/reproduce*.jsonl`): a stopped or failed attempt counts up to its stop, and the "
            "resumed attempt skips the stages that had finished. Attempts after a notebook had finished (a resume "
            "that reopened it, a rerun after a change) are the last two columns, not in the total."]
    table = ["| notebook | time | seconds | attempts | outcome | reopened after finishing | their seconds |",
             "|---|---|---|---|---|---|---|"]
    table += [f"| {r['notebook']} | {r['time']} | {r['seconds']} | {r['attempts']} | {r['outcome']} | "
              f"{r['after']} | {r['after_seconds']} |" for r in rows]
    parts = [] if not roots else [
        "## Where the time went",
        "Each notebook's counted time split by what its run folders recorded (`hsir.time_spent`): training is the "
        "trainers' own seconds (GRPO's rollouts included), evaluation and sampling the generation entries of the "
        "ledgers (greedy `eval_*`; D_u, histogram and VeriExit samples), scoring and selection the loop's `select` "
        "stages (InDiv's and the embedder's model loads included); other is the rest (kernels, loading the models "
        "that generate or train, vLLM engine starts, figures). An entry counts in the attempt whose time, from its "
        "end less its seconds to its end, holds the entry's end; work of an attempt that reopened a finished "
        "notebook is left out, as in the total. Folders: " + ", ".join(f"`{kit_path(Path(r))}`" for r in roots) + ".",
        breakdown_table(*breakdown(counted_attempts(attempts), work or work_entries(roots), KILLED, HEARTBEAT_EVERY))]
    return "\n\n".join(head) + "\n\n" + "\n".join(table) + "\n" + "".join(f"\n{p}\n" for p in parts)


def summary(profile: str, times: list[tuple[str, float]], out_dir: Path, log_dir: Path, echo=print) -> None:
    figures = figures_dir(profile)
    n_fig = len(list(figures.glob("*.png"))) if figures.is_dir() else 0
    echo(f"[reproduce] summary ({profile}):")
    for name, seconds in times:
        echo(f"  {name:<34} {clock(seconds):>8}")
    echo(f"  {'total':<34} {clock(sum(s for _, s in times)):>8}")
    for what, where in (("executed notebooks (tables inside)", out_dir), (f"figures ({n_fig} PNG, with PDFs)", figures),
                        ("run artifacts", runs_dir(profile)), ("logs (kernels and libraries)", log_dir)):
        echo(f"  {what + ':':<36} {where}")


def library_output(notebook: str | Path) -> list[str]:
    """The lines of library output an executed notebook shows in its code cells: its stream outputs (stdout and
    stderr) less the kit's own lines (``[hsir]`` progress, the kit's loggers' ``hsir.`` lines, a backend's
    one-line summary). Tables, figures and widgets are not library output. ``make quickstart``'s is counted with
    ``python -m hsir.reproduce --count-library-output runs/<profile>/notebooks/00_quickstart.ipynb``."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    lines = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                lines += [ln for ln in out.get("text", "").splitlines() if ln.strip() and not own_line(ln)]
    return lines


def own_line(line: str) -> bool:
    """A line the kit printed itself, not a library."""
    s = line.strip()
    return s.startswith((PREFIX, "backend:", "generation backend:")) or " hsir." in s[:60]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="embedded", help="smoke | embedded | paper")
    ap.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00_quickstart")
    ap.add_argument("--seeds", nargs="*", type=int, metavar="N",
                    help="other seeds for the claim rows of the loop notebooks (01-05), in place of the profile's, "
                         "e.g. --seeds 1 2 after a finished run: the first seed's work is reused (hsir.seeds)")
    ap.add_argument("--count-library-output", metavar="NOTEBOOK",
                    help="print the library output lines an executed notebook shows, and their count; run nothing")
    ap.add_argument("--record", metavar="ATTEMPTS",
                    help="write figures/<profile>/run.md (run-seeds-1-2.md with --seeds 1 2) again from an attempts "
                         "file, runs/<profile>/logs/reproduce*.jsonl (a finished run's is renamed with its date); "
                         "run nothing. The box is the attempts' own; attempts logged before they recorded it take "
                         "this box's, so run it there")
    ap.add_argument("--rates", metavar="FILE",
                    help="with --record: also write the stage rates the run measured (tokens/s of sampling, greedy "
                         "evaluation, SFT, DPO; a GRPO step) as a bench JSON for python -m hsir.plan --bench FILE")
    args = ap.parse_args(argv)
    if args.rates and not args.record:
        ap.error("--rates needs --record ATTEMPTS: the rates are of that run's counted attempts")
    if args.record:
        attempts, path = read_jsonl(Path(args.record)), figures_dir(args.profile) / f"run{run_tag(args.seeds)}.md"
        roots = work_roots(args.profile)
        work = work_entries(roots)  # the run folders, read once for run.md and the rates
        write_text(path, run_record(args.profile, attempts, seeds=args.seeds, roots=roots, work=work))
        print(f"[reproduce] the run, attempt by attempt: {path}")
        if args.rates:
            write_json(args.rates, measured_rates(counted_attempts(attempts), work, attempts_box(attempts),
                                                  KILLED, HEARTBEAT_EVERY))
            print(f"[reproduce] the rates it measured, for python -m hsir.plan --bench: {args.rates}")
        return 0
    if args.count_library_output:
        lines = library_output(args.count_library_output)
        print("\n".join(lines + [f"[reproduce] {len(lines)} line(s) of library output in {args.count_library_output}"]))
        return 0
    findings = preflight(args.profile)  # what the machine lacks, before a kernel starts (seconds, not minutes)
    if blocking(findings) or args.profile == "paper":
        print(preflight_text(args.profile, findings))
    if blocking(findings):
        print("[reproduce] stopped before any notebook: the preflight above lists what is missing")
        return 1
    import papermill as pm

    try:
        run(args.profile, args.only, seeds=args.seeds)
    except pm.PapermillExecutionError:
        return 1  # the failing notebook, cell, error and where the traceback is were printed above
    return 0


if __name__ == "__main__":
    sys.exit(main())
