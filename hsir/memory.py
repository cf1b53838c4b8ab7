"""GPU memory by design: how many rows a training pass holds, from the free memory, the model's shape and what the
kit keeps per parameter (``hsir.train`` on a GPU, ``python -m hsir.bench paper-shape``). Plain arithmetic, no
torch: tested on constructed shapes, calibrated on an H200 (bench/paper-shape-h200.json)."""

from __future__ import annotations

from dataclasses import dataclass

GiB = 2**30
# bytes per parameter the kit's SFT/DPO holds: fp32 master weights and grads (8, hsir.train), AdamW's two fp32
# moments (8), autocast's bf16 copy of the weights kept for the backward (2), one fp32 parameter-sized temporary of
# the foreach AdamW step (4)
KIT_STATE_BYTES = 22
# measured activations over ``activation_bytes``'s count: on an H200 (bench/paper-shape-h200.json) SFT-Initial at 16
# rows of ≤ 2,048 tokens a pass peaked at 131.4 GiB, i.e. up to 3.66 MiB a token against 2.62 counted (the
# allocator's blocks, autocast's casts, the loss's buffers), and DPO at the plan's 8 pairs ran out of memory
ACTIVATION_MARGIN = 1.4


def activation_bytes(config: dict, checkpointing: bool, dtype_bytes: int = 2) -> int:
    """Bytes a training pass keeps per token for the backward, for a Llama/Qwen decoder in bf16 with SDPA or flash
    attention (no sequence² term) and a fused, tiled LM head (no logits). Per layer: the attention block's norm
    input and output with its fp32 copy (3h), q, attention output and o_proj input (3h), k and v (2·kv); the MLP's
    norm (3h) and gate, up, act(gate), act·up (4i). Checkpointed: each layer's input, plus one layer recomputed."""
    h, i, n = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    kv = config.get("head_dim", h // config["num_attention_heads"]) * config["num_key_value_heads"]
    layer = dtype_bytes * (9 * h + 2 * kv + 4 * i)
    return n * dtype_bytes * h + layer if checkpointing else n * layer


@dataclass(frozen=True)
class PassPlan:
    rows: int  # rows per forward/backward pass, a divisor of the batch; 0: the states alone do not fit
    gradient_checkpointing: bool
    tokens_per_pass: int
    state_gib: float  # weights, gradients, optimizer
    row_gib: float  # activations of one row at max_length, as planned (checkpointed or not, with the margin)
    free_gib: float


def rows_per_pass(free_bytes: float, params: int, max_length: int, batch_size: int, config: dict, *,
                  state_bytes_per_param: float = KIT_STATE_BYTES, sequences_per_row: int = 1,
                  reserve_bytes: float = 4 * GiB, headroom: float = 0.9, min_pass_tokens: int = 8192,
                  activation_margin: float = ACTIVATION_MARGIN) -> PassPlan:
    """Rows per pass from a token budget: ``headroom`` × free memory, less ``reserve_bytes`` (CUDA workspaces, LM
    head tiles, fragmentation) and the states, divided by one row's activations (``max_length`` ×
    ``sequences_per_row`` tokens: 2 for a DPO pair) × ``activation_margin``. Without checkpointing when that gives
    the whole batch or at least ``min_pass_tokens`` a pass (enough to fill the GPU's matrix units: checkpointing
    costs a forward more, +33%), else with it where it fits more rows; then the largest divisor of ``batch_size``
    (the step stays the batch, accumulated)."""
    budget = free_bytes * headroom - reserve_bytes - params * state_bytes_per_param
    tokens = max_length * sequences_per_row

    def fit(ckpt: bool) -> int:
        return max(0, int(budget // (tokens * activation_bytes(config, ckpt) * activation_margin)))

    full, ckpt = fit(False), fit(True)
    use_ckpt = not (full >= batch_size or full * tokens >= min_pass_tokens) and ckpt > full
    rows = max((d for d in range(1, min(batch_size, ckpt if use_ckpt else full) + 1) if batch_size % d == 0), default=0)
    return PassPlan(rows, use_ckpt, rows * tokens, round(params * state_bytes_per_param / GiB, 2),
                    round(tokens * activation_bytes(config, use_ckpt) * activation_margin / GiB, 3),
                    round(free_bytes / GiB, 2))
