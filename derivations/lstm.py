"""The LSTM's cell update as a gated Euler step: torch.nn.LSTM, end to end.

    python derivations/lstm.py            # prints the derivation and the checks
    python derivations/lstm.py --report   # also writes reports/lstm/
"""

import sys

import torch

import hjsym
from hjsym.architectures.lstm import SPEC as spec

# 1. The spec: a state in two parts (c, h) with costates (p_c, p_h); gates i, f, g, o and the new
#    cell cn = f c + i g as definitions; F_c = cn - c, F_h = o tanh(cn) - h (step dt = 1).
for part, text in spec.dynamics.field:
    print(f"F_{part} = {text}")

# 2. Derive.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. The generated costate step seeded by a loss gradient, against torch.autograd through nn.LSTM.
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 4, dtype=torch.float64)
W, U, b = (t.detach() for t in (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0))
weights = {f"{kind}_{g}": t[n * 4:(n + 1) * 4] for n, g in enumerate("ifgo") for kind, t in (("W", W), ("U", U), ("b", b))}
x = torch.randn(2, 3, dtype=torch.float64)
c0, h0 = (torch.randn(2, 4, dtype=torch.float64, requires_grad=True) for _ in range(2))
_, (h1, c1) = lstm(x[None], (h0[None], c0[None]))
phi = (torch.sin(h1) + c1 ** 2).sum()
grads = torch.autograd.grad(phi, (c0, h0))
p_c, p_h = 2 * c1[0].detach(), torch.cos(h1[0]).detach()  # grad Phi at the final state
step = derivation.function("costate_step")
mine = step(c=c0.detach(), h=h0.detach(), x=x, p_c=p_c, p_h=p_h, dt=1.0, **weights)
print("costate step vs torch.autograd, max difference:", max(float((a - b).abs().max()) for a, b in zip(mine, grads)))

# 4. Checks against torch.nn.LSTM: 1 and 2 layers, batch_first both ways, with and without bias.
print(hjsym.check("lstm").table())

if "--report" in sys.argv:
    for path in hjsym.report(["lstm"], out="reports"):
        print("wrote", path)
