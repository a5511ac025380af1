"""The commutative diagram of the exact family, checked on a trained log-sum-exp layer.

The four corners (smooth network ``f_eps``, tropical network ``f_0``, viscous HJ ``u_eps``,
Hopf-Lax ``u_0``), the convex (entropy-regularised) view, and the corners with continuous
initial data sampled at ``N'`` points; the maps between them are exact identities, eps -> 0
limits with the rate ``eps log N``, the variational duality, and ``N' -> inf`` quadratures.
"""

from .._registry import Architecture
from .._spec import AtomicData, Network, Scalar, Spec, Tensor

SPEC = Spec(
    name="diagram",
    title="The commutative diagram (network, tropical, viscous, Hopf-Lax, convex)",
    family="exact",
    summary="Network <-> viscous HJ (exact), tropical <-> Hopf-Lax (exact), eps -> 0 on both sides (rate eps log N), the "
    "entropy-regularised convex view, and N' -> inf quadrature of continuous data: every path between two corners agrees "
    "up to the sum of its derived bounds.",
    symbols=(
        Scalar("eps", latex=r"\varepsilon", doc="temperature = viscosity = entropic regularisation"),
        Tensor("W", ("atom", "dim"), doc="slopes (nn.Linear weight)"),
        Tensor("b", ("atom",), doc="offsets (nn.Linear bias)"),
        Tensor("y", ("atom", "dim"), doc="atom positions of the initial data"),
        Tensor("g", ("atom",), doc="initial values at the atoms"),
    ),
    hamiltonian="norm2(p)",
    viscosity="eps",
    initial_data=AtomicData(points="y", values="g"),
    network=Network(output="eps * lse((dot(W, x) + b) / eps)", weights=("W", "b")),
    passes=("convex-view", "semigroup"),
    references=("hjdl2026", "hopf1950", "cole1951", "evans2010", "maclagan2015", "cuturi2013"),
)

ARCHITECTURE = Architecture(SPEC, suite="hjsym.suites.diagram:run", figures="hjsym.suites.diagram:figures", position=50)
