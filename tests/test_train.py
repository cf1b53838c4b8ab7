import json
import math
import shutil

import pytest
import torch

from hsir.tasks import get_task
from hsir.train import SFTSettings, sft_report, sft_rows, train_sft


def test_rows_are_the_tasks_prompt_then_the_trace():
    task = get_task("synthetic")
    problems = task.load("seed", limit=3)
    rows = sft_rows(task, problems)
    assert [r["prompt"] for r in rows] == [task.messages(p) for p in problems]
    assert rows[0]["completion"] == [{"role": "assistant", "content": problems[0].reasoning}]
    with pytest.raises(ValueError, match=problems[1].qid):
        sft_rows(task, problems, ["a trace", "", "another"])
    with pytest.raises(ValueError, match="2 traces for 3 problems"):
        sft_rows(task, problems, ["a", "b"])


def test_train_writes_a_loadable_model_once(tmp_path, smoke_model):
    from hsir.models import load_model

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=8))
    out = train_sft("smoke:tiny-llama", rows, tmp_path / "m0", SFTSettings(lr=1e-3, batch_size=4, micro_batch_size=4, bf16=False))
    report = sft_report(out)
    assert report["steps"] == 2 and report["rows"] == 8 and math.isfinite(report["train_loss"])
    assert not (tmp_path / "m0.checkpoints").exists()
    trained, tok = load_model(str(out), dtype="fp32")
    base, _ = smoke_model
    assert tok.chat_template == smoke_model[1].chat_template  # sampling uses the same template it was trained on
    changed = [n for n, p in trained.named_parameters() if not torch.equal(p, base.get_parameter(n))]
    assert changed, "training left every weight as it was"
    stamp = (out / "sft.json").stat().st_mtime_ns
    assert train_sft("smoke:tiny-llama", rows, out) == out  # a finished model is reused, not retrained
    assert (out / "sft.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "sft.json").read_text())["settings"]["lr"] == 1e-3


class Kill(Exception):
    pass


def test_padding_free_and_micro_batches_train_the_same_loss_and_weights_as_padded(tmp_path, smoke_model):
    """Rows of different lengths: concatenated with restarting position ids (no attention across rows), and in
    accumulated micro-batches, they give the padded whole batch's loss to 1e-4, and the same update."""
    from hsir.models import load_model

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=8))
    runs = {"padded": (False, 4, None), "padding-free": (True, 4, None), "padding-free-micro2": (True, 2, None),
            "padding-free-eager": (True, 4, "eager")}  # eager attention must not see across packed rows either
    out = {name: train_sft("smoke:tiny-llama", rows, tmp_path / name, SFTSettings(
        lr=1e-3, batch_size=4, bf16=False, padding_free=free, micro_batch_size=micro, attn_implementation=attn))
        for name, (free, micro, attn) in runs.items()}
    assert sft_report(out["padding-free-micro2"])["settings"]["micro_batch_size"] == 2
    ref, _ = load_model(str(out["padded"]), dtype="fp32")
    for name in ("padding-free", "padding-free-micro2", "padding-free-eager"):
        assert abs(sft_report(out[name])["train_loss"] - sft_report(out["padded"])["train_loss"]) < 1e-4, name
        other, _ = load_model(str(out[name]), dtype="fp32")
        for (pname, p), q in zip(ref.named_parameters(), other.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-4), (name, pname)
    with pytest.raises(ValueError, match="micro_batch_size=3 must divide batch_size=4"):
        train_sft("smoke:tiny-llama", rows, tmp_path / "odd", SFTSettings(batch_size=4, micro_batch_size=3))


def test_passes_grouped_by_length_make_the_same_update_as_one_padded_batch(tmp_path, smoke_model):
    """``group_by_length`` (the paper profile's GPU layout) only reorders a step's rows into passes of similar
    length: one step over all 8 rows in passes of 2 gives the whole padded batch's loss and weights."""
    from hsir.models import load_model

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=8))
    runs = {"padded": (8, False), "grouped": (2, True)}
    out = {name: train_sft("smoke:tiny-llama", rows, tmp_path / name, SFTSettings(
        lr=1e-3, batch_size=8, bf16=False, padding_free=False, micro_batch_size=micro, group_by_length=grouped))
        for name, (micro, grouped) in runs.items()}
    grouped, padded = sft_report(out["grouped"]), sft_report(out["padded"])
    assert grouped["settings"]["group_by_length"] and grouped["steps"] == padded["steps"] == 1
    assert abs(grouped["train_loss"] - padded["train_loss"]) < 1e-4
    ref, _ = load_model(str(out["padded"]), dtype="fp32")
    other, _ = load_model(str(out["grouped"]), dtype="fp32")
    for (name, p), q in zip(ref.named_parameters(), other.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-4), name


