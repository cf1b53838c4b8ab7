"""The paper-shape bench: the tiny shape end to end on this CPU (the JSON hsir.plan reads, a truncated seed row
counted), the shipped Qwen configs at their public parameter counts, the rows-per-pass arithmetic, the 7B's
accelerate config."""

import json

from hsir.bench.__main__ import main as bench_main
from hsir.bench.paper_shape import count_params, shape_config
from hsir.config import ROOT
from hsir.memory import activation_bytes, rows_per_pass
from hsir.plan import load_bench, rate

GiB = 2**30
QWEN_7B = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4}  # Qwen2.5-7B-Instruct's public config; 7,615,616,512 parameters


def test_tiny_shape_end_to_end_writes_what_the_plan_reads(data_dir, tmp_path):
    out = tmp_path / "paper-shape-cpu-tiny.json"
    sets = ['m0_sft={"max_length": 256}', 'sft={"max_length": 256}', 'dpo={"max_length": 256}', "max_new_tokens=16",
            "K=2", "backend=hf", f"data_dir={data_dir}",
            'grpo={"prompts_per_step": 2, "num_generations": 2, "max_completion_length": 16, "rollouts": "transformers"}']
    rc = bench_main(["paper-shape", "--shape", "tiny", "--seed-rows", "4", "--problems", "2", "--steps", "1",
                     "--work", str(tmp_path / "work"), "--out", str(out), "--set", *sets])
    doc = load_bench(out)
    assert rc == 0 and doc["errors"] == [], doc["errors"]
    st = doc["stages"]
    assert doc["gpu"] == "cpu" and doc["model"].startswith("smoke:tiny-llama") and doc["parameters"] == count_params("tiny")
    assert doc["machine"]["cpu_capability"] and doc["overrides"]["K"] == 2
    # the paper profile's settings, apart from what --set and the bench (one epoch) changed
    assert doc["settings"]["m0_sft"]["batch_size"] == 32 and doc["settings"]["dpo"]["batch_size"] == 16
    assert doc["settings"]["grpo"]["lr"] == 1e-6
    m0 = st["sft"]["runs"]["SFT-Initial"]
    # R1 traces are far longer than 256 tokens: cut, counted, and no row trains past max_length
    assert m0["rows"] == 4 and m0["truncated_rows"] >= 1 and m0["max_length"] == 256
    assert 0 < m0["tokens"] <= 4 * 256
    assert st["sft"]["truncated_rows"] >= m0["truncated_rows"]
    hsir = st["sft"]["runs"]["HSIR-SFT"]
    assert hsir["rows"] == 2 * 2 and hsir["rows_from"].startswith("M0's samples")  # problems × K samples
    assert st["sft"]["tokens"] == m0["tokens"] + hsir["tokens"]
    assert st["generate"]["tokens"] > 0 and st["generate"]["sequences"] == 4
    assert st["dpo"]["rows"] == 4 and st["dpo"]["truncated_rows"] >= 1  # winners: the seed traces
    for stage in ("sft", "generate", "dpo"):
        assert rate(st, stage) > 0, stage
    for stage in (st["sft"], st["dpo"], st["grpo"]):
        assert 0 < stage["mfu"] < 1 and stage["peak_memory_gib"] > 0
    assert st["grpo"]["seconds_per_step"] > 0 and 0 < st["grpo"]["tokens_per_step"] <= 2 * 2 * 16
    assert st["grpo"]["steps"] == 1 and st["grpo"]["trl_batch"]["generation_batch_size"] == 4
    assert "measured" in doc["peak_flops"]["used"] and doc["peak_flops"]["flops"] > 0
    assert not (tmp_path / "work" / "m0.checkpoints").exists()


def test_qwen_configs_build_their_public_parameter_counts():
    # on the meta device: no memory, no weights
    assert count_params("qwen2.5-1.5b") == 1_543_714_304
    assert count_params("qwen2.5-3b") == 3_085_938_688
    for shape, hidden, layers in (("qwen2.5-1.5b", 1536, 28), ("qwen2.5-3b", 2048, 36)):
        c = shape_config(shape)
        got = (c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["tie_word_embeddings"], c["rope_theta"])
        assert got == (hidden, layers, 151936, True, 1e6)


