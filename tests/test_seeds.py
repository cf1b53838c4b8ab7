import os

import pytest

import hsir.selfimprove
from hsir import seeds
from hsir.claims import claim_methods
from hsir.config import LoopConfig
from hsir.methods import METHODS


def test_a_seed_runs_in_its_sibling_root_with_its_own_seed(tmp_path):
    cfg = LoopConfig(root=str(tmp_path / "embedded"))
    assert seeds.seed_config(cfg, 0) is cfg
    s2 = seeds.seed_config(LoopConfig(root=str(tmp_path / "embedded"), sft={"lr": 1e-4}, m0_sft={"lr": 1e-4}), 2)
    assert (s2.seed, s2.run_root) == (2, tmp_path / "embedded-seed2")
    assert s2.sft == {"lr": 1e-4, "seed": 2} and s2.dpo == {"seed": 2}  # the rounds' row order too
    assert s2.m0_sft == {"lr": 1e-4} and s2.data_seed == cfg.data_seed  # the same D_s and M0 settings: one M0


def test_seed_roots_finds_the_siblings_that_exist(tmp_path):
    cfg = LoopConfig(root=str(tmp_path / "embedded"))
    for name in ("embedded-seed2", "embedded-seed1", "embedded-seedx", "other-seed3"):
        (tmp_path / name).mkdir()
    assert seeds.seed_roots(cfg) == {0: tmp_path / "embedded", 1: tmp_path / "embedded-seed1",
                                     2: tmp_path / "embedded-seed2"}
    assert seeds.seed_roots(cfg, [0, 5]) == {0: tmp_path / "embedded", 5: tmp_path / "embedded-seed5"}


def test_share_m0_links_m0_and_its_evaluation_once(tmp_path):
    cfg = LoopConfig(root=str(tmp_path / "embedded"))
    (cfg.run_root / "m0").mkdir(parents=True)
    (cfg.run_root / "m0" / "sft.json").write_text("{}")
    s1 = seeds.seed_config(cfg, 1)
    (cfg.run_root / "methods" / "SFT-Initial" / "iter_1").mkdir(parents=True)
    assert seeds.share_m0(cfg, s1) == [s1.run_root / "m0"]  # SFT-Initial not evaluated yet: not linked
    assert (s1.run_root / "m0" / "sft.json").read_text() == "{}"
    assert not os.path.isabs(os.readlink(s1.run_root / "m0"))  # relative: the runs folder can move
    (cfg.run_root / "methods" / "SFT-Initial" / "iter_1" / "metrics.json").write_text("{}")
    assert seeds.share_m0(cfg, s1) == [s1.run_root / "methods" / "SFT-Initial"]
    assert (s1.run_root / "methods" / "SFT-Initial" / "iter_1").is_dir()
    assert seeds.share_m0(cfg, s1) == []  # nothing left to link
    (cfg.run_root / "m0" / "sft.json").write_text('{"rebuilt": true}')  # M0 trained again since seed 1 ran
    with pytest.raises(RuntimeError, match="rebuilt"):
        seeds.share_m0(cfg, s1)
    own = seeds.seed_config(cfg, 2)
    (own.run_root / "m0").mkdir(parents=True)  # a seed root with its own M0 keeps it
    seeds.share_m0(cfg, own)
    assert not (own.run_root / "m0").is_symlink()


def test_a_seed_whose_m0_link_dangles_is_refused(tmp_path):
    cfg = LoopConfig(root=str(tmp_path / "embedded"))
    (cfg.run_root / "m0").mkdir(parents=True)
    (cfg.run_root / "m0" / "sft.json").write_text("{}")
    s1 = seeds.seed_config(cfg, 1)
    seeds.share_m0(cfg, s1)
    (cfg.run_root / "m0").rename(tmp_path / "elsewhere")
    (cfg.run_root / "m0").mkdir()
    (cfg.run_root / "m0" / "sft.json").write_text("{}")
    (s1.run_root / "m0").unlink()
    os.symlink("../gone/m0", s1.run_root / "m0")
    with pytest.raises(RuntimeError, match="is gone"):
        seeds.share_m0(cfg, s1)


def test_run_seeds_gives_the_other_seeds_the_claim_rows_only(tmp_path, monkeypatch):
    cfg = LoopConfig(root=str(tmp_path / "embedded"))
    (cfg.run_root / "m0").mkdir(parents=True)
    (cfg.run_root / "m0" / "sft.json").write_text("{}")
    monkeypatch.setattr(hsir.selfimprove, "build_m0", lambda c: c.run_root / "m0")
    calls = []

    def run(name, c, engine):
        assert c.seed == 0 or (c.run_root / "m0").is_symlink()  # the shared M0 is in place before a seed runs
        calls.append((c.seed, c.run_root.name, name))

    names = ["SFT-Initial", "SFT-Oracle", "STaR", "ReST-EM", "RFT", "HSIR-SFT"]
    done = hsir.selfimprove.run_seeds(names, cfg, [2, 0, 1, 2], run=run)
    assert done == {0: names, 2: ["STaR", "ReST-EM", "HSIR-SFT"], 1: ["STaR", "ReST-EM", "HSIR-SFT"]}
    assert calls[:6] == [(0, "embedded", n) for n in names]  # the profile's seed first, every row
    assert calls[6:9] == [(2, "embedded-seed2", n) for n in ["STaR", "ReST-EM", "HSIR-SFT"]]
    assert len(calls) == 12
    calls.clear()
    assert hsir.selfimprove.run_seeds(["ReST-EM"], cfg, [1], run=run) == {0: ["ReST-EM"], 1: ["ReST-EM"]}
    assert calls == [(0, "embedded", "ReST-EM"), (1, "embedded-seed1", "ReST-EM")]  # the profile's seed always runs


def test_every_claim_row_is_a_method_of_the_kit():
    assert claim_methods() <= set(METHODS)
    assert {"HSIR-SFT", "ReST-EM", "select-random", "GRPO", "H-GRPO", "IRPO", "HSIR-DPO"} <= claim_methods()
    assert not {"SFT-Initial", "SFT-Oracle", "RFT", "ReGenesis"} & claim_methods()
