"""The Fokker-Planck equation as the Wasserstein gradient flow of the free energy ``F[rho] = int V rho + eps int rho log rho``.

Jordan, Kinderlehrer & Otto (1998): the steepest descent of ``F`` in the 2-Wasserstein metric, the limit of
the JKO scheme, is ``d_t rho = d_x(rho V') + eps d_xx rho``; it dissipates ``F`` at the rate
``int rho |d_x dF/drho|^2`` and stops at the Gibbs density ``exp(-V/eps)/Z``. On atoms with potentials
``V_j = -(W_j . x + b_j)`` that equilibrium is the log-sum-exp layer's attribution weights ``pi``. With the
quadratic potential ``k x^2/2`` (an Ornstein-Uhlenbeck drift) the derivation solves the flow in closed
form from a Gaussian and takes one JKO step of a Gaussian exactly; the checks compare those with a
finite-volume solver and a particle JKO scheme.
"""

from ..checks.suites.gradient_flow import FOKKER_PLANCK_CHECKS
from ..networks.lse import lse_references
from ..spec.registry import Architecture
from ..spec.spec import GradientFlow, Scalar, Spec

SPEC = Spec(
    name="fokker-planck",
    title="Fokker-Planck equation (Wasserstein gradient flow)",
    family="variational",
    summary="F[rho] = int V rho + eps rho log rho: first variation, the Wasserstein gradient flow d_t rho = d_x(rho V') + eps d_xx rho, "
    "the Gibbs equilibrium (an LSE layer's pi on its atoms), the dissipation identity, the Ornstein-Uhlenbeck solution and the JKO step.",
    symbols=(
        Scalar("x", positive=False, doc="position"),
        Scalar("rho", latex=r"\rho", doc="density, > 0"),
        Scalar("V", positive=False, doc="potential V(x)"),
        Scalar("eps", latex=r"\varepsilon", doc="temperature of the entropy (diffusion coefficient)"),
        Scalar("k", positive=False, doc="stiffness of the example potential k x^2/2 (0: the heat equation)"),
        Scalar("m0", positive=False, latex="m_0", doc="initial mean"),
        Scalar("v0", latex="v_0", doc="initial variance"),
        Scalar("tau", latex=r"\tau", doc="JKO time step"),
    ),
    gradient_flow=GradientFlow("V * rho + eps * rho * log(rho)", density="rho", variable="x", potential="V", example="k * x**2 / 2",
                               initial=("m0", "v0"), step="tau"),
    references=("jko1998", "otto2001", "villani2009", "ambrosio2008", "hjdl2026"),
)

ARCHITECTURE = Architecture(SPEC, networks=lse_references, position=210, checks=FOKKER_PLANCK_CHECKS)
