"""Diagonal linear networks: the implicit bias of gradient flow from the initial scale alpha.

    python derivations/diagonal_net.py           # prints the derivation and a small run of both routes
    hjsym experiment diagonal-net [--quick]      # the experiment and its page (reports/diagonal-net/)
"""

from hjsym.experiments import diagonal_net as dn

# 1. Derive (SymPy): u v = alpha^2 is conserved, dw/dt = -2 sqrt(w^2 + alpha^4) g, the mirror potential
#    psi'(w) = arcsinh(w / alpha^2) / 2, its Bregman divergence Q_alpha (Woodworth et al.'s hyperbolic
#    entropy, verified) and its l1 (alpha -> 0) and l2 (alpha -> inf) limits.
derived = dn.derive()
for key, value in derived.items():
    print(f"{key}: {value}")

# 2. Both routes on two sparse-recovery problems at alpha = 1: the trained network (route A) against
#    argmin Q_alpha subject to X w = y by SciPy (route B).
X, y, w_star = dn.problems(0, 2)
w_b = dn.implicit_bias(1.0, X, y)
w_a, _ = dn.train_flow(1.0, X, y, 3000)
difference = max(dn._rel(w_a, w_b))
print("relative difference, trained vs implicit bias:", difference)
ok = derived["verified"] and difference < 1e-6
print("checks pass (the derivation is verified; the trained network sits at argmin Q_alpha)" if ok else "FAIL")
