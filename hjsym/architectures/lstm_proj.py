"""The LSTM with a projection (``torch.nn.LSTM(proj_size=P)``): ``c' = f c + i g``, ``h' = W_r (o tanh(c'))``.

The projected state ``h`` (P components) is embedded in the cell's dimension (H): its last H - P
components are zero at every step (the padded rows of ``W_r`` are zero) and the padded columns of
the recurrent and upper-layer input weights multiply those zeros, so the step is the LSTM's with the
extra projection ``W_r`` in the field of ``h``. The readout pads and the checks compare everything
in that embedding (the padded components agree exactly, at zero).
"""

import dataclasses

import torch

from ..networks.control import lstm_references
from ..spec.registry import Architecture
from ..spec.spec import Claim, Dynamics, Tensor
from .lstm import SPEC as LSTM

SPEC = dataclasses.replace(
    LSTM,
    name="lstm-proj",
    title="LSTM with a projection (proj_size)",
    summary="State $(c, h)$; $c^+ = f c + i g$, $h^+ = W^{r} (o \\tanh(c^+))$: the LSTM's gated Euler step of the cell, then a "
    "projection of the hidden state (torch.nn.LSTM(proj_size=P), $h$ embedded in the cell's dimension with zeros).",
    symbols=LSTM.symbols + (Tensor("W_r", ("dim", "dim"), latex="W^{r}", doc="projection (weight_hr, rows padded with zeros to d)"),),
    dynamics=dataclasses.replace(
        LSTM.dynamics,
        field=(("c", "cn - c"), ("h", "W_r @ (og * tanh(cn)) - h")),
        controls=LSTM.dynamics.controls + ("W_r",),
        claims=(
            Claim("torch's projected LSTM update", "h + F_h", "W_r @ (og * tanh(cn))",
                  "torch.nn.LSTM with proj_size documents $h' = W_{hr} (o \\tanh(c'))$; with $\\delta = 1$ the spec's step is exactly that",
                  "convention"),
            Claim("The cell update is a gated Euler step", "F_c", "-(1 - fg) * c + ig * gg",
                  "an Euler step of the leaky integrator $dc/dt = -(1 - f) c + i g$, as in the LSTM"),
        ),
    ),
)


def references(seed: int = 0, dtype=torch.float64):
    """torch.nn.LSTM(proj_size=4) (hidden 16): 1 and 2 layers, batch_first both ways, with and without bias."""
    return lstm_references(seed, dtype, proj_size=4)


ARCHITECTURE = Architecture(SPEC, networks=references, position=145)
