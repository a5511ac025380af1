"""The variational family's real computations: the travel-time functional, its minimiser and the two Fokker-Planck solvers."""

from __future__ import annotations

import math

import pytest
import torch

from hjsym import InputError
from hjsym.networks.gradient_flow import FokkerPlanckFD, JKOParticles, gaussian_quantiles
from hjsym.networks.perturb import perturb
from hjsym.networks.variational import TravelTime, line_path, minimise_travel_time


def test_segment_times_are_exact():
    # straight line from rest: L / sqrt(g y_B / 2)
    t = TravelTime((3.0, 4.0))
    assert float(t(line_path((3.0, 4.0), 1))) == pytest.approx(5 / math.sqrt(9.81 * 4 / 2), rel=1e-14)
    # refining a straight line changes nothing (the formula is exact on every segment)
    assert float(t(line_path((3.0, 4.0), 64))) == pytest.approx(float(t(line_path((3.0, 4.0), 1))), rel=1e-13)


def test_the_minimiser_beats_the_line_and_a_deeper_start_is_faster():
    t = TravelTime((1.0, 1.0))
    path, time, _ = minimise_travel_time(t, 16)
    assert path.shape == (17, 2) and time < float(t(line_path((1.0, 1.0), 1)))
    assert float(perturb(t, "input-shift", 0.01)(path)) < time


def test_the_fd_solver_conserves_mass_and_relaxes_to_the_gibbs_density():
    fd = FokkerPlanckFD(1.0, 0.5, 6.0, 120, 8.0, 160)
    rho0 = torch.exp(-(fd.x - 1) ** 2 / 0.5)
    rho0 = rho0 / (rho0.sum() * fd.h)
    traj = fd(rho0)
    assert float(traj.sum(-1).sub(1 / fd.h).abs().max() * fd.h) < 1e-12
    gibbs = torch.exp(-fd.x ** 2 / (2 * 0.5))
    assert float((traj[-1] - gibbs / (gibbs.sum() * fd.h)).abs().max()) < 2e-3
    energy = fd.free_energy(traj)
    assert bool((energy[1:] <= energy[:-1] + 1e-12).all())  # the free energy decreases


def test_jko_particles_follow_the_virial_identity_at_equilibrium():
    n, k, eps = 200, 1.0, 0.5
    X = JKOParticles(k, eps, 1.0, 60)(gaussian_quantiles(n, 1.0, 0.1))[-1]
    assert float(X.mean()) == pytest.approx(0.0, abs=1e-10)
    assert float((X * X).sum()) * k == pytest.approx(eps * (n - 1), rel=1e-8)  # k sum X_i^2 = eps (n - 1)


def test_solvers_refuse_bad_parameters():
    with pytest.raises(InputError, match="eps"):
        FokkerPlanckFD(1.0, 0.0, 6.0, 50, 1.0, 10)
    with pytest.raises(InputError, match="increasing"):
        JKOParticles(1.0, 0.5, 0.1, 1)(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    with pytest.raises(InputError, match="positive"):
        TravelTime((1.0, -1.0))
