"""The control checks against torch's own modules: they pass, and a perturbed module fails them."""

import pytest
import torch
from helpers import write_module_file
from torch import nn

import hjsym
from hjsym import InputError, ModuleFormError
from hjsym.checks.api import context, suite_of
from hjsym.networks.control import ResidualMLP, read_control
from hjsym.networks.perturb import perturb
from hjsym.networks.training import seeded
from hjsym.spec.registry import get

BASIC = ("forward", "hidden_states", "costates", "initial_state_gradient", "parameter_gradients", "input_gradient")

CONTROL = ("resnet", "rnn", "rnn-relu", "gru", "lstm", "lstm-proj", "ssm", "ssm-selective", "mgu")


def _one_reference(name):
    """The most demanding reference network of an architecture (the scripts in derivations/ check them all)."""
    nets = get(name).networks(0, torch.float64)
    return max(nets.items(), key=lambda lm: (len(read_control(lm[1], get(name).spec).layers), lm[0]))[1]


def applicable(name) -> list[str]:
    return [c.name for c in suite_of(get(name)).applicable(context(name))]


@pytest.mark.parametrize("name", CONTROL)
def test_every_basic_check_passes_within_the_rounding_of_its_terms(name):
    basic = [n for n in applicable(name) if n in BASIC]
    report = hjsym.check(name, module=_one_reference(name), only=basic)
    assert report.passed, report.table()
    for c in report.checks:
        assert c.max_abs_err <= c.tolerance and c.margin > 1 and c.unit_roundoff == 2.0**-53
        assert c.tolerance < 1e-11  # the scales are those of O(1) states over tens of steps, not a loose constant


@pytest.mark.parametrize("name", ("lstm", "ssm-selective"))
def test_each_check_fails_on_a_perturbed_module(name):
    report = hjsym.check(name, module=_one_reference(name), only=list(BASIC), negative_controls=True)
    assert report.passed, report.table()
    for c in report.checks:
        neg = c.details["negative_control"]
        assert not neg["passed"] and neg["max_abs_err"] > 10 * c.tolerance, c.name


def test_exact_pieces_pass_and_their_negative_controls_fail():
    for name, checks in (("resnet", ["continuous_depth", "kolmogorov_closed_form", "kolmogorov_monte_carlo"]),
                         ("ssm", ["lqr_finite_horizon", "lqr_infinite_horizon", "lqr_dare"])):
        report = hjsym.check(name, only=checks, negative_controls=True)
        assert report.passed, report.table()
        for c in report.checks:
            assert not c.details["negative_control"]["passed"], c.name
    order = hjsym.check("resnet", only=["continuous_depth"]).check("continuous_depth").details["fitted_order"]
    assert abs(order - 1) < 0.05


def test_negative_controls_and_applicability_are_complete():
    for name in CONTROL:
        assert all(c.negative is not None or c.standalone is not None for c in suite_of(get(name)).checks)
    assert "lqr_dare" in applicable("ssm") and "lqr_dare" not in applicable("ssm-selective")
    assert "input_gradient" not in applicable("resnet")
    with pytest.raises(InputError, match="unknown check"):
        hjsym.check("rnn", only=["lqr_dare"])


def test_float32_passes_with_its_own_unit_roundoff():
    report = hjsym.check("rnn", dtype="float32", only=["forward", "costates", "parameter_gradients"])
    assert report.passed, report.table()
    assert report.dtype == "float32" and all(c.unit_roundoff == 2.0**-24 for c in report.checks)


def test_a_users_lstm_module_float32_with_dropout_is_copied_and_checked():
    with seeded(3):
        m = nn.LSTM(5, 7, num_layers=2, dropout=0.2, batch_first=True, dtype=torch.float32)
    before = m.weight_hh_l1.detach().clone()
    report = hjsym.check("lstm", module=m, only=["forward", "costates", "initial_state_gradient", "parameter_gradients"])
    assert report.passed, report.table()
    assert any("dropout" in n for n in report.notes) and "num_layers=2" in report.network
    assert torch.equal(m.weight_hh_l1, before) and m.weight_hh_l1.dtype == torch.float32 and m.training


