"""The declarative architecture spec.

A :class:`Spec` says, in plain-mathematics strings, what an architecture is: its symbols, the
Hamiltonian ``H(x, p)``, the viscosity, optionally atomic initial data, the network it claims to
be, and (for the control family) its dynamics. :meth:`Spec.validate` parses every string safely
(:mod:`hjsym.spec.parse`), checks that every name is declared, that every declared name is used and
that each field has the right shape, and returns the ``SymbolicSpec`` the derivation works on
(:mod:`hjsym.spec.validate`). This module itself needs no SymPy, so reading a spec is cheap.

Example (the whole LSE layer; see ``hjsym/architectures/lse.py``)::

    Spec(
        name="lse",
        title="Log-sum-exp layer",
        family="exact",
        symbols=(Scalar("eps", latex=r"\\varepsilon"), Tensor("W", ("atom", "dim")),
                 Tensor("b", ("atom",)), Tensor("y", ("atom", "dim")), Tensor("g", ("atom",))),
        hamiltonian="norm2(p)",
        viscosity="eps",
        initial_data=AtomicData(points="y", values="g"),
        network=Network(output="eps * lse((dot(W, x) + b) / eps)", weights=("W", "b")),
    )
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

__all__ = ["Scalar", "Tensor", "AtomicData", "Network", "Dynamics", "Claim", "Activation", "Spec", "FAMILIES", "PASSES"]

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
    """

    field: str | tuple
    controls: tuple[str, ...]
    step_size: str = "h"
    inputs: tuple[str, ...] = ()
    definitions: tuple[tuple[str, ...], ...] = ()
    output: str | None = None
    noise: str | None = None
    claims: tuple = ()

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


#: Optional derivation passes a spec may ask for (see :mod:`hjsym.derivation.gibbs`).
PASSES = ("entropy", "characteristic-step", "convex-view", "semigroup")


@dataclass(frozen=True)
class Spec:
    """Declarative description of one architecture (see the module docstring)."""

    name: str
    title: str
    family: str
    symbols: tuple
    hamiltonian: str | None = None
    viscosity: str = "0"
    summary: str = ""
    state: str = "x"
    costate: str = "p"
    time: str = "t"
    diffusion: str | None = None
    initial_data: AtomicData | None = None
    network: Network | None = None
    dynamics: Dynamics | None = None
    references: tuple[str, ...] = field(default=())
    input_map: str | None = None  # a (d, d) tensor L: the network applies its layer to L x
    values: str | None = None  # a tensor over ("atom", ...) averaged with the Gibbs weights (attention's V)
    activations: tuple = field(default=())  # Activation(...) entries to classify
    passes: tuple[str, ...] = field(default=())  # names from PASSES

    def key(self) -> str:
        """A stable hash of everything the derivation reads."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def validate(self):
        """Parse and check every field; raise one :class:`~hjsym.SpecError` listing all problems.

        Returns the ``SymbolicSpec`` (SymPy symbols and parsed expressions) derivations use.
        """
        from .validate import validate_spec

        return validate_spec(self)
