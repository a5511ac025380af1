"""A spec file (control family): a residual network with ReLU blocks, s' = s + h (W2 relu(W1 s + b1) + b2).

    hjsym derive derivations/spec_files/relu_resnet.py
    hjsym check derivations/spec_files/relu_resnet.py --negative-controls
    hjsym check derivations/spec_files/relu_resnet.py --module my_net.py:model

A spec with no per-step input and one state part is read as a residual stack by tracing the module's
forward: any container, any name for the step size, the activation as a module or a function, tied
weights. The field is piecewise linear: its derivatives hold off the kinks (H(0) = 0, as torch.relu),
and the checks report how close the trajectories come to them.
"""

import torch
from torch import nn

import hjsym
from hjsym import Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="relu-resnet",
    title="Residual network with ReLU blocks (a spec file)",
    family="control",
    summary="$s^+ = s + h (W_2 \\mathrm{relu}(W_1 s + b_1) + b_2)$: an explicit Euler step of a piecewise-linear field.",
    state="s",
    symbols=(
        Scalar("h", doc="step size (read from the module's forward)"),
        Tensor("W1", ("hidden", "dim"), doc="first Linear weight of a block"),
        Tensor("b1", ("hidden",), doc="first Linear bias"),
        Tensor("W2", ("dim", "hidden"), doc="second Linear weight"),
        Tensor("b2", ("dim",), doc="second Linear bias"),
    ),
    dynamics=Dynamics(field="W2 @ relu(W1 @ s + b1) + b2", controls=("W1", "b1", "W2", "b2"), step_size="h"),
)


class ReluResNet(nn.Module):
    """``s -> s + dt * layer2(relu(layer1(s)))`` per block; the blocks in ``self.layers``, the step in ``self.dt``."""

    def __init__(self, width: int = 6, hidden: int = 10, depth: int = 8, dt: float = 0.3, seed: int = 0, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList()
        for _ in range(depth):
            block = nn.ModuleDict({"inner": nn.Linear(width, hidden, dtype=dtype), "outer": nn.Linear(hidden, width, dtype=dtype)})
            with torch.no_grad():
                for lin in block.values():
                    lin.weight.copy_(torch.randn(lin.weight.shape, generator=g, dtype=torch.float64) / lin.in_features**0.5)
                    lin.bias.copy_(0.3 * torch.randn(lin.bias.shape, generator=g, dtype=torch.float64))
            self.layers.append(block)
        self.dt = dt

    def forward(self, s):
        for block in self.layers:
            s = s + self.dt * block["outer"](torch.relu(block["inner"](s)))
        return s


def networks(seed: int = 0, dtype=torch.float64) -> dict:
    return {"ReluResNet(width 6, hidden 10, depth 8, dt 0.3)": ReluResNet(seed=seed, dtype=dtype)}


ARCHITECTURE = hjsym.Architecture(SPEC, networks=networks)
