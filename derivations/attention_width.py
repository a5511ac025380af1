"""Infinite-width attention: the covariances of the limit law, derived, and one width sampled.

    python derivations/attention_width.py        # prints the derivation and a small comparison
    hjsym experiment attention-width [--quick]   # the experiment and its page (reports/attention-width/)
"""

import torch

from hjsym.experiments import attention_width as aw

# 1. Derive (index calculus with Kronecker deltas, Isserlis' pairing): the logits p_j = (XQ)_0 . (XK)_j / sqrt(n)
#    have covariance Sigma_00 Sigma_jl at every width, the values Z_j covariance Sigma_jl, and the two are
#    uncorrelated; the limit is sum_j softmax(p)_j Z_j with Gaussian p and Z (not Gaussian).
derived = aw.derive_limit()
for key, value in derived.items():
    print(f"{key}: {value}")

# 2. The layer at width 64 (torch's scaled_dot_product_attention) against samples of the derived limit law:
#    the Kolmogorov-Smirnov distance of the two Rao-Blackwellised CDFs.
F = aw.token_factor(0)
t = aw.grid(F)
_, v_n = aw.layer_samples(F, 64, 20_000, torch.Generator().manual_seed(1))
_, v_inf, _ = aw.limit_samples(F, 20_000, torch.Generator().manual_seed(2))
(a, se_a), (b, se_b) = aw._cdf(v_n, t), aw._cdf(v_inf, t)
distance, resolution = float((a - b).abs().max()), aw._noise(se_a.tolist(), se_b)
print(f"KS distance at n = 64: {distance:.2e} (resolution {resolution:.2e})")
ok = derived["cov_logits_is_Sigma_ik_Sigma_jl"] and derived["cov_values_is_Sigma_jl"] and distance < resolution
print("checks pass (the covariances are derived; width 64 is within its resolution of the limit)" if ok else "FAIL")
