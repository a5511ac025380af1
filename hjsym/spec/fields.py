"""The parts of a spec: symbols, initial data, the network, the dynamics, claims and activations.

Plain frozen dataclasses of strings and tuples (no SymPy): what :class:`~hjsym.Spec` is made of.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Scalar", "Tensor", "AtomicData", "Network", "Dynamics", "Training", "Claim", "Activation", "FAMILIES"]

FAMILIES = ("exact", "control")


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
