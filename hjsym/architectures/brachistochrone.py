"""The brachistochrone: the curve of fastest descent, ``T[y] = int sqrt((1 + y'^2) / (2 g y)) dx``.

A bead released at rest from the origin (``y`` pointing down) slides without friction to ``(x_B, y_B)``;
its speed is ``sqrt(2 g y)``. The derivation gives the Euler-Lagrange equation, the Beltrami identity
(no explicit ``x``), the cycloid ``x = a (theta - sin theta)``, ``y = a (1 - cos theta)`` from it, the
time ``theta sqrt(a/g)`` along it, the Legendre transform and the eikonal Hamilton-Jacobi equation
``S_x^2 + S_y^2 = 1/(2 g y)``; the ``free-particle`` pass connects the same machinery to the exact
family's Lagrangian ``|q|^2/4``. The checks minimise the discretised travel time of a real torch
functional (L-BFGS over the heights of an n-point path) and compare with the derived cycloid.
"""

from ..checks.suites.variational import BRACHISTOCHRONE_CHECKS
from ..networks.variational import brachistochrone_references
from ..spec.registry import Architecture
from ..spec.spec import Functional, Scalar, Spec

SPEC = Spec(
    name="brachistochrone",
    title="Brachistochrone (calculus of variations)",
    family="variational",
    summary="T[y] = int sqrt((1 + y'^2)/(2 g y)) dx: the Euler-Lagrange and Beltrami equations give the cycloid; the "
    "Legendre transform gives the eikonal Hamilton-Jacobi equation; checked against a direct minimisation in torch.",
    symbols=(
        Scalar("x", positive=False, doc="horizontal position (the variable of the functional)"),
        Scalar("y", doc="depth below the start (the unknown curve), > 0"),
        Scalar("yp", positive=False, latex="y'", doc="slope dy/dx of the curve"),
        Scalar("g", doc="gravitational acceleration"),
        Scalar("theta", positive=False, latex=r"\theta", doc="parameter of the cycloid (rolling angle, 0 at the start)"),
        Scalar("a", doc="radius of the rolling circle of the cycloid"),
    ),
    functional=Functional("sqrt((1 + yp**2) / (2 * g * y))", variable="x", unknowns=(("y", "yp"),), parametric=("theta", "a")),
    passes=("free-particle",),
    references=("bernoulli1696", "gelfand1963", "goldstein2002", "evans2010", "hjdl2026"),
)

ARCHITECTURE = Architecture(SPEC, networks=brachistochrone_references, position=200, checks=BRACHISTOCHRONE_CHECKS)
