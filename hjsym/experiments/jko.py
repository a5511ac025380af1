"""The JKO scheme against the closed forms: the heat equation (entropy) and the Ornstein-Uhlenbeck free energy.

One JKO step is ``rho_{n+1} = argmin F[rho] + W_2^2(rho, rho_n)/(2 tau)``, run in mass coordinates by
:class:`~hjsym.networks.gradient_flow.JKOParticles` (particles at the quantiles ``(i - 1/2)/n``; every
step a strictly convex minimisation solved by Newton's method), from ``N(m0, v0)`` with ``m0`` uniform
on ``[-1, 1]`` and ``v0`` on ``[0.1, 0.5]`` per seed, ``eps = 0.5``, for the entropy alone (``k = 0``:
the heat equation) and for ``F = int (x^2/2) rho + eps rho log rho`` (``k = 1``). The error is the
2-Wasserstein distance between the Gaussians with the particles' mean and variance and the closed
form (generated ``ou_mean``, ``ou_variance``, ``heat_variance``: ``sqrt((m - m*)^2 + (s - s*)^2)``):

* **against tau** at ``T = 1`` with ``n = 2000`` particles (their own error is ``~v/n``, far below):
  the JKO step is an implicit Euler step in the Wasserstein metric, so the slope should be 1;
* **against the resolution** ``n = 50 .. 800`` at ``tau = 0.1`` (ten steps) against the exact JKO step
  of a Gaussian iterated (generated ``jko_mean``, ``jko_variance``: the time discretisation removed
  exactly): the discrete entropy's virial identity ``k sum X_i^2 = eps (n - 1)`` predicts an error of
  order 1 (the particles' variance is low by about ``v/n``).

The verdict rests on the slopes' 95 % intervals over seeds (holds iff inside 1 +- 0.1).
"""

from __future__ import annotations

import math

import torch

from ._stats import combine, mean_ci, slopes, verdict

NAME = "jko"
TITLE = "JKO steps of the entropy and of the Ornstein-Uhlenbeck free energy"
CLAIM = ("The JKO scheme (minimising F[rho] + W_2^2(rho, rho_n)/(2 tau)) converges to the Wasserstein gradient flow: to the heat "
         "equation for the entropy and to the Fokker-Planck equation for the free energy, at order 1 in tau.")
CLAIM_TEX = r"\rho_{n+1} = \arg\min_\rho\ \mathcal{F}[\rho] + \frac{W_2^2(\rho, \rho_n)}{2\tau} \;\to\; \partial_t \rho = \nabla\cdot(\rho \nabla V) + \varepsilon \Delta \rho"
SEEDS = (0, 1, 2, 3, 4)
SEEDS_QUICK = (0, 1)
EPS, T = 0.5, 1.0
PROBLEMS = {"heat": 0.0, "ornstein-uhlenbeck": 1.0}  # name -> k
TAUS = (0.2, 0.1, 0.05, 0.025, 0.0125)
TAUS_QUICK = (0.2, 0.1, 0.05)
N_FINE, N_FINE_QUICK = 2000, 400
PARTICLES = (50, 100, 200, 400, 800)
PARTICLES_QUICK = (50, 100, 200)
SPACE_TAU, SPACE_STEPS = 0.1, 10
MARGIN = 0.1


def _initial(seed: int):
    gen = torch.Generator().manual_seed(5151 + seed)
    u = torch.rand(2, generator=gen, dtype=torch.float64)
    return float(-1 + 2 * u[0]), float(0.1 + 0.4 * u[1])


def closed_form(k: float, m0: float, v0: float, t: float) -> tuple[float, float]:
    """Mean and variance of the exact flow at ``t`` (generated: ``ou_*`` for k > 0, ``heat_variance`` for k = 0)."""
    from ..checks.api import function

    if k == 0:
        return m0, float(function("fokker-planck", "heat_variance")(t=t, v0=v0, eps=EPS))
    return (float(function("fokker-planck", "ou_mean")(t=t, m0=m0, k=k)),
            float(function("fokker-planck", "ou_variance")(t=t, v0=v0, k=k, eps=EPS)))


def exact_jko(k: float, m0: float, v0: float, tau: float, steps: int) -> tuple[float, float]:
    """The exact JKO recursion of a Gaussian (generated ``jko_mean``, ``jko_variance``)."""
    from ..checks.api import function

    mean, var = m0, v0
    for _ in range(steps):
        mean = float(function("fokker-planck", "jko_mean")(m0=mean, k=k, tau=tau))
        var = float(function("fokker-planck", "jko_variance")(v0=var, k=k, eps=EPS, tau=tau))
    return mean, var


def gaussian_w2(m1, v1, m2, v2) -> float:
    return math.sqrt((m1 - m2) ** 2 + (math.sqrt(v1) - math.sqrt(v2)) ** 2)


