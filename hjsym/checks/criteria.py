"""The criteria: when two routes agree, when a bound holds, when a statistic is consistent.

An identity ``A = B`` passes when, at every element,

    |A - B| <= k * (u * S + tiny),

with ``u`` the unit roundoff of the dtype (2^-53 in float64, 2^-24 in float32) and ``S`` the
magnitude of the terms both routes computed (:mod:`hjsym.symbolic.magnitude`: ``S`` grows with
the size of the terms and with the cancellation between them, e.g. near ties of the top logits
of a log-sum-exp at small temperature; ``tiny``, the smallest normal number of the dtype, is the
absolute error of results that underflow). A bound ``lower <= A <= B`` passes when its violation
``max(lower - A, A - B, 0)`` is at most ``k * u * S`` at every element. ``k`` is a constant per
kind of computation (:data:`K`); the scale, not ``k``, carries the numbers. A statistic (a Monte
Carlo mean, a fitted order) passes when ``|A - B|`` is within its stated tolerance (a multiple
of a standard error), given by the check.

Non-finite values on either route fail the check and are reported as such.
"""

from __future__ import annotations

import math

import torch

from .results import CheckResult

__all__ = ["K", "unit_roundoff", "tolerances", "compare", "bound", "statistic", "flat_like"]

#: ``k`` by the computation a check compares. The magnitude ``S`` is a first-order bound in
#: which every elementary operation contributes ``u |result|`` once; ``k`` covers the constant of
#: the summation (torch's reductions add up to ``~log2(n)`` roundings per term, pairwise) and,
#: for autograd, the backward pass re-running the same operations (about twice the forward's).
K = {"forward": 8.0, "autograd": 32.0}


def unit_roundoff(dtype: torch.dtype) -> float:
    """``u = eps / 2`` of a floating dtype (``2^-53`` for float64)."""
    return torch.finfo(dtype).eps / 2


def tolerances(scale, dtype: torch.dtype, rounding: str = "forward") -> torch.Tensor:
    """Per-element tolerance ``k (u S + tiny)`` for a scale ``S``.

    ``tiny`` is the dtype's smallest normal number: below it (gradual underflow) a result is off by
    up to an absolute ``tiny * u`` however small it is, which the relative term ``u S`` cannot cover
    (softmax weights of far-away atoms underflow to subnormals).
    """
    return K[rounding] * (unit_roundoff(dtype) * torch.as_tensor(scale, dtype=torch.float64) + torch.finfo(dtype).tiny)


def _max(t: torch.Tensor) -> float:
    t = t.detach()
    if t.numel() == 0:
        return 0.0
    if not bool(torch.isfinite(t).all()):
        return math.inf
    return float(t.abs().max())


def _example(a: torch.Tensor, b: torch.Tensor, point=None) -> dict:
    a, b = a.detach().reshape(-1), b.detach().reshape(-1)
    if a.numel() == 0:
        return {}
    ex = {"route_a": float(a[0]), "route_b": float(b[0]), "difference": float(a[0] - b[0])}
    if point is not None:
        ex["point"] = [float(v) for v in point.detach().reshape(-1)[:8]]
    return ex


def _worst(err: torch.Tensor, tol: torch.Tensor) -> tuple[int, float]:
    """Index of the element closest to failing and its margin ``tol / err`` (inf when every error is 0)."""
    ratio = torch.where(err > 0, err / tol.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(err))
    n = int(torch.argmax(ratio)) if ratio.numel() else 0
    worst = float(ratio[n]) if ratio.numel() else 0.0
    return n, (math.inf if worst == 0 else 1 / worst)


def flat_like(x, like: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """``x`` flattened like ``like``: a number, a tensor with ``like``'s number of elements, or one that broadcasts to its shape."""
    t = torch.as_tensor(x, dtype=dtype)
    if t.numel() == like.numel():
        return t.reshape(-1)
    try:
        return torch.broadcast_to(t, like.shape).reshape(-1)
    except RuntimeError:
        raise ValueError(f"{t.numel()} values where {like.numel()} were expected") from None


def _finite(*ts) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in ts)


