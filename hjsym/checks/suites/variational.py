"""Checks of a functional of curves (the brachistochrone): the derived extremal against a direct minimisation in torch.

Route A is the real functional, :class:`~hjsym.networks.variational.TravelTime` (a torch module: the exact
travel time of a bead along a polyline), minimised directly over the depths of an ``n``-segment path by
L-BFGS; route B the generated extremal (``extremal_x``, ``extremal_y``, through the endpoint: its
parameter found by bisection on the generated functions) and the generated time along it
(``extremal_value``). Every polyline is an admissible curve and its time is exact, so the derived
extremal's time is a lower bound of every route A time: the bound checks need no discretisation
tolerance, only rounding (``k u S``).

* ``cycloid_minimiser``: the largest depth difference between the minimiser and the cycloid at the grid
  nodes falls like ``n^-p`` with ``p`` the derived start exponent (``y ~ x^(2/3)`` at the cusp, from the
  series of the parametric extremal): fitted order within 0.1 of it;
* ``cycloid_time``: ``T_cycloid <= T_n`` for every ``n`` (tightness witness: ``T_n - T_cycloid`` falls at
  order 1, recorded);
* ``cycloid_fastest``: ``T_cycloid`` below the straight line's and the vertical-start circle's times.

The negative control starts the bead ``y_B / 100`` deeper (``input-shift``: an initial speed), a
different problem whose minimiser is not the derived cycloid: it must fail every check.
"""

from __future__ import annotations

import math

import torch

from ...networks.perturb import perturb
from ...networks.readout import ModuleReadout
from ...networks.variational import brachistochrone_references, circle_path, line_path, minimise_travel_time
from ..criteria import bound, statistic
from ..engine import Check, Suite

__all__ = ["SUITE", "BRACHISTOCHRONE_CHECKS", "GRID", "extremal_through", "deviation", "fit_order", "SHIFT"]

GRID = (8, 16, 32, 64)
SHIFT = 0.01  # the negative control's initial depth, relative to y_B
ORDER_TOL = 0.1


def fit_order(ns, errors) -> float:
    """Least-squares slope of ``-log(error)`` against ``log(n)``."""
    x = torch.log(torch.tensor(ns, dtype=torch.float64))
    y = -torch.log(torch.tensor(errors, dtype=torch.float64))
    xm, ym = x.mean(), y.mean()
    return float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())


def _bisect(f, target, lo, hi, iters: int = 200):
    """``theta`` with ``f(theta) = target`` for an increasing ``f`` on ``[lo, hi]`` (tensors, elementwise)."""
    lo, hi = torch.as_tensor(lo, dtype=torch.float64) + 0 * target, torch.as_tensor(hi, dtype=torch.float64) + 0 * target
    for _ in range(iters):
        mid = (lo + hi) / 2
        below = f(mid) < target
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def extremal_through(ctx, end) -> tuple[float, float]:
    """``(theta_B, a)`` of the generated extremal from the origin through ``end`` (x/y increases with theta)."""
    xb, yb = end
    ratio = lambda th: ctx.call("extremal_x", theta=th, a=1.0) / ctx.call("extremal_y", theta=th, a=1.0)  # noqa: E731
    theta = float(_bisect(ratio, torch.tensor(xb / yb, dtype=torch.float64), 1e-9, 2 * math.pi - 1e-9))
    return theta, yb / float(ctx.call("extremal_y", theta=theta, a=1.0))


def deviation(ctx, path: torch.Tensor, theta_b: float, a: float) -> float:
    """Largest depth difference between a path's interior nodes and the generated extremal at the same x."""
    x, y = path[1:-1, 0], path[1:-1, 1]
    theta = _bisect(lambda th: ctx.call("extremal_x", theta=th, a=a), x, 0.0, theta_b)
    return float((y - ctx.call("extremal_y", theta=theta, a=a)).abs().max())


def _minimisers(ctx, module):
    key = ("brachistochrone-minimisers", id(module))
    return ctx.cached(key, lambda: [minimise_travel_time(module, n) for n in GRID])


def _references(ctx):
    return ctx.cached("brachistochrone-references", lambda: brachistochrone_references(ctx.seed, ctx.dtype))


def _cycloid_time(ctx, module) -> tuple[float, float]:
    theta, a = extremal_through(ctx, module.end)
    args = {"theta": theta, "a": a, "g": module.g}
    return float(ctx.call("extremal_value", args)), float(ctx.magnitude("extremal_value", args))


def _negative(result, bad, what: str):
    result.details["negative_control"] = {"perturbation": what, "max_abs_err": bad.max_abs_err, "passed": bad.passed, "margin": bad.margin}
    return result


def _orders(ctx, modules):
    rows = []
    for label, mod in modules.items():
        theta, a = extremal_through(ctx, mod.end)
        devs = [deviation(ctx, path, theta, a) for path, _, _ in _minimisers(ctx, mod)]
        rows.append({"network": label, "n": list(GRID), "deviation": devs, "order": fit_order(GRID, devs), "theta_B": theta, "a": a,
                     "iterations": [it for _, _, it in _minimisers(ctx, mod)]})
    return rows


