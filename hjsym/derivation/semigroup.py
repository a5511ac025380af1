"""The heat semigroup: ``K_s * K_t = K_{t+s}``, so depth composes Hopf-Cole steps (requested pass ``semigroup``).

The convolution of two kernels is a Gaussian integral, computed by completing the square; the
Hopf-Cole solution of time ``t + s`` is then one heat step of time ``s`` applied to the solution
of time ``t``. Generates ``log_kernel`` for the numerical step.
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.latex import Tex, eq
from .gibbs import uses_present
from .passes import register

__all__ = ["semigroup"]


@register("semigroup", order=230, requested=True)
def semigroup(d):
    kappa = d.results.get("kernel_diffusivity")
    if kappa is None or d.A is not None:
        d.add("semigroup", "Semigroup of the heat kernel", (), "needs the isotropic heat kernel", (), "failed")
        return
    v, zeta = sp.Symbol("v", real=True), sp.Symbol("zeta", real=True)
    t, s = d.t, sp.Symbol("s", positive=True)

    def K1(w, tau):
        return (4 * sp.pi * kappa * tau) ** sp.Rational(-1, 2) * sp.exp(-(w**2) / (4 * kappa * tau))

    # (K_s * K_t)(v) = int K_s(v - zeta) K_t(zeta) dzeta: the exponent is a quadratic -a zeta^2 + b zeta + c,
    # and int exp(-a zeta^2 + b zeta + c) = sqrt(pi/a) exp(b^2/(4a) + c) (a > 0)
    poly = sp.Poly(sp.expand(-((v - zeta) ** 2) / (4 * kappa * s) - zeta**2 / (4 * kappa * t)), zeta)
    a, b, c = (-poly.coeff_monomial(zeta**2), poly.coeff_monomial(zeta), poly.coeff_monomial(1))
    conv = K1(0, s) * K1(0, t) * sp.sqrt(sp.pi / a) * sp.exp(b**2 / (4 * a) + c)
    residual = sp.simplify(sp.expand_log(sp.log(conv) - sp.log(K1(v, t + s)), force=True))
    d.fn("log_kernel", d.results["log_kernel"], "log of the heat kernel K(x, t) (normalised Gaussian)")
    ut = sp.Function("u")
    xs, zs = sp.Symbol("x"), sp.Symbol("z")
    d.add(
        "semigroup",
        "Depth as composition: the heat semigroup",
        (eq(Tex(r"(K_s * K_t)(v)"), sp.Integral(K1(v - zeta, s) * K1(zeta, t), (zeta, -sp.oo, sp.oo))),
         eq(Tex(r"\log (K_s * K_t)(v) - \log K_{t+s}(v)"), residual),
         eq(ut(xs, t + s), -d.nu * sp.log(sp.Integral(sp.Function("K")(xs - zs, s) * sp.exp(-ut(zs, t) / d.nu), zs)))),
        r"the convolution of two 1-D kernels is a Gaussian integral in $\zeta$ (complete the square), and it equals the kernel "
        r"of time $t + s$: $K_s * K_t = K_{t+s}$ (the $d$-dimensional kernel is a product of 1-D ones); $w = e^{-u/\varepsilon}$ evolves by "
        r"convolution, so one step of time "
        r"$t + s$ is a step of $s$ after a step of $t$ (for the normalised solution $u_{\mathrm{exact}}$)",
        uses_present(d, "heat-kernel", "atomic-solution"),
        "verified" if residual == 0 else "failed",
    )
