"""Training by Pontryagin's principle: one E-MSA step from hjsym's generated programs, and its large-rho limit.

    python derivations/msa.py                    # prints the generated pieces and the limit check
    hjsym experiment msa [--quick]               # E-MSA against SGD and Adam on the digits (reports/msa/)
"""

import hjsym
from hjsym.experiments import msa

# 1. The pieces E-MSA uses are the control family's generated functions for the residual MLP: the step
#    f = s + h F (forward_step), the costate recursion p_k = d_s(p_{k+1} . f) (adjoint_step, costate_step)
#    and the Hamiltonian p . F; the augmented Hamiltonian adds rho/2 times the residuals of both equations.
derivation = hjsym.derive("resnet")
print("H =", derivation.results["control_hamiltonian"])
print("costate:", derivation.results["costate"])

# 2. As rho grows one E-MSA step (Newton on each block's augmented Hamiltonian, generated functions)
#    becomes the metric gradient step -(1/rho) G^-1 grad J (torch.autograd through the real blocks):
#    the relative difference falls like 1/rho; with route A's weights moved by 1e-3 it plateaus.
limit = msa.limit_check(0, rhos=(1e5, 1e6, 1e7))
negative = msa.limit_check(0, negative=True, rhos=(1e5, 1e6, 1e7))
print("limit:", limit)
print("negative control:", negative)
ok = abs(limit["order"] - 1) < 0.15 and abs(negative["order"] - 1) > 0.15
print("checks pass (the large-rho limit has order 1 in 1/rho; its negative control does not)" if ok else "FAIL")