def compare(name, title, a, b, scale, *, dtype, rounding="forward", route_a="", route_b="", details=None, point=None,
            step="") -> CheckResult:
    """An identity check ``A == B`` within ``k u S`` elementwise (see the module docstring)."""
    a, b = torch.as_tensor(a).reshape(-1), torch.as_tensor(b).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"check {name}: route A has {a.numel()} values, route B {b.numel()}")
    S = flat_like(scale, a)
    details = dict(details or {})
    u, k = unit_roundoff(dtype), K[rounding]
    if not _finite(a, b, S):
        details["non_finite"] = "route A" if not _finite(a) else ("route B" if not _finite(b) else "scale")
        return CheckResult(name, title, route_a, route_b, math.inf, math.inf, math.nan, False, "identity",
                           f"|A - B| <= {k:g} u S", details, _example(a, b, point), math.nan, 0.0, k, u, step)
    err = (a.double() - b.double()).abs()
    tol = tolerances(S, dtype, rounding)
    n, margin = _worst(err, tol)
    abs_err = _max(err)
    denom = _max(b)
    rel = abs_err / denom if denom > 0 else (0.0 if abs_err == 0 else math.inf)
    passed = bool((err <= tol).all())
    tol_n = float(tol[n]) if tol.numel() else 0.0
    details["max_scale"] = _max(S)
    return CheckResult(name, title, route_a, route_b, abs_err, rel, tol_n, passed, "identity", f"|A - B| <= {k:g} (u S + tiny) elementwise",
                       details, _example(a, b, point), float(S[n]) if S.numel() else 0.0, margin, k, u, step,
                       float(err[n]) if err.numel() else 0.0)


def bound(name, title, value, upper, scale, *, dtype, lower=0.0, rounding="forward", route_a="", route_b="", details=None,
          point=None, step="") -> CheckResult:
    """An inequality check ``lower <= A <= B`` (B a derived bound), violations within ``k u S``."""
    value = torch.as_tensor(value).reshape(-1)
    upper, lower_t, S = flat_like(upper, value, value.dtype), flat_like(lower, value, value.dtype), flat_like(scale, value)
    details = dict(details or {})
    u, k = unit_roundoff(dtype), K[rounding]
    if not _finite(value, upper, S):
        details["non_finite"] = "route A" if not _finite(value) else ("route B" if not _finite(upper) else "scale")
        details["min_slack"] = math.nan
        return CheckResult(name, title, route_a, route_b, math.inf, math.inf, math.nan, False, "bound",
                           f"lower <= A <= B up to {k:g} u S", details, _example(value, upper, point), math.nan, 0.0, k, u, step)
    v64, up64, lo64 = value.double(), upper.double(), lower_t.double()
    viol = torch.clamp(torch.maximum(lo64 - v64, v64 - up64), min=0)
    tol = tolerances(S, dtype, rounding)
    n, margin = _worst(viol, tol)
    worst = _max(viol)
    details["min_slack"] = float((up64 - v64).min()) if v64.numel() else math.nan
    details["max_scale"] = _max(S)
    rel = worst / max(_max(value), torch.finfo(torch.float64).tiny)
    passed = bool((viol <= tol).all())
    return CheckResult(name, title, route_a, route_b, worst, rel, float(tol[n]) if tol.numel() else 0.0, passed, "bound",
                       f"lower <= A <= B, violation <= {k:g} (u S + tiny) elementwise", details, _example(value, upper, point),
                       float(S[n]) if S.numel() else 0.0, margin, k, u, step, float(viol[n]) if viol.numel() else 0.0)


def statistic(name, title, a, b, tol, *, route_a="", route_b="", criterion="", details=None, step="") -> CheckResult:
    """A statistical check ``|A - B| <= tol`` (``tol`` a multiple of a standard error, stated in ``criterion``)."""
    a, b = torch.as_tensor(a, dtype=torch.float64).reshape(-1), torch.as_tensor(b, dtype=torch.float64).reshape(-1)
    details = dict(details or {})
    if not _finite(a, b):
        details["non_finite"] = "route A" if not _finite(a) else "route B"
        return CheckResult(name, title, route_a, route_b, math.inf, math.inf, float(tol), False, "statistic", criterion, details,
                           _example(a, b), math.nan, 0.0, math.nan, math.nan, step)
    err = _max(a - b)
    denom = _max(b)
    margin = math.inf if err == 0 else float(tol) / err
    return CheckResult(name, title, route_a, route_b, err, err / denom if denom > 0 else math.inf, float(tol), err <= tol, "statistic",
                       criterion, details, _example(a, b), math.nan, margin, math.nan, math.nan, step, err)
