"""Benchmark of the generated attention path against torch's scaled dot-product attention.

``generated_attention``: the function generated from the ``attention`` derivation
(``E_pi[V]``, the Gibbs average of the values: a stable log-sum-exp of the scores, the Gibbs
weights and one contraction, streamed over keys when they do not fit the memory budget),
called once per (batch, head) through ``torch.vmap``, against ``F.scaled_dot_product_attention`` restricted to its
math backend, both on batch 8, 8 heads, 1024 tokens, d_k 64, float32, measured in the same run
(limit: time ratio <= 1.5). The two outputs are compared before timing.

Run with ``hjsym bench --only generated_attention`` (``--quick``: 2 x 2 heads, 256 tokens).
"""

from __future__ import annotations

import math

from hjsym._bench import timeit

LIMIT = 1.5


def bench_generated_attention(quick: bool) -> dict:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import hjsym

    B, H, L, D = (2, 2, 256, 64) if quick else (8, 8, 1024, 64)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, L, D, generator=gen, dtype=torch.float32) for _ in range(3))
    attention = hjsym.function("attention", "attention")
    offsets = torch.zeros(L, dtype=torch.float32)
    eps = math.sqrt(D)

    # one generated call per (batch, head), vectorised over them by torch.vmap (a Python loop of
    # 64 small calls pays thread start-up per op, which a shared machine turns into noise)
    per_head = torch.vmap(lambda x, K, V: attention(x=x, eps=eps, K=K, b=offsets, V=V))

    def generated():
        return per_head(q.reshape(B * H, L, D), k.reshape(B * H, L, D), v.reshape(B * H, L, D)).reshape(B, H, L, D)

    def math_backend():
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v)

    err = float((generated() - math_backend()).abs().max())
    reps = 3 if quick else 5
    t_sdpa = timeit(math_backend, repeat=reps)
    t_gen = timeit(generated, repeat=reps)
    ratio = t_gen / t_sdpa
    return {"name": "generated_attention", "ratio": ratio, "limit": LIMIT, "passed": ratio <= LIMIT and err < 1e-4,
            "size": f"batch {B}, {H} heads, {L} tokens, d_k {D}, float32", "sdpa_math_s": t_sdpa, "generated_s": t_gen,
            "max_abs_difference": err, "threads": torch.get_num_threads()}


BENCHMARKS = [bench_generated_attention]
