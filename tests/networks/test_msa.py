"""E-MSA as a torch optimiser: it trains a residual MLP through hjsym's generated forward and adjoint programs."""

import pytest
import torch

import hjsym.codegen.adjoint_sweep as sweep
from hjsym.networks.control import ResidualMLP
from hjsym.networks.msa import EMSA, augmented_hamiltonian
from hjsym.networks.training import seeded


def _problem():
    with seeded(0):
        trunk, head = ResidualMLP(6, 3, 5, h=1 / 3), torch.nn.Linear(6, 3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(32, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (32,), generator=gen)
    return trunk, head, x, y


def test_emsa_lowers_the_loss_and_runs_the_generated_sweeps(monkeypatch):
    trunk, head, x, y = _problem()
    calls = {"rollout": 0, "costates": 0}
    for name in calls:
        real = getattr(sweep, name)

        def counted(*a, real=real, name=name, **k):
            calls[name] += 1
            return real(*a, **k)

        monkeypatch.setattr(f"hjsym.networks.msa.{name}", counted)
    opt = EMSA(trunk, head, rho=1.0, inner_steps=5)
    ce = torch.nn.functional.cross_entropy
    first = opt.step(x, lambda z: ce(z, y))
    for _ in range(4):
        last = opt.step(x, lambda z: ce(z, y))
    with torch.no_grad():
        final = float(ce(head(trunk(x)), y))
    assert final < last < first and calls == {"rollout": 5, "costates": 5}


def test_the_augmented_hamiltonian_is_the_hamiltonian_at_the_current_controls():
    trunk, _, x, _ = _problem()
    from hjsym.codegen.pipeline import load_functions
    from hjsym.networks.control import read_control
    from hjsym.spec.registry import get

    spec = get("resnet").spec
    fns = load_functions(spec)
    r = read_control(trunk, spec)
    traj = sweep.rollout(fns, spec, r.layers[0], None, {"s": x}, r.step_size, n_steps=3)
    lam = torch.randn_like(x)
    back = sweep.costates(fns, spec, r.layers[0], traj, r.step_size, {"s": lam})
    theta = r.layers[0].controls[0]
    value = augmented_hamiltonian(fns, x, back.costates[1]["s"], traj.states[1]["s"], back.costates[0]["s"], theta, r.step_size, 1e3)
    plain = (r.step_size * fns["hamiltonian"](s=x, p=back.costates[1]["s"], **theta)).mean()
    assert float(value - plain) == pytest.approx(0.0, abs=1e-12)  # both penalties vanish at the current iterate
