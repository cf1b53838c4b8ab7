import gzip
import os

import pytest

from hsir import archive, claims, reproduce, results
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
    written, refused = archive.archive_roots(roots, dest)
    assert set(written) == {0, 1, 2} and not refused
    first = dest / "seed0" / "methods" / "HSIR-DPO" / "iter_1"
    assert sorted(p.name for p in first.iterdir()) == ["eval_synthetic.jsonl.gz", "metrics.json"]
    assert gzip.decompress((first / "eval_synthetic.jsonl.gz").read_bytes()) == \
        (roots[0] / "methods" / "HSIR-DPO" / "iter_1" / "eval_synthetic.jsonl").read_bytes()
    assert read_json(dest / "seed0" / "m0.json")["weights"] == archive.m0_weights(roots[0])

    archived = {s: dest / f"seed{s}" for s in range(3)}
    cols = ["claim", "comparison", "seeds", "n", "diff", "lo", "hi", "per seed", claims.STEPS_A, "verdict"]
    from_runs = claims.claims_table(roots, n_ops=N_OPS, n_boot=300)[cols]
    from_archive = claims.claims_table(archived, n_ops=N_OPS, n_boot=300)[cols]
    assert from_archive.equals(from_runs)

    # archiving again writes nothing, even where another zlib would have packed the same rows in other bytes
    gz = first / "eval_synthetic.jsonl.gz"
    gz.write_bytes(gzip.compress(gzip.decompress(gz.read_bytes()), compresslevel=1))
    assert archive.archive_roots(roots, dest) == ({0: [], 1: [], 2: []}, {})
    # a round finished since is added, its metrics (the round's marker) last; the rest kept
    write_round(roots[2], "IRPO", {"q0": True}, 150, 3)
    assert [p.name for p in archive.archive_roots(roots, dest)[0][2]] == ["eval_synthetic.jsonl.gz", "metrics.json"]


def test_only_evaluated_rounds_of_the_roots_own_methods_are_archived(tmp_path):
    roots = with_m0(fake_roots(tmp_path / "runs"))
    # seed 1's M0 and SFT-Initial are links to seed 0's (hsir.seeds): its M0 is seed 0's, SFT-Initial is not its row
    write_round(roots[0], "SFT-Initial", {"q0": True}, 100, 2)
    for part in ("m0", "methods/SFT-Initial"):
        target = roots[1] / part
        if target.exists():
            for p in target.iterdir():
                p.unlink()
            target.rmdir()
        os.symlink(roots[0] / part, target)
    (roots[1] / "methods" / "GRPO" / "iter_1" / "eval_synthetic.jsonl").unlink()  # killed before its evaluation
    (roots[2] / "methods").rename(tmp_path / "elsewhere")  # a seed with no round yet
    dest = tmp_path / "rounds"
    written, refused = archive.archive_roots(roots, dest)
    assert not refused and written[2] == [] and not (dest / "seed2").exists()
    assert (dest / "seed0" / "methods" / "SFT-Initial").is_dir() and not (dest / "seed1" / "methods" / "SFT-Initial").exists()
    assert not (dest / "seed1" / "methods" / "GRPO").exists()
    assert read_json(dest / "seed1" / "m0.json")["weights"] == read_json(dest / "seed0" / "m0.json")["weights"]


def test_out_of_distribution_evaluations_are_archived_in_the_run_folders_layout(tmp_path):
    """Table 6 / Fig. 4's evaluations (notebook 06) outlive the machine too; one cut before its rows is not copied."""
    roots = with_m0(fake_roots(tmp_path / "runs"))
    done = roots[0] / "generalization" / "IRPO" / "iter_1" / "gsm8k-test"
    cut = roots[0] / "generalization" / "HSIR-DPO" / "iter_1" / "gsm8k-test"
    for folder in (done, cut):
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text('{"gsm8k-test": {"accuracy": 0.25}}')
    (done / "eval_gsm8k-test.jsonl").write_text('{"qid": "q0", "correct": true}\n')
    written, refused = archive.archive_roots({0: roots[0]}, tmp_path / "rounds")
    kept = tmp_path / "rounds" / "seed0" / "generalization"
    assert not refused and sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()) == [
        "IRPO/iter_1/gsm8k-test/eval_gsm8k-test.jsonl.gz", "IRPO/iter_1/gsm8k-test/metrics.json"]
    assert read_json(kept / "IRPO" / "iter_1" / "gsm8k-test" / "metrics.json")["gsm8k-test"]["accuracy"] == 0.25


