"""Confidence intervals, slope fits, rank correlations and verdicts.

Several seeds give several independent measurements of one quantity (a fitted slope, a ratio);
their mean gets a two-sided 95 % Student-t interval. A verdict compares that interval with the
paper's value and a stated equivalence margin: **holds** when the whole interval lies within
``value ± margin``, **does not hold** when it lies wholly outside, **inconclusive** otherwise.
"""

from __future__ import annotations

import math

import torch

__all__ = ["t_quantile", "mean_ci", "fit_slope", "slopes", "spearman", "verdict", "bound_verdict", "combine", "VERDICTS"]

VERDICTS = ("holds", "does not hold", "inconclusive")

# 97.5 % quantiles of Student's t with df = 1..30 (two-sided 95 % intervals)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (normal beyond 30)."""
    if df < 1:
        return float("inf")
    return _T975[df - 1] if df <= 30 else 1.96


def mean_ci(values, bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict:
    """Mean and 95 % t-interval of independent measurements: ``{"mean", "lo", "hi", "sd", "n"}``.

    ``bounds``: the range the quantity lives in (``(0, 1)`` for a fraction, ``(0, inf)`` for a count); the
    interval is clipped to it, so it never reports a value the quantity cannot take.
    """
    v = [float(x) for x in values]
    n = len(v)
    mean = sum(v) / n if n else float("nan")
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else float("nan")
    half = t_quantile(n - 1) * sd / math.sqrt(n) if n > 1 else float("inf")
    return {"mean": mean, "lo": max(bounds[0], mean - half), "hi": min(bounds[1], mean + half), "sd": sd, "n": n}


def fit_slope(x, y) -> tuple[float, float]:
    """Least-squares line ``log y = a + s log x``: returns ``(s, a)``. ``x``, ``y``: 1-D, positive."""
    lx = torch.log(torch.as_tensor(x, dtype=torch.float64))
    ly = torch.log(torch.as_tensor(y, dtype=torch.float64))
    xm, ym = lx.mean(), ly.mean()
    s = ((lx - xm) * (ly - ym)).sum() / ((lx - xm) ** 2).sum()
    return float(s), float(ym - s * xm)


def slopes(x, ys) -> list[float]:
    """One log-log slope per row of ``ys`` (rows: seeds; columns: the values at ``x``)."""
    return [fit_slope(x, row)[0] for row in ys]


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation along the last axis. ``a``, ``b``: ``(*batch, n)`` -> ``(*batch,)``."""

    def ranks(v):
        return torch.argsort(torch.argsort(v, dim=-1), dim=-1).to(torch.float64)

    ra, rb = ranks(a), ranks(b)
    ra = ra - ra.mean(-1, keepdim=True)
    rb = rb - rb.mean(-1, keepdim=True)
    return (ra * rb).sum(-1) / torch.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))


def verdict(ci: dict, target: float, margin: float) -> str:
    """Equivalence verdict of an interval ``ci`` (from :func:`mean_ci`) against ``target ± margin``."""
    lo, hi = ci["lo"], ci["hi"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if lo >= target - margin and hi <= target + margin:
        return "holds"
    if hi < target - margin or lo > target + margin:
        return "does not hold"
    return "inconclusive"


def bound_verdict(ratios, slack: float = 1e-9) -> str:
    """An upper bound holds iff every measured/bound ratio is ``<= 1 + slack``."""
    worst = max(float(r) for r in ratios)
    return "holds" if worst <= 1 + slack else "does not hold"


def combine(verdicts) -> str:
    """Overall verdict of several parts: any failure fails, else any doubt is doubt, else holds."""
    verdicts = list(verdicts)
    if "does not hold" in verdicts:
        return "does not hold"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "holds"
