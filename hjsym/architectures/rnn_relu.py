"""The Elman RNN with ReLU, ``s' = relu(W s + U x + b)`` (``torch.nn.RNN(nonlinearity='relu')``): one step of size
h = 1 of ``ds/dt = relu(W s + U x + b) - s``, a piecewise-linear field (derivatives almost everywhere).
"""

import dataclasses

import torch

from ..networks.control import rnn_references
from ..spec.registry import Architecture
from .rnn import SPEC as RNN

SPEC = dataclasses.replace(
    RNN,
    name="rnn-relu",
    title="Elman RNN (ReLU)",
    summary="$s^+ = \\mathrm{relu}(W s + U x + b)$: an Euler step of size $h = 1$ of the piecewise-linear field "
    "$\\mathrm{relu}(W s + U x + b) - s$. Its costate recursion is backprop through time, with the subgradient "
    "$\\mathrm{relu}'(0) = 0$ at the kinks.",
    dynamics=dataclasses.replace(RNN.dynamics, field="relu(W @ s + U @ x + b) - s"),
)


def references(seed: int = 0, dtype=torch.float64):
    """torch.nn.RNN(nonlinearity='relu') in the four recurrent variants, input 6, hidden 16."""
    return rnn_references(seed, dtype, nonlinearity="relu")


ARCHITECTURE = Architecture(SPEC, networks=references, position=125)
