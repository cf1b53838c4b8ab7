"""``python -m hsir.bench eval-chunk`` on the smoke model: every size runs on one engine in turn, each repeat is
compared with its own size's first run and with the first size's, and the speedup is relative to the first size."""

from hsir.bench.eval_chunk import eval_chunk_bench


def test_each_size_runs_in_turn_and_repeats_itself():
    doc = eval_chunk_bench("smoke", "smoke:tiny-llama", n_problems=6, chunks=(2, 6), repeats=2)
    assert [(r["chunk"], r["repeat"]) for r in doc["runs"]] == [(2, 0), (6, 0), (2, 1), (6, 1)]
    assert doc["problems"] == 6 and doc["model"] == "smoke:tiny-llama"
    first = doc["runs"][0]
    assert first["same_text_as_first"] == first["same_text_as_own_first"] == 6
    for r in doc["runs"]:
        assert r["tokens"] > 0 and r["seconds"] > 0 and 0 <= r["accuracy"] <= 1
        assert r["same_text_as_own_first"] == 6  # greedy on one engine repeats itself at a given size
    assert doc["speedup"]["2"] == 1.0 and set(doc["mean_seconds"]) == {"2", "6"}
