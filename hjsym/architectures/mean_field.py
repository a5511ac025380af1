"""A two-layer network in the mean-field scaling, ``f(x) = (1/m) sum_i a_i sigma(w_i . x + b_i)``, as a functional of its neuron measure.

Mei, Montanari & Nguyen (2018); Chizat & Bach (2018); Rotskoff & Vanden-Eijnden (2018): the network is
``int a sigma(w . x + b) drho(a, w, b)`` for the empirical measure of its neurons, the loss a functional of
that measure, and gradient descent with step ``m eta`` moves every neuron with the velocity field
``-grad_theta dR/drho``: the particle discretisation of the continuity equation
``d_t rho = div(rho grad_theta dR/drho)``. The checks compare the derived velocity at every neuron with
``-m`` times autograd through real ``nn.Linear`` networks (tanh and ReLU).
"""

from ..networks.mean_field import mean_field_references
from ..spec.registry import Architecture
from ..spec.spec import Activation, MeanField, Scalar, Spec, Tensor

SPEC = Spec(
    name="mean-field",
    title="Two-layer network in the mean-field limit",
    family="variational",
    summary="f = (1/m) sum a sigma(w.x + b) = int a sigma(w.x + b) drho: the loss as a functional of the neuron measure, its first "
    "variation, the velocity field and the continuity equation; a neuron's gradient is 1/m times the velocity there.",
    symbols=(
        Scalar("a", positive=False, doc="output weight of a neuron"),
        Tensor("w", ("dim",), doc="input weights of a neuron"),
        Scalar("b", positive=False, doc="bias of a neuron"),
        Scalar("z", positive=False, doc="pre-activation"),
        Scalar("f", positive=False, doc="network output at a sample"),
        Scalar("y", positive=False, doc="target at a sample"),
    ),
    mean_field=MeanField("dot(w, x) + b", "a", (Activation("tanh", "tanh(z)", torch="nn.Tanh()"), Activation("relu", "max(z, 0)", torch="nn.ReLU()")),
                         "(f - y)**2 / 2", parameters=("a", "w", "b"), output="f", target="y"),
    references=("mei2018", "chizat2018", "rotskoff2018", "sirignano2020", "jacot2018"),
)

ARCHITECTURE = Architecture(SPEC, networks=mean_field_references, position=220)
