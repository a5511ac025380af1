"""Softplus MLPs and the activation classes.

A softplus unit ``eps log(1 + exp((w.x + c)/eps))`` (torch's ``nn.Softplus(beta=1/eps)``) is the
log-sum-exp layer of the ``lse`` architecture with two atoms, ``(w, c)`` and ``(0, 0)``: one
Hamilton-Jacobi step, whose tropical limit is ReLU within ``eps log 2``. The spec's network is
that layer; the derivation finds the two atoms from the softplus itself and classifies the
other activations: sigmoid and tanh are gradients of two-atom log-sum-exps (the nabla-class),
ReLU is the max-plus step, SiLU and GELU are open (their symbolic gap is printed).
"""

from ..networks.mlp import activation_references
from ..spec.registry import Architecture, KeyResult
from ..spec.spec import Activation, AtomicData, Network, Scalar, Spec, Tensor

SPEC = Spec(
    name="softplus-mlp",
    title="Softplus MLP and the activation classes",
    family="exact",
    summary="Each softplus layer is one Hopf-Cole step (a two-atom log-sum-exp per unit); depth composes steps; "
    "sigmoid and tanh are gradients of log-sum-exps, ReLU is the Hopf-Lax limit, SiLU and GELU are open.",
    symbols=(
        Scalar("eps", latex=r"\varepsilon", doc="temperature = viscosity (nn.Softplus(beta=1/$\\varepsilon$))"),
        Tensor("W", ("atom", "dim"), doc="slopes of the unit's atoms (derived: $(w, 0)$ for softplus)"),
        Tensor("b", ("atom",), doc="offsets of the unit's atoms (derived: $(c, 0)$ for softplus)"),
        Tensor("y", ("atom", "dim"), doc="atom positions of the initial data"),
        Tensor("g", ("atom",), doc="initial values at the atoms"),
        Scalar("z", positive=False, doc="pre-activation"),
    ),
    hamiltonian="norm2(p)",
    viscosity="eps",
    initial_data=AtomicData(points="y", values="g"),
    network=Network(output="eps * lse((dot(W, x) + b) / eps)", weights=("W", "b")),
    activations=(
        Activation("softplus", "eps * softplus(z / eps)", torch="nn.Softplus(beta=1/eps, threshold=40)"),
        Activation("relu", "max(z, 0)", torch="nn.ReLU()"),
        Activation("sigmoid", "sigmoid(z / eps)", torch="nn.Sigmoid() (eps = 1)"),
        Activation("tanh", "tanh(z / eps)", torch="nn.Tanh() (eps = 1)"),
        Activation("silu", "z * sigmoid(z / eps)", torch="nn.SiLU() (eps = 1)"),
        Activation("gelu", "z * (1 + erf(z / (eps * sqrt(2)))) / 2", torch="nn.GELU() (eps = 1)"),
    ),
    passes=("semigroup",),
    references=("hjdl2026", "hopf1950", "cole1951", "evans2010", "maclagan2015"),
)

# the page leads with "a softplus unit is the two-atom LSE layer", checked on every real nn.Softplus unit
ARCHITECTURE = Architecture(SPEC, networks=activation_references, position=30, key_result=KeyResult("unit-softplus:1", "softplus_layers"))
