"""The parts of a spec: symbols, initial data, the network, the dynamics, claims, activations and
the variational family's functionals (a functional of a curve, a free energy of a density, the
loss of a two-layer network as a functional of its neuron measure).

Plain frozen dataclasses of strings and tuples (no SymPy): what :class:`~hjsym.Spec` is made of.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Scalar", "Tensor", "AtomicData", "Network", "Dynamics", "Training", "Claim", "Activation", "Functional", "GradientFlow",
           "MeanField", "FAMILIES"]

FAMILIES = ("exact", "control", "variational")


@dataclass(frozen=True)
class Scalar:
    """A scalar parameter such as ``eps`` or ``t``; ``positive`` is checked on every call."""

    name: str
    positive: bool = True
    latex: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class Tensor:
    """A tensor with named axes (``("atom", "dim")`` for a weight matrix ``W_{ji}``).

    ``symmetric``/``positive_definite`` are assumptions on a ``(d, d)`` matrix that the
    derivation may use; checks re-test them on the real weights.
    """

    name: str
    axes: tuple[str, ...]
    latex: str | None = None
    doc: str = ""
    symmetric: bool = False
    positive_definite: bool = False


@dataclass(frozen=True)
class AtomicData:
    """Initial data ``g`` concentrated on atoms: points ``y_j`` (N, d) and values ``g_j`` (N,)."""

    points: str = "y"
    values: str = "g"


@dataclass(frozen=True)
class Network:
    """The network the architecture claims to be: its output expression and weight names."""

    output: str
    weights: tuple[str, ...]
    doc: str = ""


@dataclass(frozen=True)
class Claim:
    """A structural identity ``lhs == rhs`` that the derivation verifies (difference -> 0).

    Both sides are vector (or scalar) expressions in the names of the dynamics: states, inputs,
    controls, definitions, and ``F`` (``F_<state>`` for a state with several parts), the field.
    """

    title: str
    lhs: str
    rhs: str
    reason: str = ""
    kind: str = "structure"  # "structure" (enters the classification statement) or "convention" (a documented form)


@dataclass(frozen=True)
class Training:
    """Control family: training the network as an optimal control problem.

    The cost of a batch of samples ``n`` is ``J = sum_n Phi(s_K^n) + (rho/2) h sum_k sum_theta |theta_k|^2``:
    the terminal loss ``Phi(s) = |s - y|^2 / 2`` against one target ``y`` per sample and an L2 penalty
    on every control of every step (weights per step, as a residual network's blocks).

    Attributes:
        penalty: a declared positive scalar ``rho``, the strength of the L2 penalty.
        target: a declared tensor over the state dimension, the target ``y`` of each sample.
    """

    penalty: str
    target: str


@dataclass(frozen=True)
class Dynamics:
    """Control family: the step ``s' = s + h F(s, x, theta)``.

    Attributes:
        field: ``F``, a vector expression over the state dimension (the state is ``Spec.state``),
            or ``(("c", F_c), ("h", F_h))`` for a state with several parts (each a vector over
            the state dimension, with costate ``p_c``, ``p_h``).
        controls: the parameters theta whose gradients the costate yields (``W``, ``b``, ...).
        step_size: the declared scalar ``h`` (1 for recurrent cells).
        inputs: the per-step inputs ``x_k`` (declared tensors over the ``"input"`` axis).
        definitions: named intermediate quantities (gates), ``(name, expression)`` or
            ``(name, expression, latex)`` in order; each may use states, inputs, controls and
            earlier definitions. They are the nodes of the chain rule that turns ``dH/ds`` into
            the costate recursion.
        output: the state part a layer passes on and returns (default: the first).
        noise: a declared scalar ``sigma``: Gaussian noise ``sigma sqrt(h) xi`` per step, which
            gives the value function the viscosity ``sigma^2/2``.
        claims: structural identities (:class:`Claim`) the derivation verifies.
        training: training as control (:class:`Training`): the penalty and the target of the
            training cost, whose dynamic-programming recursion the ``training-hjb`` pass derives.
    """

    field: str | tuple
    controls: tuple[str, ...]
    step_size: str = "h"
    inputs: tuple[str, ...] = ()
    definitions: tuple[tuple[str, ...], ...] = ()
    output: str | None = None
    noise: str | None = None
    claims: tuple = ()
    training: Training | None = None

    def state_fields(self, default_state: str) -> tuple[tuple[str, str], ...]:
        """``((state, F_state), ...)``: the single-field form names the spec's state."""
        if isinstance(self.field, str):
            return ((default_state, self.field),)
        return tuple((str(n), f) for n, f in self.field)


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``sigma_eps(z)`` to classify (exact-family specs).

    ``output`` is an expression in ``variable`` (declared as a real ``Scalar``) and the
    temperature; ``torch`` names the module it corresponds to (shown in reports, e.g.
    ``"nn.Softplus(beta=1/eps)"``).
    """

    name: str
    output: str
    variable: str = "z"
    torch: str = ""


# ----------------------------------------------------------------------------- the variational family (seed 004)
@dataclass(frozen=True)
class Functional:
    """A functional of curves ``J[y] = int F(x, y, y') dx`` (an action ``S[q] = int L(t, q, qdot) dt``).

    ``integrand`` is ``F`` in the declared scalars ``variable`` (``x``), the unknown ``y`` and its
    derivative (``unknowns = (("y", "yp"),)``: each pair names a function and its derivative, all
    declared as real :class:`Scalar`, ``positive`` where ``F`` needs it). The derivation gives its
    first variation, the Euler-Lagrange equation, the Beltrami identity (energy) when ``F`` does
    not depend on ``variable``, the Legendre transform, Hamilton's equations and the
    Hamilton-Jacobi equation. ``parametric = ("theta", "a")`` (a parameter and a positive
    constant, both declared scalars) asks for the extremal in parametric form from the Beltrami
    identity with ``y' = cot(theta/2)``, its constant written through ``a``.
    """

    integrand: str
    variable: str = "x"
    unknowns: tuple = (("y", "yp"),)
    parametric: tuple | None = None
    doc: str = ""


@dataclass(frozen=True)
class GradientFlow:
    """The Wasserstein gradient flow of a free energy ``F[rho] = int f(x, rho) dx`` in one space dimension.

    ``energy`` is ``f`` in the declared scalars ``variable`` (``x``), ``density`` (``rho``, declared
    positive), a ``potential`` (a declared scalar standing for a function ``V(x)``) and the spec's
    constants. The derivation gives the first variation ``dF/drho``, the velocity
    ``-d_x dF/drho``, the continuity equation ``d_t rho = d_x(rho d_x dF/drho)``, the equilibrium
    (``dF/drho`` constant), the dissipation identity and, for ``example = "k * x**2 / 2"`` (the
    potential's example, an Ornstein-Uhlenbeck drift), the closed-form Gaussian solution from an
    initial mean and variance (``initial``, declared scalars) and the exact JKO step of a Gaussian
    with time step ``step`` (a declared positive scalar).
    """

    energy: str
    density: str = "rho"
    variable: str = "x"
    potential: str = "V"
    example: str | None = None
    initial: tuple = ("m0", "v0")
    step: str = "tau"
    doc: str = ""


@dataclass(frozen=True)
class MeanField:
    """A two-layer network ``f(x) = (1/m) sum_i a_i sigma(w_i . x + b_i)`` as a functional of its neuron measure.

    ``preactivation`` (``"dot(w, x) + b"``) and ``readout`` (``"a"``) are one neuron's, in the
    spec's input ``x``, a weight vector over ``dim`` and scalars; ``activations`` are
    :class:`Activation` entries (``sigma(z)``, e.g. ``tanh(z)`` and ``max(z, 0)``); ``loss`` is the
    per-sample loss in the declared scalars ``output`` (``f``) and ``target`` (``y``);
    ``parameters`` name one neuron's parameters theta (``("a", "w", "b")``). The derivation gives
    the loss as a functional of the measure, its first variation, the velocity field
    ``-grad_theta dL/drho``, the continuity equation and the finite-width gradient
    ``dL/dtheta_i = (1/m) grad_theta dL/drho (theta_i)``.
    """

    preactivation: str
    readout: str
    activations: tuple
    loss: str
    parameters: tuple = ("a", "w", "b")
    output: str = "f"
    target: str = "y"
    doc: str = ""
