"""The selective (Mamba-style) SSM: an input-dependent step Delta = dt softplus(W_d x + b_d).

    python derivations/ssm_selective.py            # prints the derivation and the checks
    python derivations/ssm_selective.py --report   # also writes reports/ssm-selective/
"""

import sys

import hjsym
from hjsym.architectures.ssm_selective import SPEC as spec

# 1. The spec: Delta is a definition (a node of the chain rule), so the costate recursion carries the
#    selectivity's gradient to W_d and b_d; each step is still the exact flow of ds/dt = A s + B x.
print("Delta =", dict(spec.dynamics.definitions)["Delta"], "| F =", spec.dynamics.field)

# 2. Derive; the continuous limit is ds/dt = softplus(W_d x + b_d)(A s + B x): time runs at an
#    input-dependent rate.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. Checks against the plain-torch selective SSM.
print(hjsym.check("ssm-selective").table())

if "--report" in sys.argv:
    for path in hjsym.report(["ssm-selective"], out="reports"):
        print("wrote", path)
