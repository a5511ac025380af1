"""The commutative diagram of the exact family, checked on a trained log-sum-exp layer.

The four corners (smooth network ``f_eps``, tropical network ``f_0``, viscous HJ ``u_eps``,
Hopf-Lax ``u_0``), the convex (entropy-regularised) view, and the corners with continuous
initial data sampled at ``N'`` points; the maps between them are exact identities, eps -> 0
limits with the rate ``eps log N``, the variational duality, and ``N' -> inf`` quadratures.
The spec is the LSE layer's with the convex-view and semigroup passes.
"""

import dataclasses

import torch

from ..networks.lse import train_lse_layer
from ..spec.registry import Architecture, KeyResult
from .lse import SPEC as LSE_SPEC

SPEC = dataclasses.replace(
    LSE_SPEC,
    name="diagram",
    title="The commutative diagram (network, tropical, viscous, Hopf-Lax, convex)",
    summary=r"Network $\leftrightarrow$ viscous HJ (exact), tropical $\leftrightarrow$ Hopf-Lax (exact), $\varepsilon \to 0$ on both sides (rate $\varepsilon \log N$), the "
    r"entropy-regularised convex view, and $N' \to \infty$ quadrature of continuous data: every path between two corners agrees "
    "up to the sum of its derived bounds.",
    passes=("convex-view", "semigroup"),
    references=LSE_SPEC.references + ("maclagan2015", "cuturi2013"),
)


def diagram_references(seed: int = 0, dtype=torch.float64) -> dict:
    """The trained LSE layer of ``lse`` with d = 2 (N = 16, eps = 0.5, 300 Adam steps)."""
    return {"LSELayer d = 2": train_lse_layer(2, seed=seed * 100 + 2, dtype=dtype)}


# the page leads with the diagram itself, checked along every path
ARCHITECTURE = Architecture(SPEC, networks=diagram_references, position=50, key_result=KeyResult("diagram:1", "paths"))
