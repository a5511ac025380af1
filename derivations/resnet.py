"""A residual MLP as an explicit Euler scheme: costate = backprop, the continuous limit, noise = viscosity.

    python derivations/resnet.py            # prints the derivation and the checks
    python derivations/resnet.py --report   # also writes reports/resnet/
"""

import sys

import hjsym
from hjsym.architectures.resnet import SPEC as spec

# 1. The spec: s' = s + h (W2 tanh(W1 s + b1) + b2); noise sigma sqrt(h) xi per block is declared, so the
#    value function's equation gets the viscosity sigma^2/2 (derived by a Taylor expansion).
print("F =", spec.dynamics.field, "| noise:", spec.dynamics.noise)

# 2. Derive: adjoints (ybar = h W2^T p, abar = tanh'(a) ybar), costate, parameter gradients, the
#    continuous limit (a neural ODE), HJB and backward Kolmogorov equations, and the linear-Gaussian
#    case solved by the quadratic ansatz.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. Checks: torch modules (depth 32, width 64), continuous depth (fitted order), the viscous ResNet
#    against a Monte Carlo of the real noisy module.
report = hjsym.check("resnet")
print(report.table())
for name in ("continuous_depth", "kolmogorov_monte_carlo"):
    print(name, {k: v for k, v in report.check(name).details.items() if not isinstance(v, list)})

if "--report" in sys.argv:
    for path in hjsym.report(["resnet"], out="reports"):
        print("wrote", path)
