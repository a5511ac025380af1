"""A spec file (exact family): a log-sum-exp layer whose temperature is called ``tau``.

    hjsym derive derivations/spec_files/tempered_lse.py
    hjsym check derivations/spec_files/tempered_lse.py --negative-controls
    hjsym report derivations/spec_files/tempered_lse.py --out reports

An LSE-type spec with atomic initial data gets the LSE layer's checks (identity, PDE residual,
tropical bounds, Hopf-Lax, Hessian, attribution) with no suite to write.
"""

import torch
from torch import nn

import hjsym
from hjsym import AtomicData, Network, Scalar, Spec, Tensor

SPEC = Spec(
    name="tempered-lse",
    title="Log-sum-exp layer with temperature $\\tau$ (a spec file)",
    family="exact",
    summary="$\\tau \\log \\sum_j \\exp((W_j x + b_j)/\\tau)$: the Hopf–Cole solution of $u_t + |\\nabla u|^2 = \\tau \\Delta u$.",
    symbols=(
        Scalar("tau", latex=r"\tau", doc="temperature = viscosity"),
        Tensor("W", ("atom", "dim"), doc="slopes"),
        Tensor("b", ("atom",), doc="offsets"),
        Tensor("y", ("atom", "dim"), doc="atoms"),
        Tensor("g", ("atom",), doc="values at the atoms"),
    ),
    hamiltonian="norm2(p)",
    viscosity="tau",
    initial_data=AtomicData(points="y", values="g"),
    network=Network(output="tau * lse((dot(W, x) + b) / tau)", weights=("W", "b")),
)


class TemperedLSE(nn.Module):
    """``(B, d) -> (B,)``: one ``nn.Linear`` and a log-sum-exp at temperature ``temperature``."""

    def __init__(self, d: int = 3, n_atoms: int = 12, temperature: float = 0.25, seed: int = 0, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(d, n_atoms, dtype=dtype)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(n_atoms, d, generator=g, dtype=torch.float64))
            self.linear.bias.copy_(torch.randn(n_atoms, generator=g, dtype=torch.float64))
        self.temperature = temperature

    def forward(self, x):
        return self.temperature * torch.logsumexp(self.linear(x) / self.temperature, dim=-1)


def networks(seed: int = 0, dtype=torch.float64) -> dict:
    return {"TemperedLSE(d = 3, N = 12, tau = 0.25)": TemperedLSE(seed=seed, dtype=dtype)}


ARCHITECTURE = hjsym.Architecture(SPEC, networks=networks)
