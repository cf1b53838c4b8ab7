"""Benchmarks, written to JSON: ``python -m hsir.bench generate|scoring|agreement|device|veriexit|train|grpo``.

One module per bench (``generate`` also holds ``agreement``), a shared leaf (``common``: the ceiling, memory,
machine facts) and the command line (``__main__``). Each configuration runs in its own process where start-up
and peak memory must be its own; ratios are only meaningful between figures of one run.
"""
