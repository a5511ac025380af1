"""The anisotropic log-sum-exp layer: ``H(p) = p^T A p`` with A symmetric positive definite.

The network is an LSE layer applied after a learned linear map, ``f(x) = eps LSE((V L x + b)/eps)``,
written with its effective weights ``W = V L``. The derivation finds the Hopf-Cole transform of
``u_t + p^T A p = eps tr(A Hess u)`` (the heat equation ``w_t = eps tr(A Hess w)``), the kernel
with metric ``A^{-1}``, the parameter map ``W_j = A^{-1} y_j / (2t)``, the identity
``f_eps + u_eps = x^T A^{-1} x / (4t)``, and that the map ``x -> L x`` induces ``A = (L^T L)^{-1}``.
"""

from ..networks.lse import aniso_references
from ..spec.registry import Architecture
from ..spec.spec import AtomicData, Network, Scalar, Spec, Tensor

SPEC = Spec(
    name="lse-aniso",
    title="Anisotropic log-sum-exp layer",
    family="exact",
    summary=r"A log-sum-exp layer after a learned linear map $x \mapsto Lx$: exactly the Hopf-Cole solution of "
    r"$u_t + \nabla u^\top A \nabla u = \varepsilon\, \mathrm{tr}(A \nabla^2 u)$ with $A = (L^\top L)^{-1}$, whose kernel has metric $A^{-1} = L^\top L$.",
    symbols=(
        Scalar("eps", latex=r"\varepsilon", doc="temperature = viscosity"),
        Tensor("A", ("dim", "dim"), symmetric=True, positive_definite=True, doc="diffusion matrix (symmetric positive definite)"),
        Tensor("L", ("dim", "dim"), doc="the learned linear map applied before the layer"),
        Tensor("W", ("atom", "dim"), doc="effective slopes $VL$ of the layer"),
        Tensor("b", ("atom",), doc="offsets (the layer's bias)"),
        Tensor("y", ("atom", "dim"), doc="atom positions of the initial data"),
        Tensor("g", ("atom",), doc="initial values at the atoms"),
    ),
    hamiltonian="quad(p, A)",
    viscosity="eps",
    diffusion="A",
    input_map="L",
    initial_data=AtomicData(points="y", values="g"),
    network=Network(output="eps * lse((dot(W, x) + b) / eps)", weights=("W", "b")),
    references=("hjdl2026", "hopf1950", "cole1951", "evans2010"),
)

ARCHITECTURE = Architecture(SPEC, networks=aniso_references, position=20)
