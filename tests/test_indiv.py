import math

import numpy as np
import pytest
import torch

from hsir.indiv import filter_by_indiv, indiv_of_states, indiv_scores, middle_states, normalise, resolve_tau


def reference(h: np.ndarray, w=None, alpha=1e-3) -> float:
    """Independent float64 NumPy implementation of Eq.4 (n×n form always, via slogdet)."""
    h = h.astype(np.float64)
    if w is not None:
        h = h * w[:, None]
    n, d = h.shape
    hc = h @ (np.eye(d) - np.ones((d, d)) / d)
    sigma = hc @ hc.T / d
    sign, logdet = np.linalg.slogdet(sigma + alpha * np.eye(n))
    assert sign > 0
    return logdet / n


@pytest.mark.parametrize("n,d", [(5, 16), (16, 16), (40, 16), (3, 64), (200, 24)])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_numpy_reference(n, d, weighted):
    rng = np.random.default_rng(n * 100 + d)
    h = rng.normal(size=(n, d)) * rng.uniform(0.1, 3)
    w = rng.uniform(0.05, 1.0, size=n) if weighted else None
    got = indiv_of_states(torch.tensor(h, dtype=torch.float32), None if w is None else torch.tensor(w), 1e-3)
    want = reference(h.astype(np.float32), w)
    assert got == pytest.approx(want, rel=1e-6)


def test_bf16_input_and_bad_input():
    h = torch.randn(10, 8, dtype=torch.bfloat16)
    assert math.isfinite(indiv_of_states(h))
    for bad in (torch.zeros(0, 8), torch.zeros(1, 8), torch.zeros(8)):
        with pytest.raises(ValueError, match="n ≥ 2"):
            indiv_of_states(bad)
    with pytest.raises(ValueError, match="NaN or inf"):
        indiv_of_states(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="weights"):
        indiv_of_states(torch.randn(4, 3), weights=torch.ones(5))


def test_constant_states_hit_the_floor_not_minus_infinity():
    assert indiv_of_states(torch.ones(6, 4)) == pytest.approx(math.log(1e-3))


def test_repeating_steps_lowers_indiv():
    rng = np.random.default_rng(0)
    steps = [rng.normal(size=(12, 32)) for _ in range(4)]
    clean = np.concatenate(steps)
    repeated = np.concatenate(steps + steps[:2])  # two steps said again
    assert indiv_of_states(repeated) < indiv_of_states(clean)
    half = np.concatenate(steps[:2])
    assert indiv_of_states(np.concatenate([half, half])) < indiv_of_states(clean)  # matched length, half the content


def test_permuting_tokens_does_not_raise_it():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(30, 20))
    base = indiv_of_states(h)
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(30)
        assert indiv_of_states(h[perm]) == pytest.approx(base, rel=1e-9)  # the spectrum is order-free


def test_covariance_form_is_length_robust():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 16))
    a, b = indiv_of_states(x[:100], form="covariance"), indiv_of_states(x, form="covariance")
    assert abs(a - b) < 0.2
    assert indiv_of_states(x[:100]) - indiv_of_states(x) > 0.5  # the Gram form falls with n once n > d


def test_tau_as_number_or_quantile():
    cands = [{"indiv": v} for v in [-2.0, -1.0, -0.6, -0.4, 0.3]]
    kept, t = filter_by_indiv(cands, -0.5)
    assert t == -0.5 and [c["indiv"] for c in kept] == [-0.4, 0.3]
    kept, t = filter_by_indiv(cands, "q0.2")
    assert len(kept) == 4 and kept[0]["indiv"] == -1.0
    with pytest.raises(ValueError):
        resolve_tau([1.0], "20%")
    assert normalise(torch.tensor([1.0, 2.0, 4.0]), "max").max() == 1
    assert normalise(torch.tensor([1.0, 2.0, 3.0]), "mean").mean() == pytest.approx(1)