def test_an_archived_root_refuses_rounds_of_another_m0_and_the_others_go_on(tmp_path):
    roots = with_m0(fake_roots(tmp_path / "runs"))
    dest = tmp_path / "rounds"
    archive.archive_roots({0: roots[0], 1: roots[1]}, dest)
    before = (dest / "seed0" / "methods" / "GRPO" / "iter_1" / "metrics.json").read_bytes()
    # another machine: M0 rebuilt with other weights, seed 0 ran again, seed 2 ran there only
    with_m0(roots, b"a rebuilt M0")
    (roots[0] / "methods" / "GRPO" / "iter_1" / "metrics.json").write_text('{"synthetic": {"accuracy": 0.9}}')
    written, refused = archive.archive_roots(roots, dest)
    assert set(refused) == {0, 1} and written[2]
    assert archive.m0_weights(dest / "seed0") in refused[0] and archive.m0_weights(roots[0]) in refused[0]
    assert (dest / "seed0" / "methods" / "GRPO" / "iter_1" / "metrics.json").read_bytes() == before
    note = archive.m0_note({s: dest / f"seed{s}" for s in range(3)})
    assert "2 different M0 builds" in note and "training noise" in note
    assert archive.m0_note({0: dest / "seed0", 1: dest / "seed1"}).startswith("Every seed starts from one M0")
    assert archive.m0_note({0: tmp_path / "nothing"}) == ""


def smoke_roots(tmp_path, monkeypatch):
    """The smoke profile's seed roots (runs/smoke, runs/smoke-seed<s>) filled with the fake rounds."""
    monkeypatch.setenv("HSIR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HSIR_FIGURES_DIR", str(tmp_path / "figures"))
    runs = tmp_path / "runs"
    runs.mkdir()
    seed = load_config("smoke").seed
    for s, made in fake_roots(tmp_path / "made").items():
        made.rename(runs / ("smoke" if s == seed else f"smoke-seed{s}"))
    return with_m0({s: p for s, p in enumerate(runs.iterdir())})


def test_the_cli_archives_and_rebuilds_the_claims_from_the_archive(tmp_path, monkeypatch, capsys):
    smoke_roots(tmp_path, monkeypatch)
    with pytest.raises(FileNotFoundError, match="no archived rounds"):  # nothing archived yet: claims.md untouched
        results.main(["--profile", "smoke", "--claims", "--archived"])
    assert not (tmp_path / "figures" / "smoke" / "claims.md").exists()
    assert results.main(["--profile", "smoke", "--archive"]) == 0
    rounds = tmp_path / "figures" / "smoke" / "rounds"
    assert sorted(p.name for p in rounds.iterdir()) == ["smoke", "smoke-seed1", "smoke-seed2"]
    assert "files written under" in capsys.readouterr().out

    for f in (tmp_path / "runs").rglob("eval_*.jsonl"):  # the machine is gone: only the archive is left
        f.unlink()
    assert results.main(["--profile", "smoke", "--claims", "--archived"]) == 0
    text = (tmp_path / "figures" / "smoke" / "claims.md").read_text(encoding="utf-8")
    assert "Every seed starts from one M0" in text and "figures/smoke/rounds/smoke-seed2" in text
    assert "Verdicts: 2 holds, 1 contradicted, 2 unresolved at this size, 4 not run" in text
    with pytest.raises(FileNotFoundError, match="smoke-seed3"):
        results.main(["--profile", "smoke", "--claims", "--archived", "--seeds", "0", "3"])
    with pytest.raises(SystemExit):
        results.main(["--profile", "smoke", "--archived"])  # --archived without --claims


def test_reproduce_archives_after_a_run_and_never_raises(tmp_path, monkeypatch):
    smoke_roots(tmp_path, monkeypatch)
    lines = []
    reproduce.archive("smoke", lines.append)
    assert lines and "archived" in lines[0] and (tmp_path / "figures" / "smoke" / "rounds" / "smoke" / "m0.json").exists()
    (tmp_path / "figures" / "smoke" / "rounds" / "smoke" / "m0.json").write_text("{not json")
    lines.clear()
    reproduce.archive("smoke", lines.append)  # a broken archive: printed, the run's own outcome stands
    assert len(lines) == 1 and lines[0].startswith("[reproduce] rounds not archived: ValueError") and "m0.json" in lines[0]
