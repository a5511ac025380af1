"""The minimal gated unit (MGU; Zhou, Wu, Zhang, Zhou 2016), added as a spec and a plain-torch cell.

Nothing in hjsym's pipeline knows this cell: the spec below (with ``derivations/mgu.py``) is all it
takes. ``f = sigmoid(W_f x + U_f s + b_f)``, ``n = tanh(W_h x + U_h (f s) + b_h)``,
``s' = (1 - f) s + f n``: an Euler step of ``ds/dt = n - s`` whose step size is the forget gate.
"""

import torch
from torch import nn

from ..networks.training import seeded
from ..spec.registry import Architecture
from ..spec.spec import Claim, Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="mgu",
    title="Minimal gated unit (MGU), added by a spec",
    family="control",
    summary="$s^+ = (1 - f) s + f n$ with one gate $f$ and candidate $n = \\tanh(W^h x + U^h (f s) + b^h)$: an Euler step of "
    "$ds/dt = n - s$ whose step size is the gate. Added by a spec and a derivations/ script only.",
    state="s",
    symbols=(
        Scalar("h", doc="step size (1 for the cell)"),
        Tensor("x", ("input",), doc="input $x_k$ at step $k$"),
        Tensor("W_f", ("dim", "input"), latex="W^{f}", doc="gate input weight"),
        Tensor("U_f", ("dim", "dim"), latex="U^{f}", doc="gate recurrent weight"),
        Tensor("b_f", ("dim",), latex="b^{f}", doc="gate bias"),
        Tensor("W_h", ("dim", "input"), latex="W^{h}", doc="candidate input weight"),
        Tensor("U_h", ("dim", "dim"), latex="U^{h}", doc="candidate recurrent weight (acts on $f s$)"),
        Tensor("b_h", ("dim",), latex="b^{h}", doc="candidate bias"),
    ),
    dynamics=Dynamics(
        field="f * (n - s)",
        controls=("W_f", "U_f", "b_f", "W_h", "U_h", "b_h"),
        step_size="h",
        inputs=("x",),
        definitions=(("f", "sigmoid(W_f @ x + U_f @ s + b_f)"), ("n", "tanh(W_h @ x + U_h @ (f * s) + b_h)")),
        claims=(
            Claim("the MGU update", "s + F", "(1 - f) * s + f * n", "Zhou et al. (2016): $h_t = (1 - f_t) h_{t-1} + f_t n_t$", "convention"),
            Claim("An Euler step whose step size is the forget gate", "(1 - f) * s + f * n", "s + f * (n - s)",
                  "the convex combination is an explicit Euler step of $ds/dt = n - s$ with componentwise step size $f \\in (0, 1)$"),
        ),
    ),
    references=("hjdl2026", "pontryagin1962", "zhou2016"),
)


class MinimalGatedUnit(nn.Module):
    """The MGU in plain torch, parameters named as the spec's controls.

    Shapes: ``x`` is ``(B, K, n_x)`` (batch first), ``s0`` ``(B, d)``; returns the states
    ``s_1 .. s_K`` as ``(B, K, d)``.
    """

    def __init__(self, input_size: int, hidden_size: int, dtype=torch.float64):
        super().__init__()
        bound = hidden_size ** -0.5

        def p(*shape):
            return nn.Parameter(torch.empty(*shape, dtype=dtype).uniform_(-bound, bound))

        self.W_f, self.U_f, self.b_f = p(hidden_size, input_size), p(hidden_size, hidden_size), p(hidden_size)
        self.W_h, self.U_h, self.b_h = p(hidden_size, input_size), p(hidden_size, hidden_size), p(hidden_size)

    def forward(self, x: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
        s, out = s0, []
        for k in range(x.shape[1]):
            xk = x[:, k]
            f = torch.sigmoid(xk @ self.W_f.T + s @ self.U_f.T + self.b_f)
            n = torch.tanh(xk @ self.W_h.T + (f * s) @ self.U_h.T + self.b_h)
            s = (1 - f) * s + f * n
            out.append(s)
        return torch.stack(out, dim=1)


def reference_networks(seed: int = 0, dtype=torch.float64) -> dict:
    """Two MGUs (input 6, hidden 16 and input 3, hidden 8), initialised from the seed."""
    out = {}
    for n, (i, d) in enumerate(((6, 16), (3, 8))):
        with seeded(seed * 10 + n):
            out[f"input {i}, hidden {d}"] = MinimalGatedUnit(i, d, dtype=dtype)
    return out


ARCHITECTURE = Architecture(SPEC, networks=reference_networks, position=170)
