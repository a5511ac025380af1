"""The check suites, chosen from the spec: the first suite whose ``applies(spec)`` holds checks it.

* :mod:`~hjsym.checks.suites.control`: the control (Pontryagin) family, any dynamics;
* :mod:`~hjsym.checks.suites.attention`: an LSE layer with ``values`` (attention);
* :mod:`~hjsym.checks.suites.activations`: an LSE layer with ``activations`` (MLPs);
* :mod:`~hjsym.checks.suites.diagram`: an LSE layer with the convex-view and semigroup passes;
* :mod:`~hjsym.checks.suites.lse`: any other LSE layer with atomic initial data (with a diffusion
  matrix too): a new exact-family architecture of this kind needs a spec, no suite.

An architecture adds the checks of its own science (``Architecture.checks``, e.g. the LQR pieces
of the SSM) to its suite's.
"""

from __future__ import annotations

from .activations import SUITE as ACTIVATIONS
from .attention import SUITE as ATTENTION
from .control import SUITE as CONTROL
from .diagram import SUITE as DIAGRAM
from .lse import SUITE as LSE

__all__ = ["SUITES", "suite_for"]

#: Most specific first.
SUITES = (CONTROL, ATTENTION, ACTIVATIONS, DIAGRAM, LSE)


def suite_for(spec):
    """The suite that checks ``spec`` (None when no suite applies)."""
    return next((s for s in SUITES if s.applies(spec)), None)
