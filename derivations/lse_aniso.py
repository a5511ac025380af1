"""Which PDE does an LSE layer after a learned linear map solve? H(p) = p^T A p, and A is derived.

The spec (hjsym/architectures/lse_aniso.py) declares a symmetric positive definite diffusion
matrix A, the map L and the layer's effective weights W = V L; everything else is derived: the
Hopf-Cole transform to w_t = eps tr(A Hess w), the heat kernel with metric A^-1 (its residual
reduces to zero because A A^-1 contracts to the identity), the Legendre transform
q^T A^-1 q / 4, the parameter map y = 2t A W and the identity f + u = x^T A^-1 x / (4t), and
A = (L^T L)^-1 from the change of variables xi = L x.

    python derivations/lse_aniso.py            # prints the derivation and the checks
    python derivations/lse_aniso.py --report   # also writes reports/lse-aniso/
"""

import dataclasses
import sys

import torch

import hjsym
from hjsym.architectures.lse_aniso import SPEC as spec
from hjsym.networks.lse import read_aniso_lse

# 1. The spec: H(p) = quad(p, A) = p^T A p, with A declared symmetric positive definite.
print("Hamiltonian:", spec.hamiltonian, "| diffusion:", spec.diffusion, "| input map:", spec.input_map)

# 2. Derive (SymPy; nothing asserted). The derivation is generic: the same passes as the LSE
#    layer, with two facts about matrices in the index calculus.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. A real network: a learned map L, then an LSE layer. A comes from the *generated* function
#    diffusion_from_map(L); the identity f + u = x^T A^-1 x/(4t) then holds to rounding.
layer = hjsym.train_aniso_lse_layer(d=2, seed=0)
r = read_aniso_lse(layer)
A = derivation.function("diffusion_from_map")(L=r.L)
y = derivation.function("atoms_y")(W=r.W, A=A, t=1.0)
g = derivation.function("atoms_g")(W=r.W, b=r.b, A=A, t=1.0)
x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    gap = layer(x) + derivation.function("u")(x=x, eps=layer.eps, A=A, y=y, g=g, t=1.0) - derivation.function("identity_rhs")(x=x, A=A, t=1.0)
print("A = (L^T L)^-1 =", A.tolist())
print("f + u - x^T A^-1 x/(4t) at five points:", gap.tolist())

# 4. An indefinite A: the HJ equation is still derived, the Hopf-Lax step says why it fails, and a
#    generated function that needs A^-1 refuses the matrix with an error naming the problem.
indefinite = dataclasses.replace(spec, name="lse-aniso-indefinite", symbols=tuple(
    dataclasses.replace(s, positive_definite=False) if s.name == "A" else s for s in spec.symbols))
d2 = hjsym.derive(indefinite)
print("indefinite A:", d2.step("hj-equation").status, "HJ equation;", d2.step("hopf-lax").status, "Hopf-Lax:", d2.step("hopf-lax").reason[:90])
try:
    derivation.function("hopf_lax")(x=x, y=y, g=g, A=torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)), t=1.0)
except hjsym.InputError as exc:
    print("generated hopf_lax with A = diag(1, -1):", exc.problem[:80])

# 5. Check against real torch networks (two routes per check, negative controls included).
result = hjsym.check("lse-aniso", negative_controls=True)
print(result.table())

if "--report" in sys.argv:
    for path in hjsym.report(["lse-aniso"], out="reports"):
        print("wrote", path)
