"""Confidence intervals, slope fits, rank correlations and verdicts.

Several seeds give several independent measurements of one quantity (a fitted slope, a ratio);
their mean gets a two-sided 95 % Student-t interval (:func:`mean_ci`; ratios on the log scale,
:func:`geometric_ci`). Where a t-interval is the wrong model (a bimodal sample, a quantity that
cannot be negative), :func:`bootstrap_ci` gives a percentile bootstrap interval, which stays
inside the range of the data; a share of successes gets the exact Clopper-Pearson interval
(:func:`proportion_ci`). Every interval is a dict ``{"mean", "lo", "hi", "n", ...}``.

A verdict compares an interval with the paper's value and a stated equivalence margin:
**holds** when the whole interval lies within ``value ± margin``, **does not hold** when it lies
wholly outside, **inconclusive** otherwise.
"""

from __future__ import annotations

import math

import torch

__all__ = ["t_quantile", "mean_ci", "geometric_ci", "bootstrap_ci", "proportion_ci", "fit_slope", "slopes", "spearman",
           "log_grid_extremum", "verdict", "bound_verdict", "combine", "VERDICTS"]

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


def geometric_ci(ratios) -> dict:
    """Geometric mean and 95 % interval of positive ratios: a t-interval on their logarithms, mapped back.

    Returns ``{"mean", "lo", "hi", "n", "log"}`` with ``"log"`` the interval of the logarithms (for :func:`verdict`).
    """
    logs = mean_ci([math.log(float(r)) for r in ratios])
    return {"mean": math.exp(logs["mean"]), "lo": math.exp(logs["lo"]), "hi": math.exp(logs["hi"]), "n": logs["n"], "log": logs}


def bootstrap_ci(values, statistic: str = "mean", *, n_boot: int = 4000, seed: int = 0) -> dict:
    """Percentile bootstrap 95 % interval of the ``statistic`` (``"mean"`` or ``"median"``) of ``values``.

    Resamples the values (seeds, typically) with replacement, ``n_boot`` times from a seeded
    generator (deterministic). The interval lies inside ``[min(values), max(values)]``, so it never
    leaves the quantity's range, and it does not assume a normal sample (a bimodal one stays
    visibly wide). Returns ``{"mean": the statistic, "lo", "hi", "n", "statistic"}``.
    """
    v = torch.as_tensor([float(x) for x in values], dtype=torch.float64)
    n = len(v)
    if n == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0, "statistic": statistic}
    reduce = {"mean": lambda a: a.mean(-1), "median": lambda a: torch.quantile(a, 0.5, dim=-1)}[statistic]
    gen = torch.Generator().manual_seed(seed)
    boot = reduce(v[torch.randint(n, (n_boot, n), generator=gen)])
    lo, hi = torch.quantile(boot, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return {"mean": float(reduce(v)), "lo": lo, "hi": hi, "n": n, "statistic": statistic}


def proportion_ci(successes: int, n: int) -> dict:
    """Share ``successes / n`` with its exact (Clopper-Pearson) 95 % interval: ``{"mean", "lo", "hi", "n", "k"}``."""
    from scipy.stats import beta

    k = int(successes)
    lo = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return {"mean": k / n if n else float("nan"), "lo": lo, "hi": hi, "n": n, "k": k}


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


def log_grid_extremum(x, y, mode: str = "min", *, log_y: bool = True) -> tuple[float, bool]:
    """The minimiser (or maximiser) of ``y`` over a grid ``x`` uniform in ``log x``, refined by a parabola.

    The parabola goes through the best grid point and its two neighbours in ``(log x, log y)``
    (``log_y=False``: in ``(log x, y)``). Returns ``(x_best, interior)``: ``interior`` is False when the
    best grid point is an end of the grid, i.e. the grid does not bracket the extremum (then
    ``x_best`` is that end point, and is only a bound).
    """
    sign = 1.0 if mode == "min" else -1.0
    vals = [sign * (math.log(float(v)) if log_y else float(v)) for v in y]
    k = min(range(len(vals)), key=vals.__getitem__)
    if not 0 < k < len(vals) - 1:
        return float(x[k]), False
    a, b, c = (math.log(float(x[i])) for i in (k - 1, k, k + 1))
    fa, fb, fc = vals[k - 1], vals[k], vals[k + 1]
    den = (b - a) * (fb - fc) - (b - c) * (fb - fa)
    if den == 0:
        return float(x[k]), True
    step = b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / den
    return math.exp(min(max(step, a), c)), True


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
