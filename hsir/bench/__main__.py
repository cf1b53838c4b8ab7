"""``python -m hsir.bench WHICH``: run one benchmark and write its JSON (default ``bench/<which>.json``), with the
machine it ran on (``common.machine``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hsir.bench.common import machine
from hsir.bench.generate import agreement_bench, generate_bench, one_generate, run_in_subprocess


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["boxes"]:  # no run: the table of every bench file's ratios, bench/boxes.md
        from hsir.bench.boxes import write_boxes

        print(write_boxes())
        return 0
    if argv[:1] == ["paper-shape"]:  # options and output of its own: python -m hsir.bench paper-shape --help
        from hsir.bench.paper_shape import main as paper_shape

        return paper_shape(argv[1:])
    ap = argparse.ArgumentParser(description="HSIR kit benchmarks")
    ap.add_argument("which", choices=["generate", "scoring", "agreement", "device", "veriexit", "train", "train-quality", "grpo",
                                      "eval-chunk", "paper-shape", "_generate", "_scoring"])
    ap.add_argument("config", nargs="?", default="{}")
    ap.add_argument("--model", default="embedded:smollm2-135m")
    ap.add_argument("--out", default=None, help="JSON path (default bench/<which>.json)")
    ap.add_argument("--sweep", action="store_true", help="also the vLLM settings sweep")
    ap.add_argument("--only", nargs="*", help="configuration names to run")
    ap.add_argument("--quick", action="store_true", help="device: tiny sizes (the default on a CPU)")
    ap.add_argument("--dtype", default="fp32", help="agreement: the dtype both backends run in")
    ap.add_argument("--steps", type=int, default=5, help="train, grpo: optimizer steps per configuration")
    ap.add_argument("--root", help="train-quality: where the M0s go (default: a temporary folder)")
    ap.add_argument("--profile", default="embedded", help="veriexit, grpo: the loop profile (params/<profile>/selfimprove.yaml)")
    ap.add_argument("--problems", type=int, default=512, help="eval-chunk: test problems evaluated per run")
    ap.add_argument("--chunks", type=int, nargs="+", default=None, help="eval-chunk: problems per call, each in turn")
    ap.add_argument("--repeats", type=int, default=2, help="eval-chunk: runs of each chunk size")
    args = ap.parse_args(argv)
    if args.which == "_generate":
        print(json.dumps(one_generate(json.loads(args.config), args.model, 32, 8, 128)))
        return 0
    if args.which == "_scoring":
        from hsir.bench.scoring import scoring_bench

        print(json.dumps(scoring_bench(args)))
        return 0
    if args.which == "generate":
        result = generate_bench(args)
    elif args.which == "agreement":
        result = agreement_bench(args)
    elif args.which == "device":
        from hsir.bench.device import device_check

        result = device_check(args)
    elif args.which == "train":
        from hsir.bench.train import train_bench

        result = train_bench(args.model, steps=args.steps, only=args.only)
    elif args.which == "train-quality":
        from hsir.bench.train import BENCH_ONLY, QUALITY_CONFIGS, TRAIN_CONFIGS, m0_quality

        # M0s under SFTSettings, not the plain loop or the patched LM head
        known = QUALITY_CONFIGS | {k: v for k, v in TRAIN_CONFIGS.items() if not set(v) & set(BENCH_ONLY)}
        if set(args.only or []) - set(known):
            ap.error(f"train-quality: unknown configuration(s) {sorted(set(args.only) - set(known))}; valid: {sorted(known)}")
        ref = next(iter(QUALITY_CONFIGS))  # every candidate is checked against the reference, which comes first
        chosen = {ref: QUALITY_CONFIGS[ref]} | {k: known[k] for k in args.only} if args.only else None
        result = m0_quality(args.profile, args.root, chosen)
    elif args.which == "grpo":
        from hsir.bench.grpo import grpo_bench

        result = grpo_bench(args.profile, steps=args.steps, only=args.only)
    elif args.which == "eval-chunk":
        from hsir.bench.eval_chunk import CHUNKS, eval_chunk_bench

        model = None if args.model == ap.get_default("model") else args.model  # None: a trained round of the profile
        result = eval_chunk_bench(args.profile, model, args.problems, args.chunks or CHUNKS, args.repeats)
    elif args.which == "veriexit":
        from hsir.bench.veriexit import veriexit_bench

        result = veriexit_bench(args.profile)
    else:
        result = run_in_subprocess("scoring", {}, args)
    suffix = f"-{args.dtype}" if args.which == "agreement" else ""
    if isinstance(result, dict):
        result.setdefault("machine", machine())
    out = Path(args.out or f"bench/{args.which}{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"[bench] wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
