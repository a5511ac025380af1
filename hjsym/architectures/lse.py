"""The log-sum-exp layer ``f_eps(x) = eps log sum_j exp((W_j . x + b_j) / eps)``.

Its Hamiltonian is ``H(p) = |p|^2`` with viscosity ``eps``; with atomic initial data
``(y_j, g_j)`` the Hopf-Cole solution ``u_eps`` satisfies ``f_eps + u_eps = |x|^2/(4t)`` under
the parameter map ``W_j = y_j/(2t)``, ``b_j = -g_j - |y_j|^2/(4t)`` (the paper's Theorem 4.1).
"""

from ..networks.lse import lse_references
from ..spec.registry import Architecture
from ..spec.spec import AtomicData, Network, Scalar, Spec, Tensor

SPEC = Spec(
    name="lse",
    title="Log-sum-exp layer",
    family="exact",
    summary=r"A linear layer followed by a log-sum-exp at temperature $\varepsilon$: exactly the Hopf-Cole solution "
    r"of $u_t + |\nabla u|^2 = \varepsilon \Delta u$ with atomic initial data.",
    symbols=(
        Scalar("eps", latex=r"\varepsilon", doc="temperature = viscosity"),
        Tensor("W", ("atom", "dim"), doc="slopes (the nn.Linear weight)"),
        Tensor("b", ("atom",), doc="offsets (nn.Linear bias)"),
        Tensor("y", ("atom", "dim"), doc="atom positions of the initial data"),
        Tensor("g", ("atom",), doc="initial values at the atoms"),
    ),
    hamiltonian="norm2(p)",
    viscosity="eps",
    initial_data=AtomicData(points="y", values="g"),
    network=Network(output="eps * lse((dot(W, x) + b) / eps)", weights=("W", "b")),
    references=("hjdl2026", "hopf1950", "cole1951", "evans2010"),
)

ARCHITECTURE = Architecture(SPEC, networks=lse_references, position=10)
