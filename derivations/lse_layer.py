"""Which PDE does a log-sum-exp layer solve? A readable walk through hjsym, end to end.

To add an architecture, copy its spec module ``hjsym/architectures/lse.py`` (a few dozen
lines: symbols, Hamiltonian, viscosity, initial data, network) and this script; nothing else
in hjsym needs to change.

    python derivations/lse_layer.py            # prints the derivation and the checks
    python derivations/lse_layer.py --report   # also writes reports/lse/
"""

import sys

import torch

import hjsym
from hjsym.architectures.lse import SPEC as spec

# 1. The spec: symbols with their axes, the Hamiltonian H(p) = |p|^2 (no 1/2: the paper's
#    convention) and the viscosity eps, atomic initial data (y_j, g_j), and the network the
#    architecture claims to be. Its strings are plain mathematics, parsed without eval.
print("Hamiltonian:", spec.hamiltonian, "| viscosity:", spec.viscosity, "| network:", spec.network.output)
spec.validate()  # catches unbound or unused symbols and malformed expressions before deriving

# 2. Derive: every step is computed by SymPy (nothing is asserted).
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. Generated torch functions: the Hopf-Cole solution, from initial data read out of weights.
u = derivation.function("u")
print(u.__doc__)
layer = hjsym.train_lse_layer(d=2, n_atoms=16, eps=0.5, seed=0)
W, b = layer.linear.weight.detach(), layer.linear.bias.detach()
y = derivation.function("atoms_y")(W=W, t=1.0)
g = derivation.function("atoms_g")(W=W, b=b, t=1.0)
x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    gap = layer(x) + u(x=x, eps=layer.eps, y=y, g=g, t=1.0) - (x * x).sum(-1) / 4
print("f + u - |x|^2/(4t) at five points:", gap.tolist())

# 4. Check against real torch networks (two routes per check, negative controls included).
result = hjsym.check("lse", negative_controls=True)
print(result.table())

# 5. Report (HTML with offline math, LaTeX) when asked.
if "--report" in sys.argv:
    for path in hjsym.report(["lse"], out="reports"):
        print("wrote", path)
