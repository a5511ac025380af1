"""A diagonal state-space model: the zero-order-hold step is the exact flow, and LQR is exact.

    python derivations/ssm.py            # prints the derivation and the checks
    python derivations/ssm.py --report   # also writes reports/ssm/
"""

import sys

import hjsym
from hjsym.architectures.ssm import SPEC as spec

# 1. The spec: s' = exp(dt A) s + (exp(dt A) - 1)/A B x, written as s + dt F (F depends on dt).
print("F =", spec.dynamics.field)

# 2. Derive: the continuous limit dt -> 0 (ds/dt = A s + B x, by SymPy's limit), the proof that the
#    step is the exact flow of that field (classification: exact), and, since the field is linear,
#    the Riccati equation from the HJB equation by the quadratic ansatz V = s^T P s.
derivation = hjsym.derive(spec)
print(derivation.text())
print("Riccati: dP/dtau =", derivation.results["riccati_rhs"])

# 3. Checks: the plain-torch SSM module, and the LQR predictions against direct optimisation of the
#    control sequence through the module and SciPy's algebraic Riccati solutions.
report = hjsym.check("ssm")
print(report.table())
print("LQR:", {k: v for k, v in report.check("lqr_finite_horizon").details.items() if k.startswith("J")})

if "--report" in sys.argv:
    for path in hjsym.report(["ssm"], out="reports"):
        print("wrote", path)
