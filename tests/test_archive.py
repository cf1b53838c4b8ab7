import gzip

import pytest

from hsir import archive, claims, results
from hsir.config import load_config
from hsir.runs import read_json
from tests.test_claims import N_OPS, fake_roots, write_round


def with_m0(roots: dict, weights: bytes = b"the weights of M0") -> dict:
    for root in roots.values():
        (root / "m0").mkdir(parents=True, exist_ok=True)
        (root / "m0" / "model.safetensors").write_bytes(weights)
    return roots


def test_archived_rounds_give_the_claims_the_run_folders_give(tmp_path):
    roots = with_m0(fake_roots(tmp_path / "runs"))
    dest = tmp_path / "rounds"
    written = archive.archive_roots(roots, dest)
    assert set(written) == {0, 1, 2}
    first = dest / "seed0" / "methods" / "HSIR-DPO" / "iter_1"
    assert sorted(p.name for p in first.iterdir()) == ["eval_synthetic.jsonl.gz", "metrics.json"]
    assert gzip.decompress((first / "eval_synthetic.jsonl.gz").read_bytes()) == \
        (roots[0] / "methods" / "HSIR-DPO" / "iter_1" / "eval_synthetic.jsonl").read_bytes()
    assert read_json(dest / "seed0" / "m0.json")["weights"] == archive.m0_weights(roots[0])

    archived = archive.archived_roots(roots, dest)
    assert archived == {s: dest / f"seed{s}" for s in range(3)}
    cols = ["claim", "comparison", "seeds", "n", "diff", "lo", "hi", "per seed", claims.STEPS_A, "verdict"]
    from_runs = claims.claims_table(roots, n_ops=N_OPS, n_boot=300)[cols]
    from_archive = claims.claims_table(archived, n_ops=N_OPS, n_boot=300)[cols]
    assert from_archive.equals(from_runs)

    # archiving again writes nothing: the bytes (gzip without a timestamp) are the same
    assert archive.archive_roots(roots, dest) == {0: [], 1: [], 2: []}
    # a round finished since is added, the rest kept
    write_round(roots[2], "IRPO", {"q0": True}, 150, 3)
    assert [p.name for p in archive.archive_roots(roots, dest)[2]] == ["metrics.json", "eval_synthetic.jsonl.gz"]


def test_an_archived_root_refuses_rounds_of_another_m0(tmp_path):
    roots = with_m0(fake_roots(tmp_path / "runs"))
    dest = tmp_path / "rounds"
    archive.archive_roots(roots, dest)
    before = (dest / "seed1" / "methods" / "GRPO" / "iter_1" / "metrics.json").read_bytes()
    (roots[1] / "m0" / "model.safetensors").write_bytes(b"a rebuilt M0")
    (roots[1] / "methods" / "GRPO" / "iter_1" / "metrics.json").write_text('{"synthetic": {"accuracy": 0.9}}')
    with pytest.raises(RuntimeError, match=f"{archive.m0_weights(dest / 'seed1')}.*{archive.m0_weights(roots[1])}"):
        archive.archive_root(roots[1], dest / "seed1")
    assert (dest / "seed1" / "methods" / "GRPO" / "iter_1" / "metrics.json").read_bytes() == before
    with pytest.raises(FileNotFoundError, match="no M0"):
        archive.archive_root(tmp_path / "empty", dest / "empty")


def test_m0_note_says_whether_the_seeds_share_one_m0(tmp_path):
    roots = with_m0(fake_roots(tmp_path))
    assert archive.m0_note(roots).startswith("Every seed starts from one M0")
    (roots[2] / "m0" / "model.safetensors").write_bytes(b"another M0")
    note = archive.m0_note(roots)
    assert "2 different M0 builds" in note and "training noise" in note
    assert archive.m0_note({0: tmp_path / "nothing"}) == ""


def test_the_cli_archives_and_rebuilds_the_claims_from_the_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))
    runs = tmp_path / "runs"
    runs.mkdir()
    seed = load_config("smoke").seed
    for s, made in fake_roots(tmp_path / "made").items():  # the smoke profile's seed roots, filled with fake rounds
        made.rename(runs / ("smoke" if s == seed else f"smoke-seed{s}"))
    with_m0({s: p for s, p in enumerate(runs.iterdir())})
    assert results.main(["--profile", "smoke", "--archive"]) == 0
    rounds = tmp_path / "figures" / "smoke" / "rounds"
    assert sorted(p.name for p in rounds.iterdir()) == ["smoke", "smoke-seed1", "smoke-seed2"]

    for root in (tmp_path / "runs").iterdir():  # the machine is gone: only the archive is left
        for f in root.rglob("eval_*.jsonl"):
            f.unlink()
    assert results.main(["--profile", "smoke", "--claims", "--archived"]) == 0
    text = (tmp_path / "figures" / "smoke" / "claims.md").read_text(encoding="utf-8")
    assert "Every seed starts from one M0" in text and "figures/smoke/rounds/smoke-seed2" in text
    assert "Verdicts: 2 holds, 1 contradicted, 1 unresolved at this size, 4 not run" in text
