"""The declarative architecture spec.

A :class:`Spec` says, in plain-mathematics strings, what an architecture is: its symbols, the
Hamiltonian ``H(x, p)``, the viscosity, optionally atomic initial data, the network it claims to
be, (for the control family) its dynamics and (for the variational family) its functional. :meth:`Spec.validate` parses every string safely
(:mod:`hjsym.spec.parse`), checks that every name is declared, that every declared name is used and
that each field has the right shape, and returns the ``SymbolicSpec`` the derivation works on
(:mod:`hjsym.spec.validate`). Neither this module nor :mod:`hjsym.spec.fields` imports SymPy, so
reading a spec is cheap; :meth:`Spec.validate` imports the parser when it is called.

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

from .._errors import SpecError
from .fields import (FAMILIES, Activation, AtomicData, Claim, Dynamics, Functional, GradientFlow, MeanField, Network, Scalar, Tensor,
                     Training)

__all__ = ["Scalar", "Tensor", "AtomicData", "Network", "Dynamics", "Training", "Claim", "Activation", "Functional", "GradientFlow",
           "MeanField", "Spec", "FAMILIES"]

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
    state: str = "x"  # or ("y", "z"): a state in parts, one per field of the dynamics
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
    passes: tuple[str, ...] = field(default=())  # optional derivation passes (hjsym.derivation.passes)
    functional: Functional | None = None  # variational family: J[y] = int F(x, y, y') dx
    gradient_flow: GradientFlow | None = None  # variational family: the Wasserstein gradient flow of a free energy
    mean_field: MeanField | None = None  # variational family: a two-layer network as a functional of its neuron measure

    @property
    def variational(self):
        """The variational part of the spec (one of ``functional``, ``gradient_flow``, ``mean_field``), or None."""
        return self.functional or self.gradient_flow or self.mean_field

    def __post_init__(self):
        # state=("y", "z") declares a state in parts: the names of the dynamics' fields, in order; the first is the
        # default state (as Dynamics(field=(("y", ...), ("z", ...))) alone would make it)
        if isinstance(self.state, (tuple, list)):
            parts = tuple(self.state)
            fields = self.dynamics.field if self.dynamics is not None else None
            names = tuple(n for n, _ in fields) if isinstance(fields, (tuple, list)) else None
            if not parts or not all(isinstance(n, str) for n in parts) or names != parts:
                raise SpecError(f"spec {self.name!r}: state={parts!r} does not name the parts of the dynamics' field {names!r}",
                                "give dynamics=Dynamics(field=((part, F_part), ...)) with the same names, in the same order")
            object.__setattr__(self, "state", parts[0])

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
