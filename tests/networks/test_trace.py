"""Modules read by tracing: residual updates s + h F(s) with h any constant, the activation as a module or a function,
containers of any name, tied weights, extra forward arguments, and refusals that name what lies outside."""

import pytest
import torch
from torch import nn

import hjsym
from hjsym import ModuleFormError
from hjsym.spec.registry import get
from pathlib import Path

RELU = str(Path(__file__).resolve().parents[2] / "derivations" / "spec_files" / "relu_resnet.py")
BASIC = ["forward", "hidden_states", "costates", "initial_state_gradient", "parameter_gradients"]


def _init(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / max(1, p.shape[-1]) ** 0.5)
    return module


class Stack(nn.Module):
    """Blocks kept under any name, the step as a plain float attribute, tanh called as a function."""

    def __init__(self, dt=0.3, act=torch.tanh, width=4, depth=5, extra=None):
        super().__init__()
        self.stages = nn.ModuleList([nn.ModuleList([nn.Linear(width, 7), nn.Linear(7, width)]) for _ in range(depth)])
        self.dt, self.act, self.extra = dt, act, extra
        _init(self)

    def forward(self, s):
        for first, second in self.stages:
            s = s + self.dt * second(self.act(first(s)))
        return s if self.extra is None else self.extra(s)


def check_passes_and_fails_perturbed(arch, module, **kw):
    report = hjsym.check(arch, module=module, only=BASIC, negative_controls=True, **kw)
    assert report.passed, report.table()
    assert all(not c.details["negative_control"]["passed"] for c in report.checks)
    return report


def test_a_step_size_called_dt_and_a_functional_tanh():
    report = check_passes_and_fails_perturbed("resnet", Stack(dt=0.3))
    assert "h=0.3" in report.network and "depth=5" in report.network


def test_relu_blocks_against_a_relu_spec_and_refused_by_the_tanh_spec():
    check_passes_and_fails_perturbed(RELU, Stack(act=torch.relu))
    check_passes_and_fails_perturbed(RELU, Stack(act=nn.ReLU()))
    with pytest.raises(ModuleFormError, match="uses the activation relu"):
        hjsym.check("resnet", module=Stack(act=torch.relu))


class Tied(nn.Module):
    """One block applied K times: an Euler scheme of one field."""

    def __init__(self, K=6):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 4))
        self.K, self.h = K, 1.0 / K
        _init(self)

    def forward(self, s):
        for _ in range(self.K):
            s = s + self.h * self.block(s)
        return s


def test_tied_weights_are_one_field_used_k_times():
    report = check_passes_and_fails_perturbed("resnet", Tied())
    assert "tied weights" in report.network and "depth=6" in report.network


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = Stack()

    def forward(self, s, scale):
        return self.net(s * scale)


def test_extra_forward_arguments_are_refused_with_the_fix_or_passed():
    with pytest.raises(ModuleFormError, match="--forward-kwargs"):
        hjsym.check("resnet", module=Scaled())
    with pytest.raises(ModuleFormError, match="torch.mul|mul"):  # a scale before the first step is outside the stack's steps
        hjsym.check("resnet", module=Scaled(), forward_kwargs={"scale": 2.0})

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = Stack()

        def forward(self, s, use=True):
            return self.net(s) if use else s

    check_passes_and_fails_perturbed("resnet", Gate(), forward_kwargs={"use": True})
    with pytest.raises(ModuleFormError, match="no residual update"):
        hjsym.check("resnet", module=Gate(), forward_kwargs={"use": False})


@pytest.mark.parametrize("extra, message", [
    (nn.Linear(4, 1), r"computes stages|computes extra \(Linear\).*outside the residual stack"),
    (nn.LayerNorm(4), r"LayerNorm.*outside the residual stack"),
])
def test_a_part_after_the_stack_is_named(extra, message):
    with pytest.raises(ModuleFormError, match=message):
        hjsym.check("resnet", module=Stack(extra=extra))


def test_noise_in_the_forward_is_refused():
    from hjsym.networks.control import ResidualMLP

    with pytest.raises(ModuleFormError, match="random"):
        hjsym.check("resnet", module=ResidualMLP(width=3, depth=2, sigma=0.5))


def test_the_meta_device_is_refused_with_the_fix():
    with torch.device("meta"):
        m = nn.LSTM(3, 4)
    with pytest.raises(ModuleFormError, match="meta device.*to_empty"):
        hjsym.check("lstm", module=m)


def test_an_exact_piece_asked_for_by_name_is_refused_for_a_users_module():
    with pytest.raises(hjsym.InputError, match="cannot run on a user's module"):
        hjsym.check("resnet", module=Tied(), only=["continuous_depth"])
    with pytest.raises(hjsym.InputError, match="cannot run on a user's module"):
        hjsym.check("lse", module=hjsym.train_lse_layer(d=1, steps=5), only=["relu"])


def test_errors_in_a_users_forward_are_bad_input_not_internal():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.W, self.U, self.b = (nn.Parameter(torch.zeros(*s)) for s in ((4, 4), (4, 6), (4,)))

        def forward(self, x, s0):
            raise RuntimeError("my forward is broken")

    with pytest.raises(ModuleFormError, match="my forward is broken.*test_trace.py"):
        hjsym.check(get("rnn").spec.__class__(**{**get("rnn").spec.__dict__, "name": "my-rnn"}), module=Broken())


class Twice(nn.Module):
    """A wrapper whose forward does more than its core: never checked as the core alone."""

    def __init__(self, core):
        super().__init__()
        self.core = core

    def forward(self, x):
        out = self.core(x)
        return 2 * (out[0] if isinstance(out, tuple) else out)


class Through(nn.Module):
    def __init__(self, core):
        super().__init__()
        self.core = core

    def forward(self, x, h0=None):
        return self.core(x, h0)


def test_wrappers_are_traced_whatever_the_family():
    for arch, core in (("gru", nn.GRU(3, 4)), ("lstm", nn.LSTM(3, 4)),
                       ("softplus-mlp", nn.Sequential(nn.Linear(2, 4), nn.Softplus(beta=2.0, threshold=40), nn.Linear(4, 1)))):
        with pytest.raises(ModuleFormError, match=r"mul \(\*\).*outside"):
            hjsym.check(arch, module=Twice(core))
    report = hjsym.check("gru", module=Through(nn.GRU(3, 4)), only=["forward", "costates"])
    assert report.passed
