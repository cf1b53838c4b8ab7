"""bf16 weights with fp32 master copies in the optimizer (hsir.precision): updates below bf16's resolution are
kept, the fp32 trajectory is AdamW's own, and a checkpoint carries the masters."""

import copy

import torch

from hsir.precision import MasterWeightsAdamW


def test_updates_below_bf16_resolution_accumulate_in_the_master_copy():
    w = torch.nn.Parameter(torch.ones(64, dtype=torch.bfloat16))
    plain = torch.nn.Parameter(torch.ones(64, dtype=torch.bfloat16))
    opt = MasterWeightsAdamW([w], lr=1e-5, weight_decay=0.0)
    bare = torch.optim.AdamW([plain], lr=1e-5, weight_decay=0.0)
    for _ in range(600):  # each update ~1e-5, a bf16 step near 1 is 2^-8 ≈ 0.0039 (down: 0.002)
        w.grad, plain.grad = torch.ones_like(w), torch.ones_like(plain)
        opt.step()
        bare.step()
    assert torch.all(plain == 1.0)  # bf16 weights alone: every update rounded away
    master = opt.state[w]["master"]
    assert master.dtype == torch.float32 and torch.allclose(master, torch.full_like(master, 1 - 600e-5), atol=2e-5)
    assert torch.equal(w.detach(), master.to(torch.bfloat16))  # the weight is its master, rounded


def test_the_master_trajectory_is_adamws_on_fp32_weights():
    torch.manual_seed(0)
    start = torch.randn(32, 16)
    w = torch.nn.Parameter(start.to(torch.bfloat16))
    ref = torch.nn.Parameter(start.to(torch.bfloat16).float())  # the same starting values, fp32
    opt = MasterWeightsAdamW([w], lr=1e-3, weight_decay=0.1)
    fp32 = torch.optim.AdamW([ref], lr=1e-3, weight_decay=0.1)
    for _ in range(5):
        g = torch.randn(32, 16).to(torch.bfloat16)  # representable in both
        w.grad, ref.grad = g, g.float()
        opt.step()
        fp32.step()
    torch.testing.assert_close(opt.state[w]["master"], ref.detach(), rtol=0, atol=1e-6)


def test_a_checkpoint_restores_the_fp32_masters_and_moments():
    w = torch.nn.Parameter(torch.ones(8, dtype=torch.bfloat16))
    opt = MasterWeightsAdamW([w], lr=1e-5, weight_decay=0.0)
    for _ in range(3):
        w.grad = torch.ones_like(w)
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = MasterWeightsAdamW([w2], lr=1e-5, weight_decay=0.0)
    opt2.load_state_dict(saved)  # torch alone would cast them to the parameter's bf16
    for name in ("master", "exp_avg", "exp_avg_sq"):
        assert opt2.state[w2][name].dtype == torch.float32
        assert torch.equal(opt2.state[w2][name], opt.state[w][name]), name
    assert opt2.state[w2]["master"][0] != 1.0  # the 3e-5 that bf16 cannot hold near 1


def test_masters_start_from_the_fp32_checkpoint_not_its_bf16_rounding():
    from hsir.precision import to_bf16_with_masters

    model = torch.nn.Linear(4, 4, bias=False)
    original = model.weight.detach().clone()
    masters = to_bf16_with_masters(model)
    assert model.weight.dtype == torch.bfloat16 and torch.equal(masters[model.weight], original)
    opt = MasterWeightsAdamW(model.parameters(), lr=1e-3, weight_decay=0.0, masters=masters)
    model.weight.grad = torch.ones_like(model.weight)
    opt.step()
    # AdamW's first step moves every weight by lr against the gradient's sign, from the fp32 value
    torch.testing.assert_close(opt.state[model.weight]["master"], original - 1e-3, rtol=0, atol=1e-6)


def test_casting_keeps_rope_frequencies_fp32_and_saving_puts_the_masters_back(smoke_model):
    from hsir.models import load_model
    from hsir.precision import masters_into_model, to_bf16_with_masters

    model, _ = load_model("smoke:tiny-llama", dtype="fp32")
    inv_freq = model.model.rotary_emb.inv_freq.clone()
    masters = to_bf16_with_masters(model)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32 and torch.equal(model.model.rotary_emb.inv_freq, inv_freq)
    opt = MasterWeightsAdamW(model.parameters(), lr=1e-5, weight_decay=0.0, masters=masters)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    masters_into_model(opt, model)
    for p in model.parameters():
        assert p.dtype == torch.float32 and torch.equal(p.detach(), opt.state[p]["master"])


def test_reloading_an_empty_state_keeps_the_starting_masters():
    """accelerate's optimizer wrapper reloads the (empty) state when it wraps: the fp32 starting values must survive
    it (they did not once, and M0 then trained from the bf16 rounding)."""
    w = torch.nn.Parameter(torch.full((4,), 0.3))
    original = w.detach().clone()
    w.data = w.data.to(torch.bfloat16)
    opt = MasterWeightsAdamW([w], lr=1e-3, weight_decay=0.0, masters={w: original.clone()})
    opt.load_state_dict(opt.state_dict())
    w.grad = torch.ones_like(w)
    opt.step()
    torch.testing.assert_close(opt.state[w]["master"], original - 1e-3, rtol=0, atol=1e-7)


def test_a_plain_adamw_checkpoint_resumes_with_its_moments_and_the_loaded_weights():
    """A run killed under fp32 weights (plain AdamW state: no master) and resumed under bf16 weights keeps its step
    and moments; the master is the loaded weight, not the stale starting value of a fresh run."""
    torch.manual_seed(0)
    ref = torch.nn.Parameter(torch.randn(8))
    plain = torch.optim.AdamW([ref], lr=1e-3, weight_decay=0.0, fused=True)
    for _ in range(3):
        ref.grad = torch.randn(8)
        plain.step()
    saved = copy.deepcopy(plain.state_dict())
    w = torch.nn.Parameter(ref.detach().to(torch.bfloat16))  # the checkpoint's weights, loaded into a bf16 model
    opt = MasterWeightsAdamW([w], lr=1e-3, weight_decay=0.0, masters={w: torch.zeros(8)})  # a stale start value
    opt.load_state_dict(saved)
    w.grad = torch.ones(8, dtype=torch.bfloat16)
    opt.step()  # no KeyError: the master is built from the loaded weight
    state = opt.state[w]
    assert state["master"].dtype == torch.float32 and int(state["step"]) == 4
    torch.testing.assert_close(state["exp_avg"], 0.9 * saved["state"][0]["exp_avg"] + 0.1)  # the moments went on
    assert (state["master"] - ref.detach().to(torch.bfloat16).float()).abs().max() < 2e-3  # one step from it, not from 0