def test_rows_per_pass_arithmetic():
    cfg = {"hidden_size": 100, "intermediate_size": 200, "num_hidden_layers": 10, "num_attention_heads": 4,
           "num_key_value_heads": 2}  # head 25, k/v width 50
    layer = 2 * (9 * 100 + 2 * 50 + 4 * 200)  # 3,600 bytes a token
    assert activation_bytes(cfg, False) == 10 * layer == 36_000
    assert activation_bytes(cfg, True) == 10 * 2 * 100 + layer == 5_600
    exact = {"state_bytes_per_param": 8, "reserve_bytes": 0, "headroom": 1.0, "activation_margin": 1.0}
    free = 1000 * 8 + 5 * 100 * 36_000  # states of 1,000 parameters, then exactly 5 rows of 100 tokens
    p = rows_per_pass(free, 1000, 100, 32, cfg, min_pass_tokens=400, **exact)
    assert (p.rows, p.gradient_checkpointing, p.tokens_per_pass) == (4, False, 400)  # 5 fit: 4 divides the batch
    p = rows_per_pass(free, 1000, 100, 32, cfg, min_pass_tokens=1000, **exact)  # 500 tokens a pass is too few
    assert (p.rows, p.gradient_checkpointing) == (32, True)  # checkpointed: 18e6 // 560,000 = 32, the whole batch
    p = rows_per_pass(free, 1000, 100, 16, cfg, min_pass_tokens=1000, sequences_per_row=2, **exact)  # DPO pairs
    assert (p.rows, p.gradient_checkpointing, p.tokens_per_pass) == (16, True, 3200)
    assert rows_per_pass(free, 1000, 100, 12, cfg, min_pass_tokens=400, **exact).rows == 4
    assert rows_per_pass(8000, 1000, 100, 32, cfg, **exact).rows == 0  # the states alone fill it


def test_paper_batch_fits_one_80gb_gpu_for_1_5b_and_3b_not_7b():
    free = 79 * GiB  # an 80 GB H100 with its CUDA context
    for shape in ("qwen2.5-1.5b", "qwen2.5-3b"):
        p = rows_per_pass(free, count_params(shape), 2048, 32, shape_config(shape))
        assert p.rows >= 1 and 32 % p.rows == 0 and p.tokens_per_pass >= 8192, (shape, p)
        assert rows_per_pass(free, count_params(shape), 2048, 16, shape_config(shape), sequences_per_row=2).rows >= 1
    # the 7B with fp32 master weights (16 bytes a parameter) does not fit: params/paper/accelerate/fsdp-7b.yaml
    assert rows_per_pass(free, 7_615_616_512, 2048, 32, QWEN_7B, state_bytes_per_param=16).rows == 0
    # its FSDP shards do: on 8 GPUs 4 rows a process (8 × 4 = 32); on 4 GPUs 8 rows, checkpointed
    assert rows_per_pass(free, 7_615_616_512 // 8, 2048, 4, QWEN_7B, state_bytes_per_param=16).rows == 4
    p = rows_per_pass(free, 7_615_616_512 // 4, 2048, 8, QWEN_7B, state_bytes_per_param=16)
    assert p.rows == 8 and p.gradient_checkpointing


def test_7b_accelerate_config_is_fsdp_over_several_gpus():
    from accelerate.commands.config.config_args import ClusterConfig

    c = ClusterConfig.from_yaml_file(str(ROOT / "params" / "paper" / "accelerate/fsdp-7b.yaml"))
    assert c.distributed_type == "FSDP" and c.num_processes > 1 and c.mixed_precision == "bf16"
    assert c.fsdp_config["fsdp_activation_checkpointing"] and c.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert json.dumps(c.fsdp_config)  # plain values, as accelerate launch passes them on
