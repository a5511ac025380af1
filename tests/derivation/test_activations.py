"""Activation classes derived by SymPy, the generated elementwise functions, and the MLP checks."""

import copy

import pytest
import sympy as sp
import torch
from helpers import assert_all_pass_and_controls_fail
from torch import nn

import hjsym
from hjsym import ModuleFormError
from hjsym.checks.suites.activations import depth_bound_factor
from hjsym.derivation.activations import structure_form
from hjsym.networks.mlp import make_mlp, read_mlp, relu_twin
from hjsym.reports.tables import table_latex, table_markdown

z = sp.Symbol("z", real=True)
eps = sp.Symbol("eps", positive=True)


@pytest.fixture(scope="module")
def der():
    return hjsym.derive("softplus-mlp")


@pytest.mark.parametrize("name, cls, form", [
    ("softplus", "LSE", "LSE_eps(z, 0)"),
    ("relu", "tropical", "max(z, 0)"),
    ("sigmoid", "nabla", "d/dz LSE_eps(z, 0)"),
    ("tanh", "nabla", "d/dz LSE_eps(z, -z)"),
    ("silu", "open", "z d/dz LSE_eps(z, 0)"),
    ("gelu", "open", "z * (erf(sqrt(2)*z/(2*eps))/2 + 1/2)"),
])
def test_classes_are_derived(der, name, cls, form):
    info = der.results["activation_table"][name]
    assert info["cls"] == cls and structure_form(info, plain=True) == form
    assert der.step(f"activation-{name}").status == ("derived" if cls == "open" else "verified")


def test_tropical_limits_and_errors(der):
    table = der.results["activation_table"]
    assert table["softplus"]["sigma0"] == sp.Max(0, z) and table["softplus"]["error"] == eps * sp.log(2)
    assert table["softplus"]["attained"] == eps * sp.log(2)  # the bound eps log 2 is reached at z = 0
    assert (table["tanh"]["alpha"], table["tanh"]["beta"]) == (1, -1)
    assert table["sigmoid"]["error"] == sp.exp(-sp.Abs(z) / eps)
    assert float(table["silu"]["error"] / eps) == pytest.approx(0.278465, abs=1e-6)  # W(1/e): max_u -u sigmoid(u)
    gap = table["silu"]["gap"]
    assert sp.simplify(gap - (z / (1 + sp.exp(-z / eps)) - eps * sp.log(1 + sp.exp(z / eps)))) == 0
    assert gap.subs({z: 0, eps: 1}) == -sp.log(2)


def test_softplus_unit_is_a_two_atom_layer(der):
    assert der.step("unit-softplus").status == "verified"
    assert der.results["unit_slopes"] == sp.Tuple(1, 0)
    assert der.step("depth").status == "stated"


def test_table_renderings(der):
    rows = hjsym.activation_table(der)
    assert [r["name"] for r in rows] == ["softplus", "relu", "sigmoid", "tanh", "silu", "gelu"]
    md = table_markdown(rows)
    assert md.count("\n") == 8 and r"\partial_z \mathrm{LSE}_{\varepsilon}(z, -z)" in md
    assert r"\begin{tabular}" in table_latex(rows)
    assert "activation classes" in der.text()


def test_generated_activations_are_stable(der):
    zs = torch.tensor([[-800.0, -3.0, 0.0, 3.0, 800.0]], dtype=torch.float64)
    for name in ("softplus", "sigmoid", "tanh", "silu", "gelu"):
        out = der.function(f"act_{name}")(x=zs, eps=0.5)
        assert bool(torch.isfinite(out).all()), name
    torch.testing.assert_close(der.function("act_softplus")(x=zs, eps=0.5), 0.5 * torch.logaddexp(zs / 0.5, torch.zeros(())))
    assert bool(torch.isfinite(der.function("gap_silu")(x=zs, eps=0.1)).all())
    assert "_rt.log1pexp" in der.function("act_softplus").source


