"""Which equations does an Elman ReLU RNN solve? torch.nn.RNN(nonlinearity="relu"), a piecewise-linear step.

    python derivations/rnn_relu.py            # prints the derivation and the checks
    python derivations/rnn_relu.py --report   # also writes reports/rnn-relu/

To add a recurrent cell of your own, copy this script and a spec module of hjsym/architectures/
(see derivations/mgu.py: a cell hjsym has never seen, added without touching the pipeline).
"""

import sys

import torch

import hjsym
from hjsym.architectures.rnn_relu import SPEC as spec

# 1. The spec: the step s' = s + h F with F = relu(W s + U x + b) - s (h = 1 is torch.nn.RNN).
print("field F:", spec.dynamics.field, "| controls:", spec.dynamics.controls, "| step size:", spec.dynamics.step_size)

# 2. Derive: control Hamiltonian H = p.F, the costate recursion (= backprop through time) and the
#    parameter gradients by the chain rule, the continuous limit, the HJB equation, the classification.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. A generated function on torch's own module (relu, with the subgradient H(0) = 0 at the kinks: see the "piecewise" step).
torch.manual_seed(0)
rnn = torch.nn.RNN(3, 5, nonlinearity="relu", dtype=torch.float64)
x, s = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
step = derivation.function("step")
with torch.no_grad():
    mine = step(s=s, x=x, W=rnn.weight_hh_l0, U=rnn.weight_ih_l0, b=rnn.bias_ih_l0 + rnn.bias_hh_l0, h=1.0)
    theirs = rnn(x[None], s[None])[1][0]
print("generated step vs torch.nn.RNN(relu), max difference:", float((mine - theirs).abs().max()))

# 4. Checks against torch.nn.RNN (1 and 2 layers, batch_first both ways, with and without bias).
print(hjsym.check("rnn-relu").table())

if "--report" in sys.argv:
    for path in hjsym.report(["rnn-relu"], out="reports"):
        print("wrote", path)
