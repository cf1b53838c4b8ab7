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