def test_bf16_weights_with_fp32_masters_train_to_the_fp32_weight_runs_loss(tmp_path, smoke_model):
    """weights: bf16 (hsir.precision) against fp32 weights with bf16 autocast: the passes see the same rounded
    matrices, so the losses agree; what differs (bf16 residual stream, gradients summed in bf16) stays small."""
    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=16))
    loss = {}
    for w in ("fp32", "bf16"):
        out = train_sft("smoke:tiny-llama", rows, tmp_path / w,
                        SFTSettings(lr=1e-3, batch_size=4, bf16=True, weights=w, save_every=100))
        rep = sft_report(out)
        assert rep["settings"]["weights"] == w and rep["steps"] == 4
        loss[w] = rep["train_loss"]
    assert abs(loss["bf16"] - loss["fp32"]) < 0.01, loss


def test_auto_attention_is_eager_on_a_cpu_while_the_matrices_fit():
    from types import SimpleNamespace

    from hsir.train import EAGER_ATTENTION_GIB, auto_attention

    cfg = SimpleNamespace(num_hidden_layers=30, num_attention_heads=9)  # SmolLM2-135M
    fits = int((EAGER_ATTENTION_GIB * 2**30 / (8 * 30 * 9)) ** 0.5)  # the longest row eager holds: 997 tokens
    assert auto_attention(cfg, 1, fits, cpu_bf16=True)
    assert not auto_attention(cfg, 1, fits + 1, cpu_bf16=True)
    assert not auto_attention(cfg, 2, fits, cpu_bf16=True)  # two rows a pass hold twice as much
    assert not auto_attention(cfg, 1, 16, cpu_bf16=False)  # GPUs and fp32 CPUs keep the model's own (SDPA)


def test_step_sorted_sampler_keeps_each_steps_random_draw_and_sorts_inside_it():
    from hsir.train import StepSortedSampler

    lengths = [(7 * k) % 23 for k in range(40)]
    s = StepSortedSampler(lengths, 8, seed=3)
    epoch0 = list(s)
    assert sorted(epoch0) == list(range(40)) and list(s) == epoch0  # a permutation, the same for the same epoch
    steps = [epoch0[i : i + 8] for i in range(0, 40, 8)]
    assert all([lengths[k] for k in st] == sorted((lengths[k] for k in st), reverse=True) for st in steps)
    # the steps are a shuffle's draws, not rows of similar length: some step spans short and long rows
    assert max(max(lengths[k] for k in st) - min(lengths[k] for k in st) for st in steps) > 15
    s.set_epoch(1)
    assert list(s) != epoch0 and sorted(s) == list(range(40))


def test_rows_longer_than_max_length_are_cut_and_counted_padded_or_padding_free(tmp_path, smoke_model):
    """The paper truncates at max_length: a longer row trains with its completion cut (the prompt kept), and
    sft.json counts it, the same with padded batches and padding-free micro-batches."""
    from hsir.models import load_tokenizer

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=4))
    tok = load_tokenizer("smoke:tiny-llama")
    ids = lambda msgs, **kw: tok.apply_chat_template(msgs, tokenize=True, return_dict=True, **kw)["input_ids"]
    full = [len(ids(r["prompt"] + r["completion"])) for r in rows]
    prompt = [len(ids(r["prompt"], add_generation_prompt=True)) for r in rows]
    limit = sorted(full)[1]  # at least two rows longer, every prompt shorter
    assert max(prompt) < limit
    for name, free, micro in (("padded", False, 1), ("padding-free", True, 2)):
        out = train_sft("smoke:tiny-llama", rows, tmp_path / name, SFTSettings(
            lr=1e-3, batch_size=2, bf16=False, padding_free=free, micro_batch_size=micro, max_length=limit))
        rep = sft_report(out)
        assert (out / "model.safetensors").exists(), name
        assert rep["truncated_rows"] == sum(n > limit for n in full) >= 2, name
        assert rep["dropped_rows"] == 0 and rep["longest_row"] == max(full) and rep["rows"] == 4, name


