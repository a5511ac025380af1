"""The variational family's real computations: a discretised travel-time functional and its direct minimisation.

:class:`TravelTime` is the brachistochrone's functional on polylines, a torch module: a bead released at
rest at the origin (``y`` down) slides along straight segments; on a segment from depth ``y0`` to ``y1``
of length ``L`` the speed is ``sqrt(2 g y)`` and the time exactly ``sqrt(2/g) L / (sqrt(y0) + sqrt(y1))``
(integrable at the start, where the speed is 0). :func:`minimise_travel_time` finds the fastest
``n``-segment path by L-BFGS over the interior depths: the direct route the derived cycloid is
checked against.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._errors import InputError

__all__ = ["TravelTime", "minimise_travel_time", "line_path", "circle_path", "brachistochrone_references", "ENDPOINTS"]

#: The endpoints of the reference problems: the bottom of the cycloid of radius 1 (theta_B = pi), and a point
#: before its bottom (theta_B ~ 2.41).
ENDPOINTS = ((math.pi, 2.0), (1.0, 1.0))


class TravelTime(nn.Module):
    """Travel time of a bead from rest along polylines.

    ``forward(path)``: ``path`` is ``(*batch, n + 1, 2)`` points ``(x, y)`` from the start (depth 0) to the
    end, ``y >= 0`` pointing down; returns ``(*batch,)`` times. ``g`` is gravity and ``end`` the
    endpoint the minimisation connects the origin to.
    """

    def __init__(self, end: tuple[float, float], g: float = 9.81):
        super().__init__()
        if not (end[0] > 0 and end[1] > 0 and g > 0 and all(map(math.isfinite, (*end, g)))):
            raise InputError(f"endpoint {end} and gravity {g} must be finite and positive", "pass end=(x_B, y_B) with x_B, y_B > 0")
        self.end = (float(end[0]), float(end[1]))
        self.g = float(g)

    def forward(self, path: torch.Tensor) -> torch.Tensor:
        seg = path[..., 1:, :] - path[..., :-1, :]
        length = torch.sqrt((seg * seg).sum(-1))
        depth = path[..., 1].clamp_min(0)
        root = torch.sqrt(depth)
        return (math.sqrt(2 / self.g) * length / (root[..., :-1] + root[..., 1:])).sum(-1)


def _path(x: torch.Tensor, interior: torch.Tensor, end_y: float) -> torch.Tensor:
    y = torch.cat([torch.zeros(1, dtype=x.dtype), interior, torch.tensor([end_y], dtype=x.dtype)])
    return torch.stack([x, y], -1)


def line_path(end, n: int, dtype=torch.float64) -> torch.Tensor:
    """The straight line from the origin to ``end`` in ``n`` segments: ``(n + 1, 2)``."""
    s = torch.linspace(0, 1, n + 1, dtype=dtype)
    return torch.stack([end[0] * s, end[1] * s], -1)


def circle_path(end, n: int, dtype=torch.float64) -> torch.Tensor:
    """The arc from the origin to ``end`` of the circle through both that starts vertically (centre on the x axis): ``(n + 1, 2)``.

    Its points are denser near the start, where the bead is slow (the time of a polyline converges as the arc is refined).
    """
    xb, yb = end
    r = (xb * xb + yb * yb) / (2 * xb)
    phi_end = math.atan2(yb, r - xb) if xb <= r else math.pi - math.atan2(yb, xb - r)
    s = torch.linspace(0, 1, n + 1, dtype=dtype)
    phi = phi_end * s ** 2
    return torch.stack([r - r * torch.cos(phi), r * torch.sin(phi)], -1)


def minimise_travel_time(module: nn.Module, n: int, *, dtype=torch.float64, iterations: int = 4000, tol: float = 1e-15):
    """The fastest ``n``-segment path from the origin to ``module.end`` on the uniform grid ``x_i = x_B i / n``.

    L-BFGS (strong Wolfe line search) over the interior depths, started on the straight line; the
    depths are ``softplus`` of the variables so that the path stays below the start. Returns
    ``(path (n + 1, 2), time, iterations)``.
    """
    xb, yb = module.end
    x = torch.linspace(0, xb, n + 1, dtype=dtype)
    start = (yb * x[1:-1] / xb).clamp_min(1e-12)
    raw = torch.log(torch.expm1(start)).clone().requires_grad_(True)  # softplus^-1
    opt = torch.optim.LBFGS([raw], lr=1.0, max_iter=iterations, tolerance_grad=tol, tolerance_change=1e-300, history_size=50,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        t = module(_path(x, torch.nn.functional.softplus(raw), yb))
        t.backward()
        return t

    opt.step(closure)
    with torch.no_grad():
        path = _path(x, torch.nn.functional.softplus(raw), yb)
        return path, float(module(path)), int(opt.state[opt._params[0]]["n_iter"])


def brachistochrone_references(seed: int = 0, dtype=torch.float64) -> dict:
    """``{label: TravelTime}`` for each endpoint of :data:`ENDPOINTS` (g = 9.81; deterministic, the seed is unused)."""
    return {f"TravelTime to ({xb:.4g}, {yb:.4g})": TravelTime((xb, yb)) for xb, yb in ENDPOINTS}
