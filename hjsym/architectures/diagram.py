"""The commutative diagram of the exact family, checked on a trained log-sum-exp layer.

The four corners (smooth network ``f_eps``, tropical network ``f_0``, viscous HJ ``u_eps``,
Hopf-Lax ``u_0``), the convex (entropy-regularised) view, and the corners with continuous
initial data sampled at ``N'`` points; the maps between them are exact identities, eps -> 0
limits with the rate ``eps log N``, the variational duality, and ``N' -> inf`` quadratures.
The spec is the LSE layer's with the convex-view and semigroup passes.
"""

import dataclasses

from ..spec.registry import Architecture
from .lse import SPEC as LSE_SPEC

SPEC = dataclasses.replace(
    LSE_SPEC,
    name="diagram",
    title="The commutative diagram (network, tropical, viscous, Hopf-Lax, convex)",
    summary="Network <-> viscous HJ (exact), tropical <-> Hopf-Lax (exact), eps -> 0 on both sides (rate eps log N), the "
    "entropy-regularised convex view, and N' -> inf quadrature of continuous data: every path between two corners agrees "
    "up to the sum of its derived bounds.",
    passes=("convex-view", "semigroup"),
    references=LSE_SPEC.references + ("maclagan2015", "cuturi2013"),
)

ARCHITECTURE = Architecture(SPEC, suite="hjsym.checks.suites.diagram:run", figures="hjsym.checks.suites.diagram:figures", position=50)
