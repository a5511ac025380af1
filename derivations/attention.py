"""Attention is the gradient of a log-sum-exp: softmax(Q K^T / sqrt(d_k)) V = grad_z LSE(z) V.

The spec (hjsym/architectures/attention.py) is an LSE layer in the query with the keys as
slopes, score offsets b (a mask: -inf) and values V. The derivation shows that df/db_m is the
m-th Gibbs weight, so contracting with V gives the Gibbs average E_pi[V]; that L2 attention
(scores -|x - y_j|^2/(4t), values = keys) is the characteristic step x - 2t grad u; and that the
entropy of the weights is LSE(z) - E_pi[z].

    python derivations/attention.py            # prints the derivation and the checks
    python derivations/attention.py --report   # also writes reports/attention/
"""

import math
import sys

import torch
import torch.nn.functional as F

import hjsym
from hjsym.architectures.attention import SPEC as spec

derivation = hjsym.derive(spec)
print(derivation.text())

# Route B never writes a softmax: the weights are torch.autograd derivatives of the generated
# log-sum-exp in its offsets, here against torch's own scaled_dot_product_attention.
gen = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(5, 8, dtype=torch.float64, generator=gen) for _ in range(3))
f = derivation.function("f")
rows = []
for i in range(q.shape[0]):
    b = torch.zeros(k.shape[0], dtype=torch.float64, requires_grad=True)
    (weights,) = torch.autograd.grad(f(x=q[i:i + 1], eps=math.sqrt(8), K=k, b=b).sum(), b)
    rows.append(weights @ v)
print("max |SDPA - grad LSE . V| =", float((F.scaled_dot_product_attention(q, k, v) - torch.stack(rows)).abs().max()))

# Checks against nn.MultiheadAttention (1-4 heads, masks, batch_first both ways), SDPA for
# d_k in {4, ..., 64}, L2 attention, a trained pre-LN transformer block and its heads' entropy.
result = hjsym.check("attention", negative_controls=True)
print(result.table())
print("per-head H(pi)/log k:", result.check("entropy").details["normalised_entropy_per_head"],
      result.check("entropy").details["reading"])

if "--report" in sys.argv:
    for path in hjsym.report(["attention"], out="reports"):
        print("wrote", path)
