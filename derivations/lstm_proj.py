"""The projected LSTM (torch.nn.LSTM(proj_size=P)): the LSTM's step with h' = W_r (o tanh(c')), end to end.

    python derivations/lstm_proj.py            # prints the derivation and the checks
    python derivations/lstm_proj.py --report   # also writes reports/lstm-proj/
"""

import sys

import torch

import hjsym
from hjsym.architectures.lstm_proj import SPEC as spec

# 1. The spec: the LSTM's, with the projection W_r in the field of h. The projected state (P components) is embedded in
#    the cell's dimension with zeros: the padded rows of W_r and the padded columns of the recurrent weights are zero.
for part, text in spec.dynamics.field:
    print(f"F_{part} = {text}")

# 2. Derive.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. One generated step on the weights read out of torch's own module, against the module.
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 5, proj_size=2, dtype=torch.float64)
readout = hjsym.read_control(lstm, spec)
x = torch.randn(4, 3, dtype=torch.float64)
c0, h0 = torch.randn(4, 5, dtype=torch.float64), torch.cat([torch.randn(4, 2, dtype=torch.float64), torch.zeros(4, 3)], -1)
step = derivation.function("step")
with torch.no_grad():
    c1, h1 = step(c=c0, h=h0, x=x, dt=1.0, **readout.layers[0].controls)
    _, (h_t, c_t) = lstm(x[None], (h0[None, :, :2], c0[None]))
print("generated step vs torch.nn.LSTM(proj_size=2), max difference:",
      max(float((c1 - c_t[0]).abs().max()), float((h1[:, :2] - h_t[0]).abs().max())), "| padded components:", float(h1[:, 2:].abs().max()))

# 4. Checks against torch.nn.LSTM(proj_size=4): 1 and 2 layers, batch_first both ways, with and without bias.
print(hjsym.check("lstm-proj").table())

if "--report" in sys.argv:
    for path in hjsym.report(["lstm-proj"], out="reports"):
        print("wrote", path)
