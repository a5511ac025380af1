"""Mamba's selective scan (Gu & Dao 2023, as mambapy writes it): ``h' = exp(Delta A) h + Delta B(x) x`` per channel and state.

For channel ``e`` and state ``n`` (flattened to one state index ``i = e N + n``): ``Delta = dt softplus(W_dt W_x x + b_dt)_e``
(``dt = 1`` is the scan; ``dt -> 0`` its continuous limit)
and ``B(x) = (W_B x)_n`` depend on the input (selectivity), ``A = -exp(A_log)``; the input matrix is discretised by
``Delta B`` (the simplified, Euler-like hold of Mamba's reference code) rather than the zero-order hold of ``ssm-selective``,
whose B is fixed. The selection ``S`` (``S_{i e} = 1`` when ``i`` belongs to channel ``e``) gathers each state's channel input.
The rest of a Mamba block (input projection, convolution, SiLU, the readout ``C h + D x``, the gate, the output projection)
lies outside the SSM.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..networks.mamba import scan_controls
from ..networks.training import seeded
from ..spec.registry import Architecture
from ..spec.spec import Claim, Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="mamba",
    title="Mamba's selective scan (input-dependent step and input matrix)",
    family="control",
    summary="$s^+ = e^{\\Delta A} s + \\Delta B(x) x$ per channel and state, $\\Delta = \\mathrm{softplus}(W^{\\Delta} x + b^{\\Delta})$, "
    "$B(x) = W^{B} x$: the selective scan of a Mamba block (mambapy), its other parts outside the SSM.",
    state="s",
    symbols=(
        Scalar("dt", latex=r"\delta", doc="time scale of the step (1 for the scan)"),
        Tensor("x", ("input",), doc="the scan's input $x_k$ (d_inner channels)"),
        Tensor("A", ("dim",), doc="minus the exponential of A_log per channel and state ($A < 0$), flattened"),
        Tensor("W_d", ("dim", "input"), latex=r"W^{\Delta}", doc="dt_proj.weight @ x_proj.weight[:dt_rank], row of each state's channel"),
        Tensor("b_d", ("dim",), latex=r"b^{\Delta}", doc="dt_proj.bias of each state's channel"),
        Tensor("W_B", ("dim", "input"), latex="W^{B}", doc="x_proj.weight[dt_rank:dt_rank + N], row of each state's index n"),
        Tensor("S", ("dim", "input"), doc="selection of each state's channel (0/1, fixed)"),
    ),
    dynamics=Dynamics(
        field="((exp(Delta * A) - 1) * s + Delta * (W_B @ x) * (S @ x)) / dt",
        controls=("A", "W_d", "b_d", "W_B", "S"),
        step_size="dt",
        inputs=("x",),
        definitions=(("Delta", "dt * softplus(W_d @ x + b_d)", r"\Delta"),),
        claims=(Claim("Mamba's scan", "s + dt * F", "exp(Delta * A) * s + Delta * (W_B @ x) * (S @ x)",
                      "mambapy's selective_scan_seq: h = exp(delta A) h + delta B x, with dt = 1", "convention"),),
    ),
    references=("hjdl2026", "pontryagin1962", "gu2022", "gu2023"),
)


class MambaScan(nn.Module):
    """Mamba's selective scan in plain torch, with a Mamba block's parameters (``A_log``, ``x_proj``, ``dt_proj``).

    ``forward(x (B, K, d_inner), s0 (B, d_inner N)) -> states (B, K, d_inner N)``.
    """

    def __init__(self, d_inner: int = 4, d_state: int = 3, dt_rank: int = 2, dtype=torch.float64):
        super().__init__()
        self.dt_rank, self.d_state = dt_rank, d_state
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=dtype).repeat(d_inner, 1)))
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False, dtype=dtype)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True, dtype=dtype)
        with torch.no_grad():
            dt = torch.exp(torch.rand(d_inner, dtype=dtype) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def hjsym_controls(self) -> dict:
        return scan_controls(self.A_log, self.x_proj.weight, self.dt_proj.weight, self.dt_proj.bias, self.dt_rank)

    def forward(self, x, s0):
        E, N = self.A_log.shape
        A = -torch.exp(self.A_log)
        h, out = s0.reshape(s0.shape[0], E, N), []
        for k in range(x.shape[1]):
            xk = x[:, k]
            dbc = self.x_proj(xk)
            delta = F.softplus(self.dt_proj(dbc[:, :self.dt_rank]))
            B = dbc[:, self.dt_rank:self.dt_rank + N]
            h = torch.exp(delta[..., None] * A) * h + delta[..., None] * B[:, None, :] * xk[..., None]
            out.append(h.reshape(h.shape[0], E * N))
        return torch.stack(out, dim=1)


def references(seed: int = 0, dtype=torch.float64) -> dict:
    """A plain-torch Mamba scan (d_inner 4, d_state 3, dt_rank 2), initialised as Mamba initialises it (seeded)."""
    with seeded(seed):
        return {"MambaScan(d_inner = 4, d_state = 3, dt_rank = 2)": MambaScan(dtype=dtype)}


ARCHITECTURE = Architecture(SPEC, networks=references, position=165)
