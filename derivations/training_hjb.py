"""Training as optimal control: the Bellman recursion of a linear residual network's training cost.

    python derivations/training_hjb.py            # prints the derivation and the checks
    python derivations/training_hjb.py --report   # also writes reports/training-hjb/
"""

import sys

import hjsym
from hjsym.architectures.training_hjb import SPEC as spec

# 1. The spec: s' = s + h (theta s + b), trained on sum_n |s_K - y|^2/2 + (rho/2) h sum_k (|theta_k|^2 + |b_k|^2).
#    Training(penalty, target) is all that turns the network into a training problem.
print("F =", spec.dynamics.field, "| training:", spec.dynamics.training)

# 2. Derive: the control family's costate (= backprop), then the training pass: the Pontryagin conditions
#    (every control minimises the augmented Hamiltonian), the Bellman recursion, that in the weights the value
#    is not quadratic (rational in s, shown in d = 1), and that in the bias it is: feedback and Riccati recursion.
derivation = hjsym.derive(spec)
print(derivation.text())
print("P_k =", derivation.results["riccati_step"])

# 3. Checks: two networks trained to convergence (biases only; weights and biases): the Riccati feedback
#    against the trained biases, V_0 against the trained cost, and the Pontryagin conditions at the optimum.
report = hjsym.check("training-hjb")
print(report.table())
print("value:", {k: v for k, v in report.check("value_function").details["cases"][0].items() if k != "certificate"})

if "--report" in sys.argv:
    for path in hjsym.report(["training-hjb"], out="reports"):
        print("wrote", path)
