"""The commutative diagram of the exact family, as a networkx graph, and its derivation step.

Nodes (all at one temperature/viscosity eps, one PDE time T):

* ``f_eps`` the smooth network, ``f_0`` the tropical (max-plus) network,
* ``u_eps`` the viscous HJ solution (Hopf-Cole), ``u_0`` the inviscid one (Hopf-Lax),
* ``convex`` the entropy-regularised problem ``max_{pi in simplex} <pi, z> + eps Ent(pi)``,
* ``u_eps_h`` / ``u_0_h`` the same PDEs with continuous initial data (the solution at an earlier
  time ``t0``) sampled on a grid of ``N'`` points: the ``N' -> infinity`` quadrature corners.

Edges carry the map that transports a node's values to its neighbour (``q - v`` across an
exact identity, with ``q = |x|^2/(4T)``; the identity otherwise) and the derived bound on what
is left (0 for an identity; ``eps log N`` for the eps -> 0 limits; the quadrature bounds).
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.latex import Tex, eq
from .passes import register

__all__ = ["NODES", "EDGES", "diagram_graph", "POSITIONS", "diagram_step"]

#: node -> (label, meaning, LaTeX)
NODES = {
    "f_eps": ("f_ε", "smooth network (log-sum-exp layer)", r"f_{\varepsilon}"),
    "f_0": ("f_0", "tropical network (max-plus)", r"f_{0}"),
    "u_eps": ("u_ε", "viscous HJ (Hopf-Cole)", r"u_{\varepsilon}"),
    "u_0": ("u_0", "inviscid HJ (Hopf-Lax)", r"u_{0}"),
    "convex": ("C_ε", "entropy-regularised problem", r"C_{\varepsilon}"),
    "u_eps_h": ("u_ε^N'", "viscous HJ, data sampled at N' points", r"u_{\varepsilon}^{N'}"),
    "u_0_h": ("u_0^N'", "Hopf-Lax, data sampled at N' points", r"u_{0}^{N'}"),
}

#: (a, b, kind, map, bound): map "flip" is v -> q - v; bound names a derived expression
EDGES = (
    ("f_eps", "u_eps", "exact identity", "flip", "0"),
    ("f_0", "u_0", "exact identity (Hopf-Lax)", "flip", "0"),
    ("f_eps", "f_0", "eps -> 0 limit", "id", "eps log N"),
    ("u_eps", "u_0", "eps -> 0 limit", "id", "eps log N"),
    ("convex", "f_eps", "variational duality", "id", "0"),
    ("convex", "f_0", "eps -> 0 limit (linear programme)", "id", "eps log N"),
    ("u_eps_h", "u_eps", "N' -> inf quadrature", "id", "quadrature (spectral)"),
    ("u_0_h", "u_0", "N' -> inf quadrature", "id", "(1/t0 + 1/s) d h^2 / 16"),
    ("u_eps_h", "u_0_h", "eps -> 0 limit", "id", "eps log N + eps log N' + |c_eps|"),
)

#: drawing positions: the square in the middle, the convex view on the left, quadrature on the right
POSITIONS = {"f_eps": (0, 2), "f_0": (0, 0), "u_eps": (2, 2), "u_0": (2, 0), "convex": (-1.6, 1), "u_eps_h": (3.8, 2.6),
             "u_0_h": (3.8, -0.6)}


def diagram_graph():
    """The diagram as a ``networkx.Graph``: node attributes ``label``, ``meaning``; edge ``kind``, ``map``, ``bound``."""
    import networkx as nx

    g = nx.Graph()
    for n, (label, meaning, tex) in NODES.items():
        g.add_node(n, label=label, meaning=meaning, tex=tex, pos=POSITIONS[n])
    for a, b, kind, m, bnd in EDGES:
        g.add_edge(a, b, kind=kind, map=m, bound=bnd)
    return g


@register("diagram", order=250, when=lambda d: "convex-view" in d.sym.spec.passes)
def diagram_step(d):
    """The derivation step that states the diagram and the rate of each edge (``Spec.passes``: 'convex-view', 'semigroup')."""
    uses = ("identity", "tropical-limit", "tropical-bounds", "convex-view", "semigroup")
    if "tropical_bound" not in d.results or not all(d.has(u) for u in uses):
        return  # the diagram needs every edge's step (the spec asks for the convex-view and semigroup passes)
    rows = tuple(eq(Tex(NODES[a][2] + r" \;\longleftrightarrow\; " + NODES[b][2]), Tex(r"\text{" + kind.replace("->", "to") + "}"))
                 for a, b, kind, _, _ in EDGES)
    d.add(
        "diagram",
        "The commutative diagram",
        rows,
        r"edges from steps identity, tropical-limit, tropical-bounds, convex-view and semigroup; the $\varepsilon \to 0$ edges have the "
        rf"derived rate {d.math(d.results['tropical_bound'])} (one-sided), the identities rate 0; the quadrature corners solve "
        r"the same PDE from the solution at an earlier time sampled on a grid (the semigroup), with the Hopf-Lax grid error "
        r"$(1/t_0 + 1/s)\, d h^2/16$ (the minimised quadratic has Hessian $(1/(2 t_0) + 1/(2 s)) I$) and the $\varepsilon \to 0$ gap between the "
        r"sampled corners $\varepsilon \log N + \varepsilon \log N' + |c_\varepsilon|$ (two log-sum-exps and the normalisation $c_\varepsilon$). Every path between two "
        r"nodes transports values with the maps of its edges; it must land within the sum of its edges' bounds",
        uses,
        "stated",
    )
