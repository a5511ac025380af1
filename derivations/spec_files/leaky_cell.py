"""A spec file (control family): a leaky tanh cell with step size 1/2, and the plain-torch cell it describes.

    hjsym derive derivations/spec_files/leaky_cell.py
    hjsym check derivations/spec_files/leaky_cell.py --negative-controls
    hjsym report derivations/spec_files/leaky_cell.py --out reports

The file defines ``SPEC`` (what the cell is) and ``ARCHITECTURE`` (the spec plus the networks its
checks run on by default); with ``SPEC`` alone, ``hjsym check FILE --module net.py:model`` checks a
module of yours. The family's generic checks apply: no suite to write.
"""

import torch
from torch import nn

import hjsym
from hjsym import Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="leaky-cell",
    title="Leaky tanh cell (a spec file)",
    family="control",
    summary="$s^+ = s + h (\\tanh(W s + U x + b) - s)$: an Euler step of size $h$ of a leaky tanh field.",
    state="s",
    symbols=(
        Scalar("h", doc="step size (the module's attribute h)"),
        Tensor("x", ("input",), doc="input $x_k$ at step $k$"),
        Tensor("W", ("dim", "dim"), doc="recurrent weight"),
        Tensor("U", ("dim", "input"), doc="input weight"),
        Tensor("b", ("dim",), doc="bias"),
    ),
    dynamics=Dynamics(field="tanh(W @ s + U @ x + b) - s", controls=("W", "U", "b"), step_size="h", inputs=("x",)),
)


class LeakyCell(nn.Module):
    """``forward(x (B, K, n_x), s0 (B, d)) -> states (B, K, d)``; parameters named as the spec's controls."""

    def __init__(self, n_x: int = 3, d: int = 8, h: float = 0.5, seed: int = 0, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(d, d, generator=g, dtype=torch.float64).to(dtype) / d**0.5)
        self.U = nn.Parameter(torch.randn(d, n_x, generator=g, dtype=torch.float64).to(dtype))
        self.b = nn.Parameter(0.1 * torch.randn(d, generator=g, dtype=torch.float64).to(dtype))
        self.h = h

    def forward(self, x, s0):
        s, out = s0, []
        for k in range(x.shape[1]):
            s = s + self.h * (torch.tanh(s @ self.W.T + x[:, k] @ self.U.T + self.b) - s)
            out.append(s)
        return torch.stack(out, dim=1)


def networks(seed: int = 0, dtype=torch.float64) -> dict:
    return {"LeakyCell(n_x = 3, d = 8, h = 0.5)": LeakyCell(seed=seed, dtype=dtype)}


ARCHITECTURE = hjsym.Architecture(SPEC, networks=networks)
