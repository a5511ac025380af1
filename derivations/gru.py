"""The GRU as an Euler step whose step size is the update gate: torch.nn.GRU, end to end.

    python derivations/gru.py            # prints the derivation and the checks
    python derivations/gru.py --report   # also writes reports/gru/
"""

import sys

import hjsym
from hjsym.architectures.gru import SPEC as spec

# 1. The spec: torch's gates r, z, n as named definitions (they become nodes of the chain rule),
#    the field F = (1 - z)(n - s), and two claims the derivation verifies (torch's documented update,
#    and the Euler step with the update gate as step size).
for name, text in spec.dynamics.definitions:
    print(f"{name} = {text}")
print("F =", spec.dynamics.field)

# 2. Derive (adjoints of r, z, n and of their pre-activations, then the costate and parameter gradients).
derivation = hjsym.derive(spec)
print(derivation.text())
print("classification:", derivation.classification.kind, "-", derivation.classification.statement)

# 3. Checks against torch.nn.GRU: forward and hidden states to 1e-12, every gradient to 1e-10.
print(hjsym.check("gru").table())

if "--report" in sys.argv:
    for path in hjsym.report(["gru"], out="reports"):
        print("wrote", path)
