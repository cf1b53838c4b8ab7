"""Run a profile's notebooks in order with papermill: ``python -m hsir.reproduce --profile embedded``.

A notebook runs in a profile when ``params/<profile>/<notebook stem>.yaml`` exists; its keys become the
notebook's parameters (plus ``profile``). Executed copies go to ``runs/<profile>/notebooks/``; the notebooks
write their figures under ``figures/<profile>/``. Profiles: ``smoke`` (tiny random model, for tests),
``embedded`` (the real 135M model on a CPU), ``paper`` (hub models on GPUs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


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


def run(profile: str, only: list[str] | None = None, out_root: Path | None = None, kernel: str | None = None) -> list[Path]:
    import papermill as pm

    out_dir = (out_root or ROOT / "runs" / profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for nb, params_file in notebooks_for(profile, only):
        params = yaml.safe_load(params_file.read_text()) or {}
        if not isinstance(params, dict):
            raise SystemExit(f"{params_file}: expected a mapping of parameter names to values")
        params["profile"] = profile
        out = out_dir / nb.name
        t0 = time.perf_counter()
        print(f"[reproduce] {nb.name} ({profile}) ...", flush=True)
        pm.execute_notebook(str(nb), str(out), parameters=params, cwd=str(ROOT), kernel_name=kernel,
                            progress_bar=False, log_output=False)
        print(f"[reproduce] {nb.name} done in {time.perf_counter() - t0:.0f} s -> {out}", flush=True)
        done.append(out)
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="embedded", help="smoke | embedded | paper")
    ap.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00_quickstart")
    args = ap.parse_args(argv)
    run(args.profile, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