def one(cfg: dict) -> dict:
    from ..networks.gradient_flow import JKOParticles, gaussian_quantiles

    k, seed, quick = PROBLEMS[cfg["problem"]], cfg["seed"], cfg["quick"]
    m0, v0 = _initial(seed)
    m_true, v_true = closed_form(k, m0, v0, T)
    n_fine = N_FINE_QUICK if quick else N_FINE
    time_err, iters = [], []
    for tau in (TAUS_QUICK if quick else TAUS):
        scheme = JKOParticles(k, EPS, tau, int(round(T / tau)))
        X = scheme(gaussian_quantiles(n_fine, m0, v0))[-1]
        time_err.append(gaussian_w2(float(X.mean()), float(X.var(unbiased=False)), m_true, v_true))
        iters.append(max(scheme.newton_iterations))
    m_jko, v_jko = exact_jko(k, m0, v0, SPACE_TAU, SPACE_STEPS)
    space_err, var_shift = [], []
    for n in (PARTICLES_QUICK if quick else PARTICLES):
        X = JKOParticles(k, EPS, SPACE_TAU, SPACE_STEPS)(gaussian_quantiles(n, m0, v0))[-1]
        var = float(X.var(unbiased=False))
        space_err.append(gaussian_w2(float(X.mean()), var, m_jko, v_jko))
        var_shift.append((var - v_jko) * n / v_jko)
    return {"problem": cfg["problem"], "seed": seed, "m0": m0, "v0": v0, "tau": list(TAUS_QUICK if quick else TAUS), "time_error": time_err,
            "n": list(PARTICLES_QUICK if quick else PARTICLES), "space_error": space_err, "variance_shift_times_n_over_v": var_shift,
            "newton_iterations": iters, "n_fine": n_fine}


def run(ctx) -> dict:
    res = ctx.map(one, [{"problem": p, "seed": s, "quick": ctx.quick} for p in PROBLEMS for s in ctx.seeds], desc="jko")
    rows = []
    for p in PROBLEMS:
        runs = [r for r in res if r["problem"] == p]
        ci = mean_ci(slopes(runs[0]["tau"], [r["time_error"] for r in runs]))
        rows.append({"quantity": f"{p}: slope of the W2 error against tau (n = {runs[0]['n_fine']})", "paper": "1", "measured": ci["mean"],
                     "lo": ci["lo"], "hi": ci["hi"], "n": ci["n"], "verdict": verdict(ci, 1.0, MARGIN),
                     "rule": f"holds iff the 95 % CI lies within 1 +- {MARGIN}"})
    for p in PROBLEMS:
        runs = [r for r in res if r["problem"] == p]
        ci = mean_ci([-s for s in slopes(runs[0]["n"], [r["space_error"] for r in runs])])
        rows.append({"quantity": f"{p}: order in the number of particles n (against the exact Gaussian JKO step, tau = {SPACE_TAU})",
                     "paper": "1 (virial identity)", "measured": ci["mean"], "lo": ci["lo"], "hi": ci["hi"], "n": ci["n"],
                     "verdict": verdict(ci, 1.0, MARGIN), "rule": f"holds iff the 95 % CI lies within 1 +- {MARGIN}"})
    shift = mean_ci([r["variance_shift_times_n_over_v"][-1] for r in res])
    overall = combine(r["verdict"] for r in rows)
    text = "; ".join(f"{r['quantity'].split(':')[0]} {r['measured']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]" for r in rows)
    return {
        "verdict": overall,
        "verdict_reason": "first order in tau for the entropy and the free energy, and first order in the particles",
        "measurement": (f"order in tau (heat, OU), then in n (heat, OU): {text}; the particles' variance is off by "
                        f"{shift['mean']:.3f} [{shift['lo']:.3f}, {shift['hi']:.3f}] x v/n at the largest n."),
        "falsifiable": {"statistic": "the 95 % CI over seeds of the log-log slope of the W2 error against tau and against n",
                        "refuted_if": f"a slope CI lies wholly outside 1 +- {MARGIN} (e.g. order 1/2 in tau: the scheme would not be "
                                      "an implicit Euler step of the flow)"},
        "rows": rows, "data": {"runs": res},
        "config": {"eps": EPS, "T": T, "problems": PROBLEMS, "taus": TAUS_QUICK if ctx.quick else TAUS,
                   "particles": PARTICLES_QUICK if ctx.quick else PARTICLES, "space_tau": SPACE_TAU, "space_steps": SPACE_STEPS},
        "notes": ["The errors in n are against the exact JKO step of a Gaussian (derived symbolically), so the time discretisation does "
                  "not enter them; the errors in tau use many particles, whose own error (about v/n) is far below the time error."],
        "method": __doc__,
    }


def figures(result, folder) -> list[dict]:
    from ._plots import PALETTE, band, fig_entry, figure

    runs = result["data"]["runs"]
    fig, axes = figure(ncols=2, width=4.2, height=3.4)
    for n, p in enumerate(PROBLEMS):
        rs = [r for r in runs if r["problem"] == p]
        band(axes[0], rs[0]["tau"], [r["time_error"] for r in rs], p, PALETTE[n])
        band(axes[1], rs[0]["n"], [r["space_error"] for r in rs], p, PALETTE[n])
    t0 = runs[0]["tau"]
    axes[0].plot(t0, [runs[0]["time_error"][0] * t / t0[0] for t in t0], "k:", lw=0.8, label="slope 1")
    n0 = runs[0]["n"]
    axes[1].plot(n0, [runs[0]["space_error"][0] * n0[0] / n for n in n0], "k:", lw=0.8, label="slope -1")
    axes[0].set_xlabel("JKO step tau")
    axes[0].set_ylabel("W2 error against the closed form at T = 1")
    axes[1].set_xlabel("particles n")
    axes[1].set_ylabel("W2 error against the exact Gaussian JKO")
    for ax in axes:
        ax.legend(fontsize=7)
    return [fig_entry(fig, folder, "jko-errors", "JKO error against the step tau (left, many particles, against the closed-form flow) and "
                      "against the number of particles (right, against the exact JKO step of a Gaussian), mean and range over seeds.")]
