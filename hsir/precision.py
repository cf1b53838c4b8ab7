"""bf16 weights for the passes, fp32 master weights in the optimizer (mixed precision as Micikevicius et al. 2018 put
it): the training settings' ``weights: bf16``.

With fp32 weights and bf16 autocast (``weights: fp32``), every forward pass casts every weight to bf16 again: on a
CPU training one row a pass, that is 8 casts of the whole model per optimizer step, and the gradients come back
in fp32. Here the model itself is bf16, so passes run straight on it, and the optimizer keeps an fp32 copy of each
weight (and fp32 moments) that takes the update; the bf16 weight is that copy rounded once per step. Updates far
below bf16's resolution (lr 1e-5 on a weight near 1) accumulate in the master copy instead of rounding away, as
they would with bf16 weights alone. What differs from fp32 weights with autocast: the micro-batches' gradients add
up in bf16, and the element-wise operations autocast keeps in fp32 run in bf16 (``python -m hsir.bench train``
measures the speed; the README, M0's loss and accuracy against the fp32 run).

The masters start from the checkpoint's fp32 values (``to_bf16_with_masters``), so every pass multiplies by the
matrices autocast would round from the same values; only parameters are cast, buffers such as RoPE's frequencies
stay fp32. A master is optimizer state (``state[p]["master"]``), so a trainer checkpoint holds it and a resumed run
continues from the fp32 values; the saved model is the masters (``masters_into_model``), not their rounding.
"""

from __future__ import annotations

import torch
from torch.optim.adamw import adamw

_FP32_STATE = ("master", "exp_avg", "exp_avg_sq")


def to_bf16_with_masters(model) -> dict:
    """Cast ``model`` (loaded in fp32) to bf16 in place and return its fp32 values, keyed by parameter, for
    ``MasterWeightsAdamW(masters=...)``: the masters start from the checkpoint's own values, not from their bf16
    rounding, so the passes see exactly the weights that autocast over fp32 weights would (each matrix rounded to
    bf16 from the same fp32 value)."""
    masters = {}
    for p in model.parameters():
        if p.dtype == torch.float32:
            masters[p] = p.detach().clone()
            p.data = p.data.to(torch.bfloat16)  # the same Parameter object; buffers (RoPE's frequencies) stay fp32
    return masters


def masters_into_model(optimizer, model) -> None:
    """Put the fp32 masters back into ``model`` (fp32 again), e.g. before saving it: the saved model is then what
    the optimizer trained, not its bf16 rounding, and a next run's masters start from it. ``optimizer`` may be
    wrapped (accelerate's ``AcceleratedOptimizer``); parameters without state yet are cast back as they are."""
    while not isinstance(optimizer, MasterWeightsAdamW) and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
    states = optimizer.state if isinstance(optimizer, MasterWeightsAdamW) else {}
    for p in model.parameters():
        master = states.get(p, {}).get("master")
        p.data = master.clone() if master is not None else p.data.float()


class MasterWeightsAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, torch's fused kernel) on fp32 master copies of bf16 parameters; ``masters``
    (``to_bf16_with_masters``) gives their starting values, else they start from the bf16 values."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
                 masters: dict | None = None):
        # fused: torch's own Adam(W) flag, so that a loaded state's step is put on the parameter's device
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "fused": True})
        self._initial = masters if masters is not None else {}  # emptied as the states take them

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state(p) for p in params]
            masters = [s["master"] for s in states]
            beta1, beta2 = group["betas"]
            adamw(
                masters, [p.grad.float() for p in params], [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states], fused=True, amsgrad=False,
                beta1=beta1, beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
                maximize=False)
            torch._foreach_copy_(params, masters)  # round to nearest, once per step
        return loss

    def _state(self, p: torch.Tensor) -> dict:
        state = self.state[p]
        if "master" not in state:
            # a state loaded from a plain AdamW checkpoint keeps its step and moments; its master is the loaded
            # weight (the checkpoint's own starting values were popped when the state was loaded)
            master = self._initial.pop(p, None)
            master = (p.detach().float() if master is None else master).to(p.device)  # masters built on the CPU
            state["master"] = master
            state.setdefault("step", torch.zeros((), dtype=torch.float32, device=master.device))
            state.setdefault("exp_avg", torch.zeros_like(master))
            state.setdefault("exp_avg_sq", torch.zeros_like(master))
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        # torch casts a loaded floating-point state to its parameter's dtype (bf16 here), whatever the state's own
        # dtype: the master copy and the moments are put back from the saved fp32 tensors
        super().load_state_dict(state_dict)
        saved = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for i, p in zip(saved, params, strict=True):
            for name, value in state_dict["state"].get(i, {}).items():
                if name in _FP32_STATE:
                    self.state[p][name] = value.to(device=p.device, dtype=torch.float32, copy=True)
                    # a checkpoint's master replaces the starting value (accelerate also reloads an empty state
                    # when it wraps the optimizer: that leaves the starting values alone)
                    self._initial.pop(p, None)
