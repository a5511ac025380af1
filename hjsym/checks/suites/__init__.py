"""The check suites, chosen from the spec: the first suite whose ``applies(spec)`` holds checks it.

* :mod:`~hjsym.checks.suites.control`: the control (Pontryagin) family, any dynamics;
* :mod:`~hjsym.checks.suites.attention`: an LSE layer with ``values`` (attention);
* :mod:`~hjsym.checks.suites.activations`: an LSE layer with ``activations`` (MLPs);
* :mod:`~hjsym.checks.suites.diagram`: an LSE layer with the convex-view and semigroup passes;
* :mod:`~hjsym.checks.suites.lse`: any other LSE layer with atomic initial data (with a diffusion
  matrix too): a new exact-family architecture of this kind needs a spec, no suite;
* the variational family: :mod:`~hjsym.checks.suites.variational` (a functional of curves: the
  extremal against a direct minimisation), :mod:`~hjsym.checks.suites.gradient_flow` (a free
  energy: its Gibbs equilibrium on a trained LSE layer's atoms) and
  :mod:`~hjsym.checks.suites.mean_field` (a two-layer network in the mean-field scaling: the
  velocity field against autograd).

An architecture adds the checks of its own science (``Architecture.checks``, e.g. the LQR pieces
of the SSM) to its suite's.
"""

from __future__ import annotations

from .activations import SUITE as ACTIVATIONS
from .attention import SUITE as ATTENTION
from .control import SUITE as CONTROL
from .diagram import SUITE as DIAGRAM
from .gradient_flow import SUITE as GRADIENT_FLOW
from .lse import SUITE as LSE
from .mean_field import SUITE as MEAN_FIELD
from .variational import SUITE as VARIATIONAL

__all__ = ["SUITES", "suite_for"]

#: Most specific first.
SUITES = (CONTROL, VARIATIONAL, GRADIENT_FLOW, MEAN_FIELD, ATTENTION, ACTIVATIONS, DIAGRAM, LSE)


def suite_for(spec):
    """The suite that checks ``spec`` (None when no suite applies)."""
    return next((s for s in SUITES if s.applies(spec)), None)
