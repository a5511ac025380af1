"""The Elman RNN ``s' = tanh(W s + U x + b)`` (``torch.nn.RNN`` with tanh): one step of size h = 1 of
``ds/dt = tanh(W s + U x + b) - s``.
"""

from ..networks.control import rnn_references
from ..spec.registry import Architecture
from ..spec.spec import Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="rnn",
    title="Elman RNN (tanh)",
    family="control",
    summary="$s^+ = \\tanh(W s + U x + b)$: an Euler step of size $h = 1$ of the leaky field $\\tanh(W s + U x + b) - s$. "
    "Its costate recursion is backprop through time.",
    state="s",
    symbols=(
        Scalar("h", doc="step size (1 for torch.nn.RNN)"),
        Tensor("x", ("input",), doc="input $x_k$ at step $k$"),
        Tensor("W", ("dim", "dim"), doc="recurrent weight (weight_hh)"),
        Tensor("U", ("dim", "input"), doc="input weight (weight_ih)"),
        Tensor("b", ("dim",), doc="bias (bias_ih + bias_hh)"),
    ),
    dynamics=Dynamics(field="tanh(W @ s + U @ x + b) - s", controls=("W", "U", "b"), step_size="h", inputs=("x",)),
    references=("hjdl2026", "pontryagin1962", "lecun1988", "chen2018"),
)

ARCHITECTURE = Architecture(SPEC, networks=rnn_references, position=120)