def test_scoring_only_completion_tokens_keeps_the_loss_and_gradients(smoke_model):
    """The kit lets TRL's fused LM head drop the prompt's positions before the vocabulary projection on a CPU
    (``score_completion_tokens_only``): less work, the same loss, metrics and gradients as TRL's CPU path."""
    import trl.trainer.utils as tu
    from transformers import AutoModelForCausalLM
    from trl.kernels.chunked_logprob import _use_triton as trl_choice

    from hsir.models import model_path
    from hsir.train import score_completion_tokens_only

    model = AutoModelForCausalLM.from_pretrained(model_path("smoke:tiny-llama"), dtype=torch.float32)
    tu.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    ids = torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :10] = -100  # the prompt
    labels[1, 20:] = -100  # padding

    def run():
        model.zero_grad()
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out, [p.grad.clone() for p in model.parameters()]

    before = tu._use_triton
    try:
        tu._use_triton = trl_choice
        assert not tu._use_triton(torch.device("cpu"))  # TRL scores every position on a CPU
        full, g_full = run()
        score_completion_tokens_only()
        assert tu._use_triton(torch.device("cpu"))
        compact, g_compact = run()
    finally:
        tu._use_triton = before
    torch.testing.assert_close(compact.loss, full.loss, rtol=1e-6, atol=1e-6)
    for name in ("log_probs", "entropy", "is_top1"):
        torch.testing.assert_close(getattr(compact, name), getattr(full, name), rtol=1e-5, atol=1e-5, msg=name)
    for a, b in zip(g_compact, g_full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _kill_at(step: int):
    from transformers import TrainerCallback

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == step:
                raise Kill(f"killed at step {step}")

    return KillAt()


@pytest.mark.parametrize("weights", ["fp32", "bf16"])
def test_a_run_killed_mid_training_resumes_to_the_same_model(tmp_path, smoke_model, weights):
    """bf16 weights: the checkpoint's fp32 master copies, not the rounded model, carry the run on."""
    from safetensors.torch import load_file

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=16))
    s = SFTSettings(lr=1e-3, batch_size=4, micro_batch_size=4, bf16=weights == "bf16", save_every=1, weights=weights)
    whole = train_sft("smoke:tiny-llama", rows, tmp_path / "whole", s)
    with pytest.raises(Kill):
        train_sft("smoke:tiny-llama", rows, tmp_path / "killed", s, callbacks=[_kill_at(3)])
    assert not (tmp_path / "killed").exists() and (tmp_path / "killed.checkpoints").exists()
    resumed = train_sft("smoke:tiny-llama", rows, tmp_path / "killed", s)
    rep = sft_report(resumed)
    assert rep["resumed_from"].endswith("checkpoint-2") and rep["steps"] == 4
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_a_checkpoint_cut_while_it_was_saved_is_dropped_and_the_one_before_resumes(tmp_path, smoke_model):
    """A kill during a checkpoint's save leaves it without trainer_state.json and with a cut optimizer.pt (as a real
    stopped run did): resuming from it failed; the run now goes on from the last complete one, to the same model."""
    from safetensors.torch import load_file

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=16))
    s = SFTSettings(lr=1e-3, batch_size=4, micro_batch_size=4, bf16=False, save_every=1, weights="fp32")
    whole = train_sft("smoke:tiny-llama", rows, tmp_path / "whole", s)
    with pytest.raises(Kill):
        train_sft("smoke:tiny-llama", rows, tmp_path / "killed", s, callbacks=[_kill_at(3)])
    ckpts = tmp_path / "killed.checkpoints"
    cut = shutil.copytree(ckpts / "checkpoint-2", ckpts / "checkpoint-3")
    (cut / "trainer_state.json").unlink()
    (cut / "optimizer.pt").write_bytes((cut / "optimizer.pt").read_bytes()[:100])
    resumed = train_sft("smoke:tiny-llama", rows, tmp_path / "killed", s)
    assert sft_report(resumed)["resumed_from"].endswith("checkpoint-2")
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_settings_with_an_unknown_key_fail_naming_it():
    from hsir.train import settings_from

    with pytest.raises(ValueError, match=r"sft: unknown key\(s\) \['lr_rate'\]; valid keys: \['lr'"):
        settings_from(SFTSettings, {"lr_rate": 1}, "sft")


@pytest.mark.slow
def test_sft_stage_runs_under_accelerate_on_two_processes(tmp_path, smoke_model):
    from hsir.train import launch_sft

    task = get_task("synthetic")
    rows = sft_rows(task, task.load("seed", limit=8))
    out = launch_sft("smoke:tiny-llama", rows, tmp_path / "ddp",
                     SFTSettings(lr=1e-3, batch_size=2, micro_batch_size=2, bf16=False, num_processes=2))
    rep = sft_report(out)
    assert rep["processes"] == 2 and rep["steps"] == 2  # 8 rows / (2 per process × 2 processes)
    assert math.isfinite(rep["train_loss"]) and not (tmp_path / "ddp.rows.jsonl").exists()