def _shifted(modules):
    return {label: perturb(m, "input-shift", SHIFT * m.end[1]) for label, m in modules.items()}


def check_minimiser(ctx, negative_controls=False):
    expected = float(ctx.call("extremal_start_exponent"))
    title = f"direct minimiser of the discretised time -> derived cycloid, at order n^-{expected:.3g} (the cusp y ~ x^{expected:.3g})"

    def result(modules):
        rows = _orders(ctx, modules)
        orders = torch.tensor([r["order"] for r in rows], dtype=torch.float64)
        return statistic("cycloid_minimiser", title, orders, torch.full_like(orders, expected), ORDER_TOL,
                         route_a=f"L-BFGS over the depths of n-segment paths (n = {', '.join(map(str, GRID))}) minimising the real "
                                 "TravelTime module",
                         route_b="generated extremal_x, extremal_y through the endpoint (bisection on the generated functions)",
                         criterion=f"|fitted order of the max depth deviation - {expected:.4g}| <= {ORDER_TOL} (log-log least squares over n)",
                         details={"runs": rows, "expected_order": expected}, step="parametric-extremal:4")

    refs = _references(ctx)
    res = result(refs)
    if negative_controls:
        res = _negative(res, result(_shifted(refs)), f"input-shift: the bead starts y_B x {SHIFT:g} deeper (an initial speed)")
    return res


def _time_values(ctx, modules, which):
    values, upper, scale, rows = [], [], [], []
    for label, mod in modules.items():
        T, M = _cycloid_time(ctx, mod)
        if which == "minimiser":
            times = [(f"n = {n}", t, n) for n, (_, t, _) in zip(GRID, _minimisers(ctx, mod))]
        else:
            times = [("straight line", float(mod(line_path(mod.end, 1))), 1),
                     ("circle (vertical start, 4096 segments)", float(mod(circle_path(mod.end, 4096))), 4096)]
        for name, t, segments in times:
            values.append(T)
            upper.append(t)
            scale.append(M + abs(T) + segments * abs(t))  # a polyline's time is a sum of `segments` rounded terms
        rows.append({"network": label, "T_cycloid": T, "competitors": {name: t for name, t, _ in times}})
        if which == "minimiser":
            gaps = [t - T for _, t, _ in times]
            rows[-1]["tightness_order"] = fit_order(GRID, gaps) if all(g > 0 for g in gaps) else math.nan
    return torch.tensor(values, dtype=torch.float64), torch.tensor(upper, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64), rows


def _bound_check(name, title, which, route_a, step):
    def run(ctx, negative_controls=False):
        def result(modules):
            v, u, s, rows = _time_values(ctx, modules, which)
            return bound(name, title, v, u, s, dtype=ctx.dtype, lower=0.0, route_a=route_a,
                         route_b="generated extremal_value(theta_B, a, g): the time along the derived cycloid", details={"runs": rows},
                         step=step)

        refs = _references(ctx)
        res = result(refs)
        if negative_controls:
            res = _negative(res, result(_shifted(refs)), f"input-shift: the bead starts y_B x {SHIFT:g} deeper (an initial speed)")
        return res

    return run


BRACHISTOCHRONE_CHECKS = (
    Check("cycloid_minimiser", "direct minimiser of the discretised travel time -> derived cycloid at the derived order",
          "parametric-extremal:4", "L-BFGS over n-segment paths of the real TravelTime module",
          "generated extremal_x, extremal_y through the endpoint", standalone=check_minimiser, kind="statistic",
          requires=("extremal_x", "extremal_y", "extremal_start_exponent")),
    Check("cycloid_time", "T_cycloid <= time of the direct minimiser for every n (a polyline is an admissible curve)",
          "parametric-extremal:8", "the real TravelTime module at the L-BFGS minimiser of each n", "generated extremal_value",
          standalone=_bound_check("cycloid_time", "T_cycloid <= T_n (every n-segment minimiser)", "minimiser",
                                  "the real TravelTime module at the L-BFGS minimiser of each n", "parametric-extremal:8"),
          kind="bound", requires=("extremal_x", "extremal_y", "extremal_value")),
    Check("cycloid_fastest", "T_cycloid below the straight line's and the circle's times", "parametric-extremal:8",
          "the real TravelTime module on the straight line and on the circle through both ends with a vertical start",
          "generated extremal_value",
          standalone=_bound_check("cycloid_fastest", "T_cycloid <= T_line and T_cycloid <= T_circle", "competitors",
                                  "the real TravelTime module on the straight line and the circle", "parametric-extremal:8"),
          kind="bound", requires=("extremal_x", "extremal_y", "extremal_value")),
)


def read(ctx, module):
    return ModuleReadout(module, ctx.dtype)


SUITE = Suite("variational", (), applies=lambda spec: spec.functional is not None, read=read)