def test_a_module_file_with_a_factory(tmp_path):
    path = write_module_file(tmp_path / "cell.py", "def model():\n    torch.manual_seed(0)\n    return nn.GRU(3, 4)\n")
    assert hjsym.check("gru", module=f"{path}:model", only=["forward", "parameter_gradients"]).passed


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.fc = nn.LSTM(3, 4), nn.Linear(4, 1)


class Blocks(nn.Module):
    def __init__(self, extra=None, factor=1.0):
        super().__init__()
        mid = [extra] if extra is not None else []
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 5), nn.Tanh(), *mid, nn.Linear(5, 4)) for _ in range(3)])
        self.factor = factor

    def forward(self, s):
        for b in self.blocks:
            s = s + self.factor * b(s)
        return s


@pytest.mark.parametrize("arch, make, message", [
    ("lstm", Head, "layers besides its nn.LSTM 'lstm': fc"),
    ("lstm", lambda: nn.LSTM(3, 4, proj_size=2), "proj_size=2.*hjsym check lstm-proj"),
    ("lstm-proj", lambda: nn.LSTM(3, 4), "proj_size=0"),
    ("rnn", lambda: nn.RNN(3, 4, nonlinearity="relu"), "nonlinearity='relu'"),
    ("lstm", lambda: nn.GRU(3, 4), "one torch.nn.LSTM"),
    ("resnet", lambda: nn.Linear(3, 3), "has no residual step s \\+ h F\\(s\\)"),
    ("resnet", lambda: Blocks(nn.Dropout(0.1)), "Dropout"),
    ("resnet", lambda: Blocks(nn.LayerNorm(5)), "LayerNorm"),
    ("ssm", lambda: nn.Linear(3, 3), "no parameters named A, B"),
])
def test_what_cannot_be_mapped_is_named(arch, make, message):
    with pytest.raises(ModuleFormError, match=message):
        read_control(make(), get(arch).spec)


def test_the_step_size_is_read_from_the_forward_whatever_it_is_called():
    m = Blocks(factor=0.3).double()  # self.factor, not h: the trace finds s + 0.3 * block(s)
    report = hjsym.check("resnet", module=m, only=["forward", "hidden_states", "costates", "parameter_gradients"], negative_controls=True)
    assert report.passed and "h=0.3" in report.network, report.table()
    assert all(not c.details["negative_control"]["passed"] for c in report.checks)


def test_exact_pieces_are_skipped_for_a_users_module_with_a_note():
    with seeded(1):
        m = ResidualMLP(width=5, depth=3, hidden=6, h=0.5)
    report = hjsym.check("resnet", module=m)
    exact = {c.name for c in get("resnet").checks}
    assert report.passed and not {c.name for c in report.checks} & exact
    assert any("build hjsym's own networks" in n for n in report.notes)


def test_perturbed_copy_moves_every_weight_and_leaves_the_original():
    with seeded(0):
        m = nn.RNN(3, 4, dtype=torch.float64)
    p = perturb(m, "weights", 1e-6)
    for (n, a), (_, b) in zip(m.named_parameters(), p.named_parameters()):
        diff = float((a - b).detach().abs().max())
        assert 0 < diff <= 1e-6, n


@pytest.mark.parametrize("arch, make", [
    ("gru", lambda: nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True)),
    ("lstm", lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True)),
    ("rnn", lambda: nn.RNN(3, 4, bidirectional=True, bias=False)),
    ("rnn-relu", lambda: nn.RNN(3, 4, num_layers=2, nonlinearity="relu", bidirectional=True)),
    ("lstm", lambda: nn.LSTM(3, 4, num_layers=3, dropout=0.3, batch_first=True)),
    ("lstm-proj", lambda: nn.LSTM(3, 5, proj_size=2)),
    ("lstm-proj", lambda: nn.LSTM(3, 5, num_layers=2, proj_size=3, bidirectional=True, batch_first=True)),
])
def test_every_configuration_of_torchs_recurrent_modules(arch, make):
    with seeded(5):
        m = make().double()
    report = hjsym.check(arch, module=m, negative_controls=True)
    assert report.passed, report.table()
    assert all(not c.details["negative_control"]["passed"] for c in report.checks)
    if m.bidirectional:
        assert "bidirectional=True" in report.network and any("reversed sequence" in n for n in report.notes)
