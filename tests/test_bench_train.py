"""``python -m hsir.bench train`` and ``train-quality`` on the smoke model: the plain loop and the kit's default
side by side with their ratio to the measured ceiling; M0 built twice and compared on loss and D_u."""

from hsir.bench.train import m0_quality, train_bench


def test_train_bench_measures_the_plain_loop_beside_the_default():
    doc = train_bench("smoke:tiny-llama", steps=2, batch_size=2, only=["plain-loop", "default"])
    plain, default = doc["configs"]["plain-loop"], doc["configs"]["default"]
    assert "error" not in plain and "error" not in default, doc["configs"]
    for r in (plain, default):
        assert r["steps"] == 2 and r["real_tokens_per_s"] > 0 and 0 < r["ratio_to_ceiling"]
    assert plain["loop"] == "plain" and doc["ceiling_tokens_per_s"] > 0 and doc["machine"]["cpu_capability"]
    assert "avx512_bf16" in doc["machine"]  # the box, as every bench JSON names it (bench.common.machine)


def test_m0_quality_builds_m0_per_setting_and_pairs_them_on_du(tmp_path):
    doc = m0_quality("smoke", tmp_path)
    ref, new = doc["configs"]["fp32-weights-sdpa"], doc["configs"]["default"]
    assert ref["settings"]["weights"] == "fp32" and ref["settings"]["attn_implementation"] is None
    assert (tmp_path / "default" / "m0" / "model.safetensors").exists()
    vs = new["vs_fp32-weights-sdpa"]
    assert vs["final_loss_diff"] == new["final_loss"] - ref["final_loss"]
    assert vs["du_paired"]["n"] == ref["du"]["n"] == new["du"]["n"] > 0


def test_compiled_configs_run_on_a_cold_then_the_warm_inductor_cache(tmp_path, monkeypatch):
    """The cold configuration starts from an empty cache of the bench's own, the warm one finds what the cold run
    left; a warm run without a cold one before it says its cache was empty."""
    import json
    import subprocess
    from pathlib import Path
    from types import SimpleNamespace

    from hsir.bench.train import one_config

    seen = []

    def fake_run(cmd, env, **kw):  # a compiled run fills the cache it was given
        cache = Path(env["TORCHINDUCTOR_CACHE_DIR"])
        seen.append(sorted(p.name for p in cache.iterdir()))
        (cache / f"graph-{len(seen)}").write_text("")
        out = {"bf16": False, "real_tokens_per_s": 10.0, **json.loads(cmd[3])}
        return SimpleNamespace(returncode=0, stdout=json.dumps(out), stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    cache = str(tmp_path / "cache")
    run = lambda name: one_config(name, "m", 2, 2, cache, 100.0, 20.0)  # noqa: E731
    warm_alone = run("default-compiled-warm")
    cold, warm = run("default-compiled"), run("default-compiled-warm")
    assert seen == [[], [], ["graph-2"]]  # the cold run wiped what the lone warm run had left
    assert warm_alone["compile_cache_filled_before"] is False and cold["compile_cache_filled_before"] is False
    assert warm["compile_cache_filled_before"] is True and warm["torch_compile"] is True
    assert cold["ratio_to_ceiling"] == 0.5  # an fp32 run is held to the fp32 ceiling
