"""The kit against each box's own ceiling, as ratios: ``python -m hsir.bench boxes`` reads every ``bench/*.json``
that measured a ceiling (train, generate) and writes ``bench/boxes.md``, one row per configuration.

Only ratios measured in one run are comparable across boxes (these machines are noisy, and an AVX2 box emulates
bf16): each row's ratio is to the ceiling the same run measured, and ``× plain loop`` is to the plain PyTorch loop
of the same run. Files written before the bench named the CPU's bf16 flags say only the capability; files from
before the ceiling was the run's own measured matmul rate (no ``matmul_gflops``) are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

from hsir.runs import write_text


def box_name(machine: dict) -> str:
    """The box in a few words: capability, then AMX / AVX512-BF16 where the file records them, and an OpenMP runtime
    other than torch's own (``bench.common.openmp_runtime``)."""
    cap = machine.get("cpu_capability") or machine.get("cpu") or "?"
    flags = [name for key, name in (("amx", "AMX"), ("avx512_bf16", "AVX512-BF16")) if machine.get(key)]
    unknown = "" if "avx512_bf16" in machine else " (flags not recorded)"
    omp = f", {machine['openmp']}" if machine.get("openmp") not in (None, "libgomp") else ""  # torch's own: unsaid
    return " ".join([cap, *flags]) + unknown + omp + (f", GPU {machine['gpu']}" if machine.get("gpu") else "")


def box_rows(paths: list[Path]) -> list[dict]:
    """One row per configuration with a ratio to the ceiling, from the bench files ``paths``."""
    rows = []
    for path in sorted(paths):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a bench JSON ({e})") from e
        configs, ceiling = doc.get("configs") or {}, doc.get("ceiling_tokens_per_s")
        # before `matmul_gflops`, the ceiling came from another formula: those ratios do not compare
        if doc.get("bench") not in ("train", "generate") or not ceiling or "matmul_gflops" not in doc:
            continue
        plain = (configs.get("plain-loop") or {}).get("real_tokens_per_s")
        for name, r in configs.items():
            if not isinstance(r, dict) or r.get("ratio_to_ceiling") is None:
                continue
            rate = r.get("real_tokens_per_s") or r.get("tokens_per_s")
            rows.append({"box": box_name(doc.get("machine") or {}), "bench": doc["bench"], "file": path.name,
                         "config": name, "tokens/s": rate, "ceiling": ceiling,
                         "ratio": r["ratio_to_ceiling"], "x plain": round(rate / plain, 2) if plain and rate else None,
                         "time": doc.get("time", "")[:10]})
    return rows


def boxes_markdown(rows: list[dict]) -> str:
    head = ("| box | bench | file | configuration | tokens/s | ceiling | of ceiling | × plain loop | date |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['box']} | {r['bench']} | `{r['file']}` | {r['config']} | {r['tokens/s']} | {r['ceiling']} | "
             f"{r['ratio']:.1%} | {r['x plain'] if r['x plain'] is not None else '—'} | {r['time']} |"
             for r in sorted(rows, key=lambda r: (r["bench"], r["box"], r["file"], -r["ratio"]))]
    return ("# The kit against each box's ceiling\n\nWritten by `python -m hsir.bench boxes` from `bench/*.json` "
            "(hsir.bench.boxes: ratios to the ceiling measured in the same run; a bf16 ceiling where the run used "
            "bf16). Targets (issue 23): training ≥ 55% and ≥ 1.2× the plain loop; sampling ≥ 60%.\n\n"
            + head + "\n" + "\n".join(lines) + "\n")


def write_boxes(folder: str | Path = "bench", out: str | Path | None = None) -> str:
    folder = Path(folder)
    text = boxes_markdown(box_rows([p for p in folder.glob("*.json")]))
    write_text(out or folder / "boxes.md", text)
    return text
