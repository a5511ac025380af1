"""The Elman RNN with ReLU, ``s' = relu(W s + U x + b)`` (``torch.nn.RNN(nonlinearity='relu')``): one step of size
h = 1 of ``ds/dt = relu(W s + U x + b) - s``, a piecewise-linear field (derivatives almost everywhere).
"""

from ..networks.control import rnn_references
from ..spec.registry import Architecture
from ..spec.spec import Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="rnn-relu",
    title="Elman RNN (ReLU)",
    family="control",
    summary="s' = relu(W s + U x + b): an Euler step of size h = 1 of the piecewise-linear field relu(W s + U x + b) - s. "
    "Its costate recursion is backprop through time, with the subgradient H(0) = 0 at the kinks.",
    state="s",
    symbols=(
        Scalar("h", doc="step size (1 for torch.nn.RNN)"),
        Tensor("x", ("input",), doc="input x_k at step k"),
        Tensor("W", ("dim", "dim"), doc="recurrent weight (weight_hh)"),
        Tensor("U", ("dim", "input"), doc="input weight (weight_ih)"),
        Tensor("b", ("dim",), doc="bias (bias_ih + bias_hh)"),
    ),
    dynamics=Dynamics(field="relu(W @ s + U @ x + b) - s", controls=("W", "U", "b"), step_size="h", inputs=("x",)),
    references=("hjdl2026", "pontryagin1962", "lecun1988", "chen2018"),
)


def references(seed: int = 0, dtype=None):
    """torch.nn.RNN(nonlinearity='relu') in the four recurrent variants, input 6, hidden 16."""
    import torch

    return rnn_references(seed, torch.float64 if dtype is None else dtype, nonlinearity="relu")


ARCHITECTURE = Architecture(SPEC, networks=references, position=125)
