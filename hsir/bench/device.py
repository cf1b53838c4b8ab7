"""``python -m hsir.bench device``: the CUDA path end to end, for a machine with a GPU.

Checks device placement and bf16, then runs a tiny model through sample → score → train (a TRL SFT step
when TRL is installed), and times the InDiv pass against the generation of the same solutions on a
SmolLM2-135M-shaped model (random weights: the timing depends on the shape, not the weights, and no hub is
needed). vLLM is not used here, so the generation side is transformers ``generate``; a vLLM engine is faster,
which makes the InDiv share larger: the JSON says which was used.
"""

from __future__ import annotations

import time

import torch

from hsir.bench.scoring import TIMED_VARIANTS
from hsir.tasks import get_task


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def device_check(args) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from hsir.evaluate import sample_and_score
    from hsir.generate import HFGenerator, SamplingConfig
    from hsir.indiv import indiv_scores
    from hsir.models import load_model, model_path

    cuda = torch.cuda.is_available()
    quick = not cuda or getattr(args, "quick", False)  # on a CPU: the same path, tiny sizes
    n_prompts, n_samples, n_new = (4, 2, 32) if quick else (32, 8, 256)
    out: dict = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
                 "quick": quick}
    # 1. placement and bf16 with the smoke model
    model, tok = load_model("smoke:tiny-llama", dtype="bf16", device="auto")
    out["smoke_device"] = str(model.device)
    out["smoke_dtype"] = str(next(model.parameters()).dtype)
    # 2. sample -> score
    task = get_task("synthetic")
    problems = task.load("test", limit=8)
    gen = HFGenerator("smoke:tiny-llama", dtype="bf16", model=model, tokenizer=tok, progress=False)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = sample_and_score(task, problems, gen, SamplingConfig(n=2, max_new_tokens=32), f"{tmp}/s.jsonl")
    out["sampled"] = len(rows)
    scores = indiv_scores(model, tok, [task.prompt(p, tok) for p in problems], [r["text"] for r in rows[::2]])
    out["indiv_finite"] = int(sum(s == s for s in scores))
    # 3. train: one TRL SFT step on the seed traces, if TRL is here
    try:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        seed = task.load("seed", limit=16)
        ds = Dataset.from_list([{"prompt": task.messages(p), "completion": [{"role": "assistant", "content": p.reasoning}]}
                                for p in seed])
        cfg = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=2, per_device_train_batch_size=4, bf16=cuda,
                        use_cpu=not cuda, report_to=[], save_strategy="no", logging_steps=1)
        fresh = AutoModelForCausalLM.from_pretrained(model_path("smoke:tiny-llama"), dtype=torch.float32)
        trainer = SFTTrainer(model=fresh, args=cfg, train_dataset=ds, processing_class=tok)
        res = trainer.train()
        out["sft_loss"] = float(res.training_loss)
        out["sft_device"] = str(next(trainer.model.parameters()).device)
    except ImportError as e:
        out["sft"] = f"skipped: {e}"
    # 4. InDiv vs generation on a SmolLM2-135M-shaped model
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, tie_word_embeddings=True,
                      rope_theta=100000.0, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    big = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).to("cuda" if cuda else "cpu").eval()
    tok = AutoTokenizer.from_pretrained(model_path("smoke:tiny-llama"))
    gen = HFGenerator("random:smollm2-shape", dtype="bf16", model=big, tokenizer=tok, batch_size=256, progress=False)
    problems = task.load("test", limit=n_prompts)
    prompts = [task.prompt(p, tok) for p in problems]
    gen.generate(prompts[:4], SamplingConfig(n=1, max_new_tokens=8, stop=()))
    _sync()
    t0 = time.perf_counter()
    comps = gen.generate(prompts, SamplingConfig(n=n_samples, max_new_tokens=n_new, stop=(), seed=0))
    _sync()
    gen_s = time.perf_counter() - t0
    texts = [c.text for cs in comps for c in cs]
    sol_prompts = [p for p in prompts for _ in range(n_samples)]
    indiv_scores(big, tok, sol_prompts[:8], texts[:8])

    timings = {}
    for name, kw in TIMED_VARIANTS.items():
        best = float("inf")
        for _ in range(3):  # best of three: the first call of a shape pays for kernel selection
            _sync()
            t0 = time.perf_counter()
            indiv_scores(big, tok, sol_prompts, texts, **kw)
            _sync()
            best = min(best, time.perf_counter() - t0)
        timings[name] = round(best, 3)
    from hsir.indiv import middle_states, score_states, share_prompts_default

    enc = lambda xs: [tok(x, add_special_tokens=False)["input_ids"] for x in xs]
    _sync()
    t0 = time.perf_counter()
    states, raw = middle_states(big, enc(sol_prompts), enc(texts))
    _sync()
    timings["split_forward_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    [score_states(h, w) for h, w in zip(states, raw, strict=True)]
    _sync()
    timings["split_logdet_s"] = round(time.perf_counter() - t0, 3)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else 0
    long_text = " ".join(f"step {i} adds {i % 7} more apples." for i in range(700))
    ids = tok(long_text, add_special_tokens=False)["input_ids"][: 256 if quick else 2048]
    t0 = time.perf_counter()
    indiv_scores(big, tok, ["Solve it."], [tok.decode(ids)])
    _sync()
    out |= {
        "generation": {"backend": "hf", "solutions": len(texts), "tokens": sum(c.n_tokens for cs in comps for c in cs),
                       "seconds": round(gen_s, 3)},
        **timings, "indiv_over_generation": round(timings["indiv_default_s"] / gen_s, 4),
        "share_prompts_default": share_prompts_default(next(big.parameters()).device),
        "indiv_long_tokens": len(ids), "indiv_long_s": round(time.perf_counter() - t0, 3),
        "indiv_long_peak_extra_gib": round((torch.cuda.max_memory_allocated() - before) / 2**30, 3) if cuda else None,
    }
    return out