def _dpo_pairs(task, n=4):
    problems = task.load("seed", limit=n)
    wrong = "<think>\nI guess.\n</think>\n<answer>\n0\n</answer>"
    return [{"prompt": task.messages(p), "chosen": [{"role": "assistant", "content": p.reasoning}],
             "rejected": [{"role": "assistant", "content": wrong}]} for p in problems]


def test_dpo_loss_at_step_zero_is_ln2_plus_half_the_winners_nll(tmp_path, smoke_model):
    # policy = reference at step 0, so the sigmoid term is -log σ(0) = ln 2; the NLL term is the token-mean NLL
    # of the winners' completion tokens, computed here independently of TRL
    from hsir.train import DPOSettings, train_dpo

    model, tok = smoke_model
    task = get_task("synthetic")
    pairs = _dpo_pairs(task)
    out = train_dpo("smoke:tiny-llama", pairs, tmp_path / "dpo",
                    DPOSettings(lr=1e-3, batch_size=4, micro_batch_size=4, epochs=1, bf16=False, warmup=0.0))
    rep = sft_report(out)
    assert rep["steps"] == 1  # one batch of all pairs: the run's mean loss is the step-0 loss
    nll_sum, n_tok = 0.0, 0
    with torch.no_grad():
        for p in pairs:
            prompt = tok.apply_chat_template(p["prompt"], tokenize=False, add_generation_prompt=True)
            full = tok.apply_chat_template(p["prompt"] + p["chosen"], tokenize=False)
            ids = tok(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
            k = len(tok(prompt, add_special_tokens=False)["input_ids"])
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
            tgt = ids[0, 1:]
            nll_sum -= logp[k - 1 :].gather(1, tgt[k - 1 :, None]).sum().item()
            n_tok += len(tgt) - (k - 1)
    expected = math.log(2) + 0.5 * nll_sum / n_tok
    assert abs(rep["train_loss"] - expected) < 2e-3 * expected, (rep["train_loss"], expected)


def test_a_dpo_run_killed_mid_training_resumes_to_the_same_model(tmp_path, smoke_model):
    from safetensors.torch import load_file

    from hsir.train import DPOSettings, train_dpo

    pairs = _dpo_pairs(get_task("synthetic"), 8)
    s = DPOSettings(lr=1e-3, batch_size=2, micro_batch_size=2, epochs=1, bf16=False, save_every=1)
    whole = train_dpo("smoke:tiny-llama", pairs, tmp_path / "whole", s)
    with pytest.raises(Kill):
        train_dpo("smoke:tiny-llama", pairs, tmp_path / "killed", s, callbacks=[_kill_at(3)])
    resumed = train_dpo("smoke:tiny-llama", pairs, tmp_path / "killed", s)
    assert sft_report(resumed)["resumed_from"].endswith("checkpoint-2")
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_a_cpu_packs_two_padding_free_rows_a_pass_by_default():
    from hsir.config import DPOSettings
    from hsir.train import micro_batch

    assert micro_batch(SFTSettings(batch_size=8), gpu=False) == 2  # the CPU default (README, Training speed)
    assert micro_batch(SFTSettings(batch_size=8, micro_batch_size=1), gpu=False) == 1
    assert micro_batch(SFTSettings(batch_size=3), gpu=False) == 1  # an odd batch: one row a pass
    assert micro_batch(SFTSettings(batch_size=8, padding_free=False), gpu=False) == 1  # padded rows
    assert micro_batch(DPOSettings(batch_size=8), gpu=False) == 1  # DPO's pairs are padded
    assert micro_batch(SFTSettings(batch_size=8), gpu=True) == 8


def test_torch_compile_is_off_by_default_and_reaches_the_trainer_when_asked(tmp_path):
    """Compilation costs minutes before the first step, more than an embedded run gains back (SFTSettings'
    comment); a user with longer runs turns it on, and the trainer gets it."""
    from trl import SFTConfig

    from hsir.train import trl_args

    assert trl_args(SFTConfig, tmp_path, SFTSettings()).torch_compile is False
    assert trl_args(SFTConfig, tmp_path, SFTSettings(torch_compile=True)).torch_compile is True
