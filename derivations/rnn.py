"""Which equations does an Elman RNN solve? The control (Pontryagin) view of torch.nn.RNN, end to end.

    python derivations/rnn.py            # prints the derivation and the checks
    python derivations/rnn.py --report   # also writes reports/rnn/

To add a recurrent cell of your own, copy this script and a spec module of hjsym/architectures/
(see derivations/mgu.py: a cell hjsym has never seen, added without touching the pipeline).
"""

import sys

import torch

import hjsym
from hjsym.architectures.rnn import SPEC as spec

# 1. The spec: the step s' = s + h F with F = tanh(W s + U x + b) - s (h = 1 is torch.nn.RNN).
print("field F:", spec.dynamics.field, "| controls:", spec.dynamics.controls, "| step size:", spec.dynamics.step_size)

# 2. Derive: control Hamiltonian H = p.F, the costate recursion (= backprop through time) and the
#    parameter gradients by the chain rule, the continuous limit, the HJB equation, the classification.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. A generated function on torch's own module: one step from weights read out of nn.RNN.
torch.manual_seed(0)
rnn = torch.nn.RNN(3, 5, dtype=torch.float64)
x, s = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
step = derivation.function("step")
with torch.no_grad():
    mine = step(s=s, x=x, W=rnn.weight_hh_l0, U=rnn.weight_ih_l0, b=rnn.bias_ih_l0 + rnn.bias_hh_l0, h=1.0)
    theirs = rnn(x[None], s[None])[1][0]
print("generated step vs torch.nn.RNN, max difference:", float((mine - theirs).abs().max()))

# 4. Checks against torch.nn.RNN (1 and 2 layers, batch_first both ways, with and without bias).
print(hjsym.check("rnn").table())

if "--report" in sys.argv:
    for path in hjsym.report(["rnn"], out="reports"):
        print("wrote", path)
