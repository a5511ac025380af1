"""The control family's exact pieces, verified numerically (float64).

* ``continuous_depth`` (resnet): at fixed horizon ``T`` the discrete costate of a real residual
  MLP (torch.autograd, ``h = T/K``, block weights ``theta(kh)``) converges to the solution of the
  continuous costate ODE ``dp/dt = -d_s H_c`` (generated, integrated by RK4 on a fine grid); the
  fitted order must be 1 (within 0.1).
* ``kolmogorov_closed_form`` (resnet): the coefficient ODEs that the derivation obtained from
  the backward Kolmogorov equation by the quadratic ansatz, integrated by RK4, against the
  closed form of the linear-Gaussian case (the Gaussian law of the final state, by matrix
  exponentials).
* ``kolmogorov_monte_carlo`` (resnet): the real noisy module (identity activation, noise
  ``sigma sqrt(h) xi`` per block) sampled ``N_MC`` times; the closed-form value must lie in the
  Monte Carlo 99.9% confidence interval widened by the exact O(h) discretisation bias.
* ``lqr_finite_horizon`` (ssm): the optimal cost predicted by the Riccati equation derived from
  the HJB equation, integrated by RK4, against direct optimisation of the control sequence of
  the real SSM module (exact minimiser of the quadratic cost through the module's responses,
  at K = 128, 256, 512 steps, Richardson-extrapolated to dt -> 0).
* ``lqr_infinite_horizon`` (ssm): the steady state of the derived Riccati ODE against SciPy's
  continuous algebraic Riccati solution.
* ``lqr_dare`` (ssm): SciPy's discrete algebraic Riccati solution of the real module's
  zero-order-hold system (its matrices measured by running the module) converges to that
  steady state as dt -> 0; the extrapolated cost must agree and the fitted order be 1.

Each has a negative control that must fail (named in its details).
"""

from __future__ import annotations

import math

import torch

from ...networks.control import DiagonalSSM, ResidualMLP, read_control
from ...networks.perturb import perturb
from ...networks.training import seeded
from ..criteria import statistic
from ...ir.mutations import Mutation
from ..engine import Check
from ..formula import STATISTIC_DELTA, Custom, Mutate
from ..results import CheckResult

__all__ = ["RESNET_CHECKS", "SSM_CHECKS", "rk4", "fit_order", "richardson"]

N_MC = 20_000
Z_999 = 3.2905  # two-sided 99.9% normal quantile


# ----------------------------------------------------------------------------- numerics
def rk4(f, y0, t0: float, t1: float, n: int):
    """Classical RK4 for ``dy/dt = f(t, y)`` (``y`` a tuple of tensors) from t0 to t1 in n steps."""
    dt = (t1 - t0) / n
    y, t = tuple(y0), t0
    path = [y]
    for _ in range(n):
        k1 = f(t, y)
        k2 = f(t + dt / 2, tuple(a + dt / 2 * b for a, b in zip(y, k1)))
        k3 = f(t + dt / 2, tuple(a + dt / 2 * b for a, b in zip(y, k2)))
        k4 = f(t + dt, tuple(a + dt * b for a, b in zip(y, k3)))
        y = tuple(a + dt / 6 * (b1 + 2 * b2 + 2 * b3 + b4) for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4))
        t += dt
        path.append(y)
    return y, path


def fit_order(hs, errs) -> float:
    """Least-squares slope of log(err) against log(h)."""
    x = torch.log(torch.tensor(hs, dtype=torch.float64))
    y = torch.log(torch.tensor(errs, dtype=torch.float64))
    xm, ym = x.mean(), y.mean()
    return float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())


def richardson(values) -> float:
    """Extrapolate J(h), J(h/2), J(h/4) to h -> 0 assuming J = J0 + c1 h + c2 h^2 + O(h^3)."""
    a, b, c = values
    return (8 * c - 6 * b + a) / 3