def test_model_pass_matches_a_full_forward(smoke_model):
    model, tok = smoke_model
    prompt, sol = "Question: two plus two?", "<think>\nTwo plus two is four.\n\nSo the answer is 4.\n</think>"
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    s_ids = tok(sol, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model(torch.tensor([p_ids + s_ids]), output_hidden_states=True)
    mid = len(model.model.layers) // 2
    want = indiv_of_states(out.hidden_states[mid][0, len(p_ids):])
    # batched with a longer neighbour: right padding must not change the score
    got = indiv_scores(model, tok, [prompt, prompt + " and more words here"], [sol, sol + " Extra."], weighting="none")
    assert got[0] == pytest.approx(want, rel=1e-5)


def test_attention_weights_are_probabilities_of_the_middle_layer(smoke_model):
    model, tok = smoke_model
    ids = tok("a b c d e f g h", add_special_tokens=False)["input_ids"]
    states, raw = middle_states(model, [ids[:3]], [ids[3:]])
    w = [raw[0]["self"]]
    assert states[0].shape[0] == len(ids) - 3 and w[0].shape == (len(ids) - 3,)
    assert ((w[0] > 0) & (w[0] <= 1)).all() and ((raw[0]["received"] > 0) & (raw[0]["received"] <= 1)).all()
    with torch.no_grad():  # eager reference: the same diagonal, max over heads
        model.config._attn_implementation = "eager"
        try:
            att = model(torch.tensor([ids]), output_attentions=True).attentions[len(model.model.layers) // 2 - 1]
        finally:
            model.config._attn_implementation = "sdpa"
    diag = att[0].diagonal(dim1=1, dim2=2).max(0).values[3:]
    assert torch.allclose(w[0], diag.float(), atol=1e-5)
    scores = indiv_scores(model, tok, ["p", "q"], ["one two three four", "x"], weighting="received")
    assert math.isfinite(scores[0]) and math.isnan(scores[1])  # one token: no score


def test_samples_sharing_a_prompt_reuse_its_cache_exactly(smoke_model):
    """HSIR scores K samples per prompt: running the prompt once must not change states or attention weights."""
    model, _ = smoke_model
    g = torch.Generator().manual_seed(0)
    prompts = [[5, 6, 7, 8, 9] * 4] * 4 + [[11, 12, 13]] * 2 + [[20, 21]]
    sols = [torch.randint(50, 400, (n,), generator=g).tolist() for n in (30, 6, 1, 0, 12, 25, 9)]
    shared, w_shared = middle_states(model, prompts, sols, share_prompts=True, max_batch_tokens=64)
    alone, w_alone = middle_states(model, prompts, sols, share_prompts=False)
    for a, b, wa, wb, s in zip(shared, alone, w_shared, w_alone, sols, strict=True):
        assert a.shape == b.shape == (len(s), model.config.hidden_size)
        assert torch.allclose(a, b, atol=1e-5)
        for key in ("self", "received"):
            assert torch.allclose(wa[key], wb[key], atol=1e-5)


def test_token_steps_and_step_pooling(smoke_model):
    from hsir.indiv import pool_steps, token_steps

    _, tok = smoke_model
    text = "<think>\nFirst step here.\n\nSecond step.\n</think>\n<answer>\n4\n</answer>"
    steps = token_steps(tok, text)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(steps) == len(ids) and set(steps) == {-1, 0, 1}
    first = tok.decode([t for t, s in zip(ids, steps, strict=True) if s == 0])
    assert first.strip() == "First step here."
    h = torch.arange(len(ids) * 2, dtype=torch.float32).reshape(len(ids), 2)
    pooled = pool_steps(h, steps)
    assert pooled.shape == (2, 2) and torch.allclose(pooled[0], h[torch.from_numpy(steps == 0)].mean(0))


def test_step_level_indiv_drops_when_a_step_is_restated():
    from hsir.indiv import score_states

    rng = np.random.default_rng(3)
    steps = [torch.tensor(rng.normal(size=(8, 32)), dtype=torch.float32) + i for i in range(4)]
    clean = torch.cat(steps)
    restated = torch.cat(steps + [steps[1]])
    ids = lambda k: np.repeat(np.arange(k), 8)
    a = score_states(clean, None, "none", steps=ids(4))
    b = score_states(restated, None, "none", steps=ids(5))
    assert b < a
    assert math.isnan(score_states(clean[:8], None, "none", steps=ids(1)))  # one step: no score