def test_checks_pass_and_fail_on_perturbed_networks(softplus_report):
    assert_all_pass_and_controls_fail(softplus_report, ["softplus_layers", "relu_layers", "sigmoid_layers", "tanh_layers", "silu_gap",
                                                        "gelu_gap", "semigroup", "tropical_depth"])
    curve = softplus_report.check("tropical_depth").details["curve"]
    assert {c["depth"] for c in curve} == {1, 2, 3} and all(c["ratio"] <= 1 for c in curve)
    assert softplus_report.check("silu_gap").details["cases"][0]["max_gap"] > 0.1  # open: not an HJ step


def test_torch_default_softplus_threshold_shows_in_the_error():
    """At beta z > 20 torch returns z itself: an error eps log(1 + e^-20) ~ 2e-9 eps, 1e-10 relative at z = 20 eps."""
    gen = torch.Generator().manual_seed(0)
    net = make_mlp(2, [8], "softplus", eps=1.0, generator=gen)
    net[1] = nn.Softplus(beta=1.0)  # torch's default threshold 20
    with torch.no_grad():
        net[0].weight.mul_(60.0)  # pre-activations well beyond 20
    c = hjsym.check("softplus-mlp", module=net, only=["softplus_layers"]).check("softplus_layers")
    assert 1e-9 < c.max_abs_err < 3e-9 and {case["softplus_threshold"] for case in c.details["cases"]} == {20.0}
    assert not c.passed  # the cut-off is far above the rounding of the terms: torch's default softplus is not the HJ step
    net[1] = nn.Softplus(beta=1.0, threshold=40)
    c40 = hjsym.check("softplus-mlp", module=net, only=["softplus_layers"]).check("softplus_layers")
    assert c40.passed and c40.max_abs_err < 1e-12


def test_user_mlp_runs_the_checks_of_its_activations():
    net = make_mlp(3, [6, 5], "tanh", generator=torch.Generator().manual_seed(1))
    report = hjsym.check("softplus-mlp", module=net)
    assert [c.name for c in report.checks] == ["tanh_layers"] and report.passed


def test_depth_bound_factor_and_relu_twin():
    net = make_mlp(2, [3, 4], "softplus", eps=0.5, generator=torch.Generator().manual_seed(2))
    r = read_mlp(net)
    W1, W2, Wo = (m.weight.detach().abs() for m in (net[0], net[2], net[4]))
    expected = float(Wo.sum() + (Wo @ W2).sum())
    assert depth_bound_factor(r) == pytest.approx(expected)
    twin = relu_twin(r)
    assert isinstance(twin[1], nn.ReLU) and torch.equal(twin[2].weight, net[2].weight)


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.ELU(), nn.Linear(3, 1)), "Linear, activation"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)), "one output"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.GELU(approximate="tanh"), nn.Linear(3, 1)), "approximate"),
    (lambda: nn.Linear(2, 1), "no nn.Sequential"),
])
def test_mlps_of_the_wrong_form_are_refused(make, message):
    with pytest.raises(ModuleFormError, match=message):
        read_mlp(make())


def test_readout_hooks_do_not_change_the_module():
    net = make_mlp(2, [4], "silu", generator=torch.Generator().manual_seed(4))
    before = copy.deepcopy(net.state_dict())
    r = read_mlp(net)
    recs = r.run(torch.zeros(3, 2, dtype=torch.float64))
    assert recs[0]["z"].shape == (3, 4) and not net._forward_hooks
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("change, message", [
    (lambda s: dict(activations=(hjsym.Activation("softplus", "eps * softplus(q / eps)"),)), "unknown name 'q'"),
    (lambda s: dict(activations=(hjsym.Activation("a", "z"), hjsym.Activation("a", "2 * z"))), "declared twice"),
    (lambda s: dict(activations=(hjsym.Activation("a", "eps", variable="eps"),)), "not a declared real scalar"),
    (lambda s: dict(activations=("relu",)), "not an hjsym.Activation"),
])
def test_activation_fields_are_validated(change, message):
    import dataclasses

    from hjsym.architectures.softplus_mlp import SPEC

    with pytest.raises(hjsym.SpecError, match=message):
        dataclasses.replace(SPEC, **change(SPEC)).validate()