def _result(name, title, err, tol, route_a, route_b, details, kind="statistic", criterion="") -> CheckResult:
    """A check whose tolerance is stated by the science (a discretisation order, a confidence interval), not by rounding."""
    passed = bool(math.isfinite(err) and err <= tol)
    margin = math.inf if err == 0 else float(tol) / float(err)
    return CheckResult(name, title, route_a, route_b, float(err), float(err), float(tol), passed, kind,
                       criterion or f"error <= {tol:.3g} (stated in the check)", details, {}, margin=margin, error=float(err))


def _relative(value: float, reference: float) -> float:
    """``|value - reference| / |reference|``; infinite when the reference is 0 and the value is not (a wrong formula whose
    optimal cost vanishes fails the check instead of dividing by zero)."""
    if reference == 0:
        return 0.0 if value == 0 else math.inf
    return abs(value - reference) / abs(reference)


def compare(name, title, a, b, tol, route_a="", route_b="", details=None) -> CheckResult:
    """Two results of different numerical methods agree within ``tol * max(1, max|B|)``: a tolerance stated by the
    methods' discretisation error (RK4 on a fine grid, a Riccati solver), not by rounding."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    scale = max(1.0, float(b.abs().max()))
    return statistic(name, title, a, b, tol * scale, route_a=route_a, route_b=route_b, details=details,
                     criterion=f"max|A - B| <= {tol:g} max(1, max|B|) (the methods' discretisation error, stated)")


def _negative(result: CheckResult, neg: CheckResult, what: str):
    margin = math.inf if neg.max_abs_err == 0 else neg.tolerance / neg.max_abs_err
    result.details["negative_control"] = {"perturbation": what, "max_abs_err": neg.max_abs_err, "passed": neg.passed, "margin": margin}
    return result


def _call(fn, **values):
    """A generated function by argument name, validated on its first call only (RK4 loops call it thousands of times)."""
    if id(fn) not in _VALIDATED:
        _VALIDATED.add(id(fn))
        return fn(**{a: values[a] for a in fn.arg_names})
    return fn.unchecked(**{a: values[a] for a in fn.arg_names})


_VALIDATED: set = set()


# ----------------------------------------------------------------------------- continuous depth
CD_WIDTH, CD_HIDDEN, CD_T = 6, 8, 1.0
CD_DEPTHS = (8, 16, 32, 64, 128, 256)
CD_FINE = 256
CD_OFFSET = 0.02  # negative control: a constant shift of b2 that does not vanish as h -> 0


def _cd_theta(seed):
    gen = torch.Generator().manual_seed(30_000 + seed)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    base = {"W1": r(CD_HIDDEN, CD_WIDTH) / math.sqrt(CD_WIDTH), "b1": r(CD_HIDDEN) * 0.5,
            "W2": r(CD_WIDTH, CD_HIDDEN) / math.sqrt(CD_HIDDEN), "b2": r(CD_WIDTH) * 0.5}
    slope = {n: 0.8 * r(*t.shape) / math.sqrt(t.shape[-1]) for n, t in base.items()}
    return lambda t: {n: base[n] + t * slope[n] for n in base}


def _cd_module(theta, K, offset=0.0, seed=0):

    m = ResidualMLP(CD_WIDTH, K, CD_HIDDEN, h=CD_T / K)
    shift = offset * torch.randn(CD_WIDTH, generator=torch.Generator().manual_seed(31_000 + seed), dtype=torch.float64)
    with torch.no_grad():
        for k, blk in enumerate(m.blocks):
            th = theta(k * CD_T / K)
            blk[0].weight.copy_(th["W1"])
            blk[0].bias.copy_(th["b1"])
            blk[2].weight.copy_(th["W2"])
            blk[2].bias.copy_(th["b2"] + shift)
    return m


def _cd_loss(s):
    w = torch.linspace(-1, 1, s.shape[-1], dtype=s.dtype)
    return (torch.sin(s) * w).sum() + 0.25 * (s * s).sum()


def continuous_costate(fns, theta, s0, n: int = CD_FINE):
    """p(0) of the continuous costate ODE: forward RK4 for s, then backward RK4 for (s, p)."""
    field, rhs = fns["continuous_field"], fns["continuous_costate_rhs"]
    F = lambda t, y: (_call(field, s=y[0], **theta(t)),)  # noqa: E731
    (sT,), _ = rk4(F, (s0,), 0.0, CD_T, n)
    sq = sT.clone().requires_grad_(True)
    (pT,) = torch.autograd.grad(_cd_loss(sq), sq)  # grad Phi of the terminal loss

    def back(t, y):
        s, p = y
        th = theta(t)
        return _call(field, s=s, **th), _call(rhs, s=s, p=p, **th)

    (_, p0), _ = rk4(back, (sT, pT), CD_T, 0.0, n)
    return p0


def check_continuous_depth(ctx, negative_controls=False):
    fns = ctx.fns
    theta = _cd_theta(ctx.seed)
    gen = torch.Generator().manual_seed(32_000 + ctx.seed)
    s0 = torch.randn(8, CD_WIDTH, generator=gen, dtype=torch.float64)
    p_ref = continuous_costate(fns, theta, s0)
    p_half = continuous_costate(fns, theta, s0, CD_FINE // 2)
    ref_err = float((p_ref - p_half).abs().max())

    def errors(offset):
        hs, errs = [], []
        for K in CD_DEPTHS:
            m = _cd_module(theta, K, offset, ctx.seed)
            x = s0.clone().requires_grad_(True)
            (p0,) = torch.autograd.grad(_cd_loss(m(x)), x)
            hs.append(CD_T / K)
            errs.append(float((p0 - p_ref).abs().max()))
        return hs, errs

    hs, errs = errors(0.0)
    slope = fit_order(hs, errs)
    details = {"T": CD_T, "depths": list(CD_DEPTHS), "h": hs, "max_abs_error": errs, "fitted_order": slope,
               "reference": f"RK4 with {CD_FINE} steps (change from {CD_FINE // 2} steps: {ref_err:.1e})",
               "weights": "theta(t) = theta_0 + t theta_1 (seeded), block k uses theta(k h)"}
    res = _result("continuous_depth", "discrete costate -> continuous costate ODE as h -> 0: fitted order 1",
                  abs(slope - 1.0), 0.1,
                  "torch.autograd dPhi/ds_0 through real residual MLPs of depth K = 8..256, h = T/K",
                  "generated continuous_costate_rhs, RK4 on a fine grid",
                  details, "order", "|fitted order - 1| <= 0.1 (log-log least squares over the depths)")
    if negative_controls:
        hs2, errs2 = errors(CD_OFFSET)
        neg = _result("continuous_depth", "", abs(fit_order(hs2, errs2) - 1.0), 0.1, "", "", {})
        res = _negative(res, neg, f"every block's b2 moved by the same vector of size {CD_OFFSET:g} (the ODE keeps theta): errors plateau, order {fit_order(hs2, errs2):.2f}")
    return res


# ----------------------------------------------------------------------------- viscous ResNet (linear-Gaussian)
KG_WIDTH, KG_HIDDEN, KG_T, KG_SIGMA, KG_DEPTH = 4, 5, 1.0, 0.6, 256


def _kg_setup(seed):
    gen = torch.Generator().manual_seed(40_000 + seed)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    th = {"W1": r(KG_HIDDEN, KG_WIDTH) * 0.5, "b1": r(KG_HIDDEN) * 0.3, "W2": r(KG_WIDTH, KG_HIDDEN) * 0.5, "b2": r(KG_WIDTH) * 0.3}
    L = r(KG_WIDTH, KG_WIDTH) * 0.5
    G = L @ L.T + 0.5 * torch.eye(KG_WIDTH, dtype=torch.float64)
    g = r(KG_WIDTH)
    s0 = r(KG_WIDTH)
    return th, G, g, s0


def _kg_module(th, sigma, depth=KG_DEPTH):

    m = ResidualMLP(KG_WIDTH, depth, KG_HIDDEN, h=KG_T / depth, sigma=sigma, activation="identity")
    with torch.no_grad():
        for blk in m.blocks:
            blk[0].weight.copy_(th["W1"])
            blk[0].bias.copy_(th["b1"])
            blk[2].weight.copy_(th["W2"])
            blk[2].bias.copy_(th["b2"])
    return m


def kolmogorov_closed_form(th, sigma, G, g, s0):
    """E[Phi(s_T)] for ds = (M s + c) dt + sigma dW: the Gaussian law by matrix exponentials (Van Loan)."""
    M = th["W2"] @ th["W1"]
    c = th["W2"] @ th["b1"] + th["b2"]
    d = M.shape[0]
    aug = torch.zeros(d + 1, d + 1, dtype=torch.float64)
    aug[:d, :d], aug[:d, d] = M, c
    E = torch.linalg.matrix_exp(aug * KG_T)
    m = E[:d, :d] @ s0 + E[:d, d]
    vl = torch.zeros(2 * d, 2 * d, dtype=torch.float64)
    vl[:d, :d], vl[:d, d:], vl[d:, d:] = -M, sigma ** 2 * torch.eye(d, dtype=torch.float64), M.T
    F = torch.linalg.matrix_exp(vl * KG_T)
    cov = F[d:, d:].T @ F[:d, d:]
    return float(m @ G @ m + g @ m + torch.trace(G @ cov))


def kolmogorov_discrete(th, sigma, G, g, s0, depth=KG_DEPTH):
    """E[Phi(s_K)] of the noisy module exactly: mean and covariance propagated block by block."""
    M = th["W2"] @ th["W1"]
    c = th["W2"] @ th["b1"] + th["b2"]
    h = KG_T / depth
    A = torch.eye(M.shape[0], dtype=torch.float64) + h * M
    m, cov = s0.clone(), torch.zeros_like(M)
    for _ in range(depth):
        m = A @ m + h * c
        cov = A @ cov @ A.T + sigma ** 2 * h * torch.eye(M.shape[0], dtype=torch.float64)
    return float(m @ G @ m + g @ m + torch.trace(G @ cov))


def kolmogorov_ode(fns, th, sigma, G, g, s0, n: int = 400):
    """V(s0, 0) from the derived coefficient ODEs, integrated backwards from (G, g, 0) at tau = T."""
    rhs = fns["kolmogorov_rhs"]

    def f(t, y):
        return _call(rhs, P=y[0], q=y[1], c0=y[2], sigma=sigma, **th)

    (P, q, c0), _ = rk4(f, (G, g, torch.zeros((), dtype=torch.float64)), KG_T, 0.0, n)
    return float(s0 @ P @ s0 + q @ s0 + c0)


def check_kolmogorov_closed_form(ctx, negative_controls=False):
    fns = ctx.fns
    th, G, g, s0 = _kg_setup(ctx.seed)
    v_ode = kolmogorov_ode(fns, th, KG_SIGMA, G, g, s0)
    v_cf = kolmogorov_closed_form(th, KG_SIGMA, G, g, s0)
    tol = 1e-9
    res = compare("kolmogorov_closed_form", "viscous ResNet, linear-Gaussian: derived Kolmogorov ODEs = closed form",
                  torch.tensor([v_cf], dtype=torch.float64), torch.tensor([v_ode], dtype=torch.float64), tol,
                  "closed form: Gaussian law of s_T (matrix exponentials, Van Loan)",
                  "generated kolmogorov_rhs (quadratic ansatz of V_tau + F.grad V + (sigma^2/2) Lap V = 0), RK4, 400 steps",
                  {"sigma": KG_SIGMA, "T": KG_T, "V_closed_form": v_cf, "V_ode": v_ode, "width": KG_WIDTH})
    if negative_controls:
        v_bad = kolmogorov_ode(fns, th, KG_SIGMA * math.sqrt(2), G, g, s0)
        neg = compare("kolmogorov_closed_form", "", torch.tensor([v_cf], dtype=torch.float64), torch.tensor([v_bad], dtype=torch.float64), tol, "", "")
        res = _negative(res, neg, "viscosity sigma^2 instead of sigma^2/2 in the ODEs")
    return res


def _monte_carlo(th, sigma, G, g, s0, seed):
    m = _kg_module(th, sigma)
    m.noise_generator = torch.Generator().manual_seed(41_000 + seed)
    with torch.no_grad():
        sT = m(s0.expand(N_MC, -1).clone())
    phi = ((sT @ G) * sT).sum(-1) + sT @ g
    return float(phi.mean()), float(phi.std() / math.sqrt(N_MC))


def check_kolmogorov_mc(ctx, negative_controls=False, closed_form_diffusion: float = 1.0):
    """``closed_form_diffusion`` multiplies the closed form's diffusion sigma^2/2 (1: the derived one; the formula control
    moves it)."""
    th, G, g, s0 = _kg_setup(ctx.seed)
    sigma_b = KG_SIGMA * math.sqrt(closed_form_diffusion)  # route B's model: the derived closed form and its exact discretisation
    v_cf = kolmogorov_closed_form(th, sigma_b, G, g, s0)
    v_disc = kolmogorov_discrete(th, sigma_b, G, g, s0)
    mean, se = _monte_carlo(th, KG_SIGMA, G, g, s0, ctx.seed)
    bias = abs(v_disc - v_cf)
    half = Z_999 * se
    details = {"samples": N_MC, "depth": KG_DEPTH, "h": KG_T / KG_DEPTH, "sigma": KG_SIGMA, "monte_carlo_mean": mean,
               "standard_error": se, "confidence_interval_99.9": [mean - half, mean + half], "V_closed_form": v_cf,
               "V_discrete_exact": v_disc, "discretisation_bias": bias,
               "monte_carlo_vs_discrete_in_ci": abs(mean - v_disc) <= half}
    err = abs(mean - v_cf)
    res = CheckResult("kolmogorov_monte_carlo", "viscous ResNet: closed-form value inside the Monte Carlo 99.9% interval of the real noisy module",
                      "the real noisy residual MLP (identity activation, noise sigma sqrt(h) xi per block), 20,000 samples",
                      "closed-form solution of the backward Kolmogorov equation (Gaussian law of s_T)",
                      err, err / abs(v_cf), half + bias, err <= half + bias, "statistic",
                      "|MC mean - V| <= 3.29 SE (99.9%) + |V_discrete - V| (exact O(h) bias)", details, {},
                      margin=math.inf if err == 0 else (half + bias) / err, error=err)
    if negative_controls:
        mean2, se2 = _monte_carlo(th, 1.5 * KG_SIGMA, G, g, s0, ctx.seed)
        e2 = abs(mean2 - v_cf)
        neg = CheckResult("", "", "", "", e2, e2, Z_999 * se2 + bias, e2 <= Z_999 * se2 + bias)
        res = _negative(res, neg, "the module's noise scale 1.5 sigma")
    return res


# ----------------------------------------------------------------------------- LQR
LQR_T, LQR_R, LQR_STEPS = 2.0, 0.1, (128, 256, 512)


def _lqr_setup(ctx, module=None):

    if module is None:
        with seeded(50_000 + ctx.seed):
            module = DiagonalSSM(6, 2, dt=0.05)
    r = read_control(module, ctx.spec)
    A, B = r.layers[0].controls["A"], r.layers[0].controls["B"]
    d = A.shape[0]
    gen = torch.Generator().manual_seed(51_000 + ctx.seed)
    Q = torch.eye(d, dtype=torch.float64)
    G = 2.0 * torch.eye(d, dtype=torch.float64)
    s0 = torch.randn(d, generator=gen, dtype=torch.float64)
    return r, A, B, Q, G, s0


def riccati_solution(fns, A, B, Q, G, T, n):
    """P(0) of the derived Riccati ODE integrated backwards from P(T) = G (RK4)."""
    rhs = fns["riccati_rhs"]
    (P,), _ = rk4(lambda t, y: (_call(rhs, P=y[0], A=A, B=B, Q=Q, r=LQR_R),), (G,), T, 0.0, n)
    return P


def direct_optimum(module, s0, Q, G, K):
    """Minimise the discretised cost over the control sequence through the real module.

    The module (its step set to T/K) maps controls to states linearly; its responses to s0 and to
    every unit control give that map exactly, the quadratic cost is minimised by a linear solve,
    and the optimum is then evaluated by running the module itself on the optimal controls.
    """
    import copy

    m = copy.deepcopy(module).double()
    dt = LQR_T / K
    with torch.no_grad():
        m.log_dt.fill_(math.log(dt))
        d, nx = m.B.shape
        free = m(torch.zeros(1, K, nx, dtype=torch.float64), s0[None])[0]  # (K, d)
        eye = torch.eye(K * nx, dtype=torch.float64).reshape(K * nx, K, nx)
        resp = m(eye, torch.zeros(K * nx, d, dtype=torch.float64))  # (K nx, K, d)
    S = resp.reshape(K * nx, K * d).T  # states (K d) = S u + free
    w = torch.full((K,), dt, dtype=torch.float64)
    w[-1] = 0.0  # s_K carries the terminal weight, not the running one
    Wq = torch.block_diag(*[w[k] * Q + (G if k == K - 1 else 0) for k in range(K)])
    f = free.reshape(-1)
    H = S.T @ Wq @ S + LQR_R * dt * torch.eye(K * nx, dtype=torch.float64)
    b = S.T @ Wq @ f
    u = -torch.linalg.solve(H, b)
    # the cost of the optimal controls, by the module itself (running cost uses s_0 .. s_{K-1})
    uu = u.reshape(1, K, nx).clone().requires_grad_(True)
    states = m(uu, s0[None])[0]
    path = torch.cat([s0[None], states[:-1]])
    J = dt * ((path @ Q) * path).sum() + LQR_R * dt * (uu * uu).sum() + states[-1] @ G @ states[-1]
    (grad,) = torch.autograd.grad(J, uu)
    return float(J.detach()), float(grad.abs().max())


def check_lqr_finite(ctx, negative_controls=False):
    fns = ctx.fns
    r, A, B, Q, G, s0 = _lqr_setup(ctx)
    P0 = riccati_solution(fns, A, B, Q, G, LQR_T, 1000)
    j_star = float(s0 @ P0 @ s0)

    def direct(module):
        vals, grads = [], []
        for K in LQR_STEPS:
            J, g = direct_optimum(module, s0, Q, G, K)
            vals.append(J)
            grads.append(g)
        return vals, grads

    vals, grads = direct(r.module)
    extrap = richardson(vals)
    hs = [LQR_T / K for K in LQR_STEPS]
    order = fit_order(hs, [abs(v - j_star) for v in vals])
    tol = 1e-6
    rel = _relative(extrap, j_star)
    details = {"T": LQR_T, "r": LQR_R, "Q": "identity", "terminal": "2 identity", "steps": list(LQR_STEPS), "J_direct": vals,
               "J_direct_extrapolated": extrap, "J_riccati": j_star, "fitted_order_of_J_K": order,
               "max_gradient_at_optimum": max(grads)}
    res = CheckResult("lqr_finite_horizon", "LQR: optimal cost from the derived Riccati equation = direct optimisation of the real SSM",
                      "direct optimisation of the control sequence through the real SSM module (K = 128, 256, 512; Richardson to dt -> 0)",
                      "s0^T P(0) s0, P from the generated riccati_rhs (derived from the HJB equation), RK4 with 1000 steps",
                      abs(extrap - j_star), rel, tol, rel <= tol, "statistic", "relative error <= 1e-6 (the methods' discretisation)",
                      details, {}, margin=math.inf if rel == 0 else tol / rel, error=rel)
    if negative_controls:

        v2, _ = direct(perturb(r.module, "weights", 1e-3, seed=ctx.seed))
        rel2 = _relative(richardson(v2), j_star)
        neg = CheckResult("", "", "", "", rel2 * abs(j_star), rel2, tol, rel2 <= tol)
        res = _negative(res, neg, "the module's parameters moved by up to 1e-3")
    return res


def _steady_state(fns, A, B, Q):
    """The derived Riccati ODE integrated backwards until it stops moving (infinite horizon)."""
    d = A.shape[0]
    P = torch.zeros(d, d, dtype=torch.float64)
    rhs = fns["riccati_rhs"]
    for _ in range(400):  # one unit of time per round, 25 RK4 steps (stable: |eigenvalues| * step < 1)
        (P,), _ = rk4(lambda t, y: (_call(rhs, P=y[0], A=A, B=B, Q=Q, r=LQR_R),), (P,), 0.0, -1.0, 25)
        if float(_call(rhs, P=P, A=A, B=B, Q=Q, r=LQR_R).abs().max()) < 1e-14 * max(1.0, float(P.abs().max())):
            break
    return P


def check_lqr_infinite(ctx, negative_controls=False):
    import scipy.linalg

    fns = ctx.fns
    r, A, B, Q, G, s0 = _lqr_setup(ctx)
    P = _steady_state(fns, A, B, Q)

    def care(A_, B_):
        R = LQR_R * torch.eye(B_.shape[1], dtype=torch.float64)
        return torch.as_tensor(scipy.linalg.solve_continuous_are(torch.diag(A_).numpy(), B_.numpy(), Q.numpy(), R.numpy()))

    Pc = care(A, B)
    res = compare("lqr_infinite_horizon", "LQR, infinite horizon: steady state of the derived Riccati ODE = SciPy's CARE solution",
                  Pc, P, 1e-9, "scipy.linalg.solve_continuous_are(A, B, Q, r I) on the module's read-out A, B",
                  "generated riccati_rhs integrated backwards to steady state (RK4)",
                  {"J_steady_state": float(s0 @ P @ s0), "J_scipy": float(s0 @ Pc @ s0)})
    if negative_controls:

        rp = read_control(perturb(r.module, "weights", 1e-6, seed=ctx.seed), ctx.spec)
        neg = compare("", "", care(rp.layers[0].controls["A"], rp.layers[0].controls["B"]), P, 1e-9, "", "")
        res = _negative(res, neg, "the module's parameters moved by up to 1e-6 (SciPy side)")
    return res


DARE_STEPS = (0.02, 0.01, 0.005)


def _measured_zoh(module, dt):
    """(A_bar, B_bar) of the real module at step dt, measured by running it on unit states and inputs."""
    import copy

    m = copy.deepcopy(module).double()
    with torch.no_grad():
        m.log_dt.fill_(math.log(dt))
        d, nx = m.B.shape
        Abar = m(torch.zeros(d, 1, nx, dtype=torch.float64), torch.eye(d, dtype=torch.float64))[:, 0].T
        Bbar = m(torch.eye(nx, dtype=torch.float64)[:, None, :], torch.zeros(nx, d, dtype=torch.float64))[:, 0].T
    return Abar, Bbar


def check_lqr_dare(ctx, negative_controls=False):
    import scipy.linalg

    fns = ctx.fns
    r, A, B, Q, G, s0 = _lqr_setup(ctx)
    P = _steady_state(fns, A, B, Q)
    j_inf = float(s0 @ P @ s0)

    def dare_costs(module):
        out = []
        for dt in DARE_STEPS:
            Ab, Bb = _measured_zoh(module, dt)
            Pd = scipy.linalg.solve_discrete_are(Ab.numpy(), Bb.numpy(), (dt * Q).numpy(), dt * LQR_R * torch.eye(Bb.shape[1]).numpy())
            out.append(float(s0 @ torch.as_tensor(Pd) @ s0))
        return out

    vals = dare_costs(r.module)
    extrap = richardson(vals)
    order = fit_order(list(DARE_STEPS), [abs(v - j_inf) for v in vals])
    tol = 1e-6
    rel = _relative(extrap, j_inf)
    details = {"dt": list(DARE_STEPS), "J_dare": vals, "J_dare_extrapolated": extrap, "J_steady_state": j_inf, "fitted_order": order}
    res = CheckResult("lqr_dare", "LQR: SciPy's discrete algebraic Riccati solution of the real module -> the derived steady state",
                      "scipy.linalg.solve_discrete_are on the module's zero-order-hold matrices (measured by running it), dt = 0.02, 0.01, 0.005, "
                      "Richardson to dt -> 0",
                      "steady state of the generated riccati_rhs", abs(extrap - j_inf), rel, tol, rel <= tol, "statistic",
                      "relative error of the extrapolated cost <= 1e-6 (the methods' discretisation)", details, {},
                      margin=math.inf if rel == 0 else tol / rel, error=rel)
    if negative_controls:

        v2 = dare_costs(perturb(r.module, "weights", 1e-3, seed=ctx.seed))
        rel2 = _relative(richardson(v2), j_inf)
        res = _negative(res, CheckResult("", "", "", "", rel2 * abs(j_inf), rel2, tol, rel2 <= tol),
                        "the module's parameters moved by up to 1e-3")
    return res


def _kolmogorov_mc_mutated(ctx, nets):
    """The formula control of the Monte Carlo check (its route B is the closed form, not a generated function): the
    closed form's diffusion sigma^2/2 with its factor 1/2 dropped (Ito's factor, the classic slip). A change of 10 %
    would move V by less than the Monte Carlo interval (0.16 on 12.2) resolves."""
    return check_kolmogorov_mc(ctx, closed_form_diffusion=2.0)


#: A change of one term of the Riccati equation (a global factor would only rescale time and leave the steady state)
_RICCATI_TERM = Mutate(mutation=Mutation("scale", STATISTIC_DELTA, term=0))

#: The exact pieces, as declared checks; an architecture lists those that apply to it (``Architecture.checks``).
CONTINUOUS_DEPTH = Check("continuous_depth", r"discrete costate of a residual MLP $\to$ continuous costate ODE (order 1 in $h$)",
                         "continuous-limit:1", r"torch.autograd costates of real residual MLPs at $K = 8, \ldots, 256$ blocks",
                         "generated continuous_costate_rhs integrated by RK4", standalone=check_continuous_depth,
                         requires=("continuous_costate_rhs",), kind="statistic")
KOLMOGOROV_CLOSED_FORM = Check("kolmogorov_closed_form", "backward Kolmogorov coefficient ODEs = the linear-Gaussian closed form",
                               "kolmogorov-linear:1", "closed form of the Gaussian law of the final state (matrix exponentials)",
                               "generated kolmogorov_rhs integrated by RK4", standalone=check_kolmogorov_closed_form,
                               requires=("kolmogorov_rhs",), kind="statistic")
KOLMOGOROV_MC = Check("kolmogorov_monte_carlo", "the real noisy module's expected loss = the Kolmogorov closed form",
                      "kolmogorov-linear:1", f"{N_MC} samples of the real noisy module", "closed form (derived)", standalone=check_kolmogorov_mc,
                      requires=("kolmogorov_rhs",), kind="statistic",
                      formula=Custom("the closed form's diffusion sigma^2/2 -> sigma^2 (its factor 1/2 dropped)",
                                     _kolmogorov_mc_mutated))
LQR_FINITE = Check("lqr_finite_horizon", "optimal cost of the Riccati equation = direct optimisation of the real SSM",
                   "riccati:1", "exact minimiser of the quadratic cost through the real module, Richardson-extrapolated",
                   "generated riccati_rhs integrated by RK4", standalone=check_lqr_finite, requires=("riccati_rhs",),
                   kind="statistic")
LQR_INFINITE = Check("lqr_infinite_horizon", "steady state of the derived Riccati ODE = SciPy's continuous algebraic Riccati solution",
                     "riccati:1", "scipy.linalg.solve_continuous_are on the real module's matrices", "generated riccati_rhs to its steady state",
                     standalone=check_lqr_infinite, requires=("riccati_rhs",),
                     kind="statistic", formula=_RICCATI_TERM)
LQR_DARE = Check("lqr_dare", r"discrete Riccati solution of the real zero-order-hold system $\to$ the steady state (order 1)",
                 "riccati:1", "scipy.linalg.solve_discrete_are on the matrices measured by running the real module",
                 "generated riccati_rhs steady state", standalone=check_lqr_dare, requires=("riccati_rhs",),
                 kind="statistic", formula=_RICCATI_TERM)

RESNET_CHECKS = (CONTINUOUS_DEPTH, KOLMOGOROV_CLOSED_FORM, KOLMOGOROV_MC)
SSM_CHECKS = (LQR_FINITE, LQR_INFINITE, LQR_DARE)
