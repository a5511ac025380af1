"""Numerical solvers of the Fokker-Planck equation ``d_t rho = d_x(k x rho) + eps d_xx rho`` (1-D), as torch modules.

Two routes that know nothing of the derivation's closed forms, each an ``nn.Module`` with an ``eps``
attribute (so that the ``temperature`` perturbation of :mod:`hjsym.networks.perturb` runs it at a
different temperature than it reports):

* :class:`FokkerPlanckFD`: finite volumes on ``[-L, L]`` (cell averages, central fluxes, no flux
  through the boundary, so mass is conserved exactly) and Crank-Nicolson in time: second order in
  the cell size and the time step;
* :class:`JKOParticles`: the JKO scheme ``rho_{n+1} = argmin F[rho] + W_2^2(rho, rho_n)/(2 tau)`` in
  mass coordinates (Lagrangian particles at the quantiles ``(i - 1/2)/n``): in one dimension the
  optimal map is monotone, ``W_2^2 = (1/n) sum (X_i - X^n_i)^2``, the potential energy is
  ``(1/n) sum V(X_i)`` and the entropy ``-(1/n) sum log(n (X_{i+1} - X_i))``; every step is a
  strictly convex minimisation, solved by Newton's method with the tridiagonal Hessian.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import solve_banded
from torch import nn

from .._errors import InputError

__all__ = ["FokkerPlanckFD", "JKOParticles", "gaussian_quantiles"]


def _positive(**values):
    for name, v in values.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InputError(f"{name} = {v!r} must be a finite number > 0", f"pass a positive {name}")


class FokkerPlanckFD(nn.Module):
    """Finite volumes + Crank-Nicolson for ``d_t rho = d_x(k x rho) + eps d_xx rho`` on ``[-L, L]``.

    ``forward(rho0)``: cell averages ``(cells,)`` at t = 0 -> ``(steps + 1, cells)`` at ``t = j T / steps``.
    ``x`` holds the cell centres, ``h`` the cell size.
    """

    def __init__(self, k: float, eps: float, half_width: float, cells: int, T: float, steps: int):
        super().__init__()
        _positive(eps=eps, half_width=half_width, T=T)
        if k < 0 or cells < 4 or steps < 1:
            raise InputError(f"k = {k}, cells = {cells}, steps = {steps}", "use k >= 0, at least 4 cells and 1 step")
        self.k, self.eps, self.L, self.cells, self.T, self.steps = float(k), float(eps), float(half_width), int(cells), float(T), int(steps)
        self.h = 2 * self.L / self.cells
        self.x = -self.L + self.h * (torch.arange(self.cells, dtype=torch.float64) + 0.5)

    def operator(self) -> torch.Tensor:
        """The matrix ``A`` of ``d rho / dt = A rho`` (the divergence of the central fluxes, zero at the boundary)."""
        n, h = self.cells, self.h
        faces = -self.L + h * torch.arange(1, n, dtype=torch.float64)  # interior faces
        A = torch.zeros(n, n, dtype=torch.float64)
        i = torch.arange(n - 1)
        # flux through face i+1/2: -eps (rho_{i+1} - rho_i)/h - k x_f (rho_i + rho_{i+1})/2, entering cell i+1, leaving cell i
        cl = self.eps / h - self.k * faces / 2  # coefficient of rho_i in the flux (sign: F = cl rho_i - cr rho_{i+1})
        cr = self.eps / h + self.k * faces / 2
        A[i, i] -= cl / h
        A[i, i + 1] += cr / h
        A[i + 1, i] += cl / h
        A[i + 1, i + 1] -= cr / h
        return A

    def free_energy(self, rho: torch.Tensor) -> torch.Tensor:
        """``F[rho] = int (k x^2/2) rho + eps rho log rho dx`` by the midpoint rule on the cells: ``(*batch, cells) -> (*batch,)``."""
        return self.h * (self.k * self.x ** 2 / 2 * rho + self.eps * torch.special.xlogy(rho, rho)).sum(-1)

    def forward(self, rho0: torch.Tensor) -> torch.Tensor:
        tau = self.T / self.steps
        A = self.operator()
        eye = torch.eye(self.cells, dtype=torch.float64)
        lu = torch.linalg.lu_factor(eye - tau / 2 * A)
        explicit = eye + tau / 2 * A
        out = [rho0.to(torch.float64)]
        for _ in range(self.steps):
            out.append(torch.linalg.lu_solve(*lu, (explicit @ out[-1])[:, None])[:, 0])
        return torch.stack(out)


def gaussian_quantiles(n: int, mean: float, var: float) -> torch.Tensor:
    """``n`` particles at the quantiles ``(i - 1/2)/n`` of ``N(mean, var)``: ``(n,)``."""
    m = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return mean + math.sqrt(2 * var) * torch.special.erfinv(2 * m - 1)


class JKOParticles(nn.Module):
    """The JKO scheme of ``F = int (k x^2/2) rho + eps int rho log rho`` in mass coordinates (see the module docstring).

    ``forward(X0)``: sorted particles ``(n,)`` -> ``(steps + 1, n)`` after each JKO step of size ``tau``.
    """

    def __init__(self, k: float, eps: float, tau: float, steps: int, *, newton_tol: float = 1e-13, max_newton: int = 100):
        super().__init__()
        _positive(eps=eps, tau=tau)
        if k < 0 or steps < 1:
            raise InputError(f"k = {k}, steps = {steps}", "use k >= 0 and at least 1 step")
        self.k, self.eps, self.tau, self.steps = float(k), float(eps), float(tau), int(steps)
        self.newton_tol, self.max_newton = newton_tol, max_newton
        self.newton_iterations: list[int] = []

    def objective(self, X: np.ndarray, prev: np.ndarray) -> float:
        n = X.size
        gaps = np.diff(X)
        if np.any(gaps <= 0):
            return math.inf
        return float((self.k * X @ X / 2 - self.eps * np.log(n * gaps).sum() + ((X - prev) ** 2).sum() / (2 * self.tau)) / n)

    def step(self, prev: np.ndarray) -> np.ndarray:
        n, eps, tau, k = prev.size, self.eps, self.tau, self.k
        X = prev.copy()
        for it in range(1, self.max_newton + 1):
            gaps = np.diff(X)
            inv, inv2 = 1 / gaps, 1 / gaps ** 2
            grad = k * X + (X - prev) / tau
            grad[1:] -= eps * inv
            grad[:-1] += eps * inv
            diag = np.full(n, k + 1 / tau)
            diag[1:] += eps * inv2
            diag[:-1] += eps * inv2
            bands = np.zeros((3, n))
            bands[0, 1:] = -eps * inv2
            bands[1] = diag
            bands[2, :-1] = -eps * inv2
            delta = solve_banded((1, 1), bands, -grad)
            base, alpha = self.objective(X, prev), 1.0
            while alpha > 1e-12 and not self.objective(X + alpha * delta, prev) <= base:
                alpha /= 2
            X = X + alpha * delta
            if float(np.abs(alpha * delta).max()) < self.newton_tol * max(1.0, float(np.abs(X).max())):
                break
        self.newton_iterations.append(it)
        return X

    def forward(self, X0: torch.Tensor) -> torch.Tensor:
        X = X0.detach().to(torch.float64).numpy().copy()
        if np.any(np.diff(X) <= 0):
            raise InputError("the particles are not strictly increasing", "sort them (they are the quantiles of the density)")
        out = [X]
        for _ in range(self.steps):
            out.append(self.step(out[-1]))
        return torch.tensor(np.stack(out), dtype=torch.float64)
