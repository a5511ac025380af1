"""A residual MLP: ``s_{k+1} = s_k + h (W2_k tanh(W1_k s_k + b1_k) + b2_k)``, an explicit Euler
discretisation of ``ds/dt = F(s, theta(t))``; with Gaussian noise ``sigma sqrt(h) xi`` per block the
value function gains the viscosity ``sigma^2/2``.
"""

from ..checks.suites.control_exact import RESNET_CHECKS
from ..networks.control import resnet_references
from ..spec.registry import Architecture
from ..spec.spec import Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="resnet",
    title="Residual network (residual MLP)",
    family="control",
    summary="$s^+ = s + h\\,(W^{(2)} \\tanh(W^{(1)} s + b^{(1)}) + b^{(2)})$: an explicit Euler step of $ds/dt = F(s, \\theta(t))$; "
    "the costate recursion is backprop, the continuous limit a neural ODE.",
    state="s",
    symbols=(
        Scalar("h", doc="step size ($T$ / depth; 1 for a plain residual network)"),
        Scalar("sigma", positive=False, latex=r"\sigma", doc="noise scale per unit depth (0: deterministic)"),
        Tensor("W1", ("hidden", "dim"), latex=r"W^{(1)}", doc="first Linear weight of a block"),
        Tensor("b1", ("hidden",), latex=r"b^{(1)}", doc="first Linear bias"),
        Tensor("W2", ("dim", "hidden"), latex=r"W^{(2)}", doc="second Linear weight"),
        Tensor("b2", ("dim",), latex=r"b^{(2)}", doc="second Linear bias"),
    ),
    dynamics=Dynamics(field="W2 @ tanh(W1 @ s + b1) + b2", controls=("W1", "b1", "W2", "b2"), step_size="h", noise="sigma"),
    references=("hjdl2026", "pontryagin1962", "lecun1988", "e2017", "chen2018", "li2018"),
)

ARCHITECTURE = Architecture(SPEC, networks=resnet_references, position=110, checks=RESNET_CHECKS)
