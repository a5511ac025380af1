"""Piecewise-linear and multi-part control specs: max, min, relu, abs derive and generate code; a user's IndRNN, a
coupled-oscillator RNN (state in two parts) and torch's nn.RNN(relu) are checked, and fail when perturbed."""

import pytest
import sympy as sp
import torch
from torch import nn

import hjsym
from hjsym import Dynamics, Scalar, Spec, SpecError, Tensor
from hjsym.symbolic.gates import Relu, Step, from_gates, to_gates

INDRNN = Spec(name="indrnn", title="IndRNN", family="control", state="s",
              symbols=(Scalar("h"), Tensor("x", ("input",)), Tensor("u", ("dim",)), Tensor("W", ("dim", "input")), Tensor("b", ("dim",))),
              dynamics=Dynamics(field="max(W @ x + u * s + b, 0) - s", controls=("W", "u", "b"), step_size="h", inputs=("x",)))


class IndRNN(nn.Module):
    """Li et al. (2018): s' = relu(W x + u * s + b), the recurrent weight a vector."""

    def __init__(self, n_x=3, d=5, zero=False):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        scale = 0.0 if zero else 1.0
        self.W = nn.Parameter(scale * 0.5 * torch.randn(d, n_x, generator=g))
        self.u = nn.Parameter(scale * torch.rand(d, generator=g))
        self.b = nn.Parameter(scale * 0.1 * torch.randn(d, generator=g))

    def forward(self, x, s0):
        s, out = s0, []
        for k in range(x.shape[1]):
            s = torch.relu(x[:, k] @ self.W.T + self.u * s + self.b)
            out.append(s)
        return torch.stack(out, 1)


def test_relu_min_max_abs_become_gates_with_a_stated_subgradient():
    z, c = sp.Symbol("z", real=True), sp.Symbol("c", real=True)
    assert to_gates(sp.Max(z, 0)) == Relu(z)
    assert to_gates(sp.Min(z, c)) == z - Relu(z - c)
    assert sp.diff(Relu(z), z) == Step(z) and sp.diff(Step(z), z) == 0
    back = from_gates(to_gates(sp.Max(z, c)))
    assert all(back.subs({z: a, c: b}) == max(a, b) for a in (-2, 0, 3) for b in (-1, 0, 2))
    d = hjsym.derive(INDRNN)
    step = d.step("piecewise")
    assert step.status == "stated" and r"\operatorname{relu}'(0) = 0" in step.reason
    assert "kinks" in d.functions and "torch.heaviside" in d.function("costate_step").source


def test_a_users_indrnn_passes_and_its_perturbed_twin_fails():
    report = hjsym.check(INDRNN, module=IndRNN(), negative_controls=True)
    assert report.passed, report.table()
    for c in report.checks:
        assert not c.details["negative_control"]["passed"], c.name
    kinks = report.check("forward").details["kink_set"]
    assert kinks["values"] > 0 and kinks["at_kink"] == 0 and kinks["min_distance"] > 0
    assert any("piecewise-linear step" in n for n in report.notes)


def test_at_the_kink_the_convention_is_torchs_relu():
    report = hjsym.check(INDRNN, module=IndRNN(zero=True), only=["forward", "costates", "parameter_gradients"])
    assert report.passed, report.table()
    kinks = report.check("forward").details["kink_set"]
    assert kinks["at_kink"] > 0 and kinks["min_distance"] == 0  # every pre-activation sits on the kink, and still agrees


def test_abs_and_min_in_a_field():
    spec = Spec(name="absmin", title="abs and min", family="control", state="s",
                symbols=(Scalar("h"), Tensor("x", ("input",)), Tensor("W", ("dim", "dim")), Tensor("U", ("dim", "input"))),
                dynamics=Dynamics(field="min(abs(W @ s + U @ x), 1) - s", controls=("W", "U"), step_size="h", inputs=("x",)))

    class Cell(nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(1)
            self.W, self.U = nn.Parameter(torch.randn(4, 4, generator=g) / 2), nn.Parameter(torch.randn(4, 2, generator=g))

        def forward(self, x, s0):
            s, out = s0, []
            for k in range(x.shape[1]):
                s = torch.clamp((s @ self.W.T + x[:, k] @ self.U.T).abs(), max=1.0)
                out.append(s)
            return torch.stack(out, 1)

    report = hjsym.check(spec, module=Cell(), negative_controls=True)
    assert report.passed, report.table()
    assert all(not c.details["negative_control"]["passed"] for c in report.checks)


CORNN = Spec(name="cornn", title="Coupled oscillatory RNN", family="control", state=("y", "z"),
             symbols=(Scalar("dt"), Scalar("gamma"), Scalar("eps"), Tensor("x", ("input",)), Tensor("W", ("dim", "dim")),
                      Tensor("Wz", ("dim", "dim")), Tensor("V", ("dim", "input")), Tensor("b", ("dim",))),
             dynamics=Dynamics(field=(("y", "z + dt * (tanh(W @ y + Wz @ z + V @ x + b) - gamma * y - eps * z)"),
                                      ("z", "tanh(W @ y + Wz @ z + V @ x + b) - gamma * y - eps * z")),
                               controls=("W", "Wz", "V", "b", "gamma", "eps"), step_size="dt", inputs=("x",)))


class CoRNN(nn.Module):
    """Rusch & Mishra (2021), IMEX form: z' = z + dt (tanh(W y + Wz z + V x + b) - gamma y - eps z), y' = y + dt z'."""

    def __init__(self, n_x=3, d=6, dt=0.1):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W = nn.Parameter(torch.randn(d, d, generator=g) / d**0.5)
        self.Wz = nn.Parameter(torch.randn(d, d, generator=g) / d**0.5)
        self.V = nn.Parameter(torch.randn(d, n_x, generator=g))
        self.b = nn.Parameter(0.1 * torch.randn(d, generator=g))
        self.gamma, self.eps = nn.Parameter(torch.tensor(2.0)), nn.Parameter(torch.tensor(0.5))
        self.dt = dt

    def forward(self, x, y0, z0):
        y, z, ys, zs = y0, z0, [], []
        for k in range(x.shape[1]):
            z = z + self.dt * (torch.tanh(y @ self.W.T + z @ self.Wz.T + x[:, k] @ self.V.T + self.b) - self.gamma * y - self.eps * z)
            y = y + self.dt * z
            ys.append(y)
            zs.append(z)
        return torch.stack(ys, 1), torch.stack(zs, 1)


def test_a_two_part_state_is_read_without_package_code():
    report = hjsym.check(CORNN, module=CoRNN(), negative_controls=True)
    assert report.passed, report.table()
    assert "state y + z" in report.network and "dt=0.1" in report.network
    assert all(not c.details["negative_control"]["passed"] for c in report.checks)


def test_a_state_tuple_must_name_the_fields():
    with pytest.raises(SpecError, match="does not name the parts"):
        Spec(name="bad", title="bad", family="control", state=("y", "q"), symbols=CORNN.symbols, dynamics=CORNN.dynamics)


def test_torch_rnn_relu_is_its_own_architecture():
    m = nn.RNN(3, 5, num_layers=2, nonlinearity="relu", batch_first=True)
    report = hjsym.check("rnn-relu", module=m, negative_controls=True)
    assert report.passed, report.table()
    assert all(not c.details["negative_control"]["passed"] for c in report.checks)
    with pytest.raises(hjsym.ModuleFormError, match="hjsym check rnn-relu"):
        hjsym.check("rnn", module=m)
