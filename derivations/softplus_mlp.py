"""Which activations are a Hamilton-Jacobi step? Softplus MLPs, and the activation classes derived.

The spec (hjsym/architectures/softplus_mlp.py) is the LSE layer plus six activations written as
plain mathematics. For each, SymPy finds the tropical limit (one-sided limits eps -> 0), the
nearest exact form with that limit (a two-atom log-sum-exp, or its derivative), the class and
the symbolic gap. The softplus unit is then verified to be the layer with two atoms (w, c) and
(0, 0): one HJ step, within eps log 2 of ReLU.

    python derivations/softplus_mlp.py            # prints the derivation, the table and the checks
    python derivations/softplus_mlp.py --report   # also writes reports/softplus-mlp/
"""

import sys

import torch
from torch import nn

import hjsym
from hjsym.reports.tables import table_markdown
from hjsym.architectures.softplus_mlp import SPEC as spec

for act in spec.activations:
    print(f"{act.name:9s} sigma(z) = {act.output:45s} torch: {act.torch}")

derivation = hjsym.derive(spec)
print(derivation.text())

# The activation table, generated from the derivation's results (never typed).
print(table_markdown(hjsym.activation_table(derivation)))

# A real softplus unit as one HJ step: eps softplus((w.x + c)/eps) = |x|^2/(4t) - u_eps(x, t) with
# the atoms y = 2t (w, 0), g = (-c - t|w|^2, 0) from the generated parameter map.
eps, t = 0.25, 1.0
unit = nn.Sequential(nn.Linear(3, 1, dtype=torch.float64), nn.Softplus(beta=1 / eps, threshold=40))
w, c = unit[0].weight.detach()[0], unit[0].bias.detach()[0]
W, b = torch.stack([w, 0 * w]), torch.stack([c, 0 * c])
y, g = derivation.function("atoms_y")(W=W, t=t), derivation.function("atoms_g")(W=W, b=b, t=t)
x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
with torch.no_grad():
    hj_step = derivation.function("identity_rhs")(x=x, t=t) - derivation.function("u")(x=x, eps=eps, y=y, g=g, t=t)
    print("softplus unit - HJ step:", (unit(x)[:, 0] - hj_step).tolist())

# Checks against trained nn.Sequential MLPs (Softplus, ReLU, Sigmoid, Tanh, SiLU, GELU), the
# semigroup on trained LSE layers and the depth bound; each with a negative control.
result = hjsym.check("softplus-mlp", negative_controls=True)
print(result.table())

if "--report" in sys.argv:
    for path in hjsym.report(["softplus-mlp"], out="reports"):
        print("wrote", path)
