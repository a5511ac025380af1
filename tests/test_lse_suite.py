"""The LSE checks against real torch modules: they pass, and each fails on a perturbed network."""

import copy

import pytest
import torch
from helpers import write_module_file
from torch import nn

import hjsym
from hjsym import InputError, ModuleFormError
from hjsym.networks.lse import LSELayer, Perturbed, read_lse
from hjsym.checks.suites.lse import CHECKS, NEGATIVE_CONTROLS, Context, reference_modules, run_negative_control


def test_every_check_passes_in_float64(lse_report):
    assert lse_report.passed, lse_report.table()
    assert [c.name for c in lse_report.checks] == list(CHECKS)
    for c in lse_report.checks:
        assert c.tolerance <= 1e-10
        assert c.max_abs_err <= c.tolerance


@pytest.mark.parametrize("name", list(CHECKS))
def test_each_check_fails_on_its_perturbed_network(lse_report, name):
    neg = lse_report.check(name).details["negative_control"]
    assert not neg["passed"], f"{name} passed on a network perturbed by {neg['perturbation']}"
    assert neg["max_abs_err"] > lse_report.check(name).tolerance


def test_negative_controls_cover_every_check():
    assert set(NEGATIVE_CONTROLS) == set(CHECKS)


def test_float32_passes_with_stated_tolerances():
    report = hjsym.check("lse", dtype="float32")
    assert report.passed, report.table()
    assert report.dtype == "float32" and all(c.tolerance >= 1e-5 for c in report.checks)


def test_the_reference_repository_relu_construction_fails(lse_fns, reference_nets):
    ctx = Context(lse_fns, torch.float64, 0)
    rs = [read_lse(n) for n in reference_nets]
    bad = run_negative_control(ctx, rs, "relu")
    assert not bad.passed and bad.max_abs_err > 1.0  # off by order one, not by rounding


def test_a_user_module_instance_and_factory(tmp_path):
    layer = hjsym.train_lse_layer(d=3, n_atoms=8, eps=0.3, seed=5, steps=50)
    assert hjsym.check("lse", module=layer, only=["identity", "pde_residual", "attribution"]).passed
    path = write_module_file(
        tmp_path / "my_net.py",
        "def model():\n    return hjsym.train_lse_layer(d=2, n_atoms=6, eps=0.2, seed=1, steps=20)\n",
    )
    report = hjsym.check("lse", module=f"{path}:model", only=["identity", "hessian"])
    assert report.passed and "d=2, N=6, eps=0.2" in report.network


class NamedTemperature(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(2, 5, dtype=torch.float64)
        self.temperature = torch.tensor(0.4, dtype=torch.float64)

    def forward(self, x):
        return self.temperature * torch.logsumexp(self.proj(x) / self.temperature, -1, keepdim=True)


def test_other_attribute_names_and_output_shapes_are_read():
    assert hjsym.check("lse", module=NamedTemperature(), only=["identity", "tropical_bound"]).passed


class NaiveLSE(LSELayer):
    """log(sum(exp)) written literally: overflows for small eps."""

    def forward(self, x):
        return self.eps * torch.log(torch.exp(self.linear(x) / self.eps).sum(-1))


def test_a_literal_log_sum_exp_overflows_and_the_check_says_so():
    layer = NaiveLSE(2, 6, 0.5, generator=torch.Generator().manual_seed(0))
    r = hjsym.check("lse", module=layer, only=["identity", "tropical_bound"])
    assert r.check("identity").passed
    trop = r.check("tropical_bound")
    assert not trop.passed and trop.details["non_finite"] == "route A"


class TwoLinears(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.eps = nn.Linear(2, 3), nn.Linear(3, 4), 0.5

    def forward(self, x):
        return self.b(self.a(x)).logsumexp(-1)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: nn.Linear(2, 3), ModuleFormError, "temperature attribute"),
        (TwoLinears, ModuleFormError, "exactly one nn.Linear"),
        (lambda: _with(LSELayer(2, 3, 0.5), lambda m: setattr(m, "eps", -1.0)), InputError, "finite number > 0"),
        (lambda: _with(LSELayer(2, 3, 0.5), lambda m: m.linear.weight.data.fill_(float("inf"))), InputError, "non-finite"),
        (lambda: _with(LSELayer(2, 3, 0.5), lambda m: setattr(m, "linear", nn.Linear(2, 3, bias=False, dtype=torch.float64))), ModuleFormError, "no bias"),
        (lambda: "not a module", ModuleFormError, "nn.Module"),
    ],
)
def test_modules_of_the_wrong_form_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        read_lse(make())


def _with(module, change):
    change(module)
    return module


def test_wrong_output_shape_is_refused():
    class PerAtom(LSELayer):
        def forward(self, x):
            return self.linear(x)

    with pytest.raises(ModuleFormError, match="one value per point"):
        read_lse(PerAtom(2, 3, 0.5))


@pytest.mark.parametrize(
    "ref, message",
    [("missing.py:model", "does not exist"), ("no_colon.py", "FILE.py:NAME"), ("{dir}/net.py:absent", "does not define 'absent'"),
     ("{dir}/net.py:needs_args", "without arguments"), ("{dir}/net.py:number", "not an nn.Module")],
)
def test_module_references_are_validated(tmp_path, ref, message):
    write_module_file(tmp_path / "net.py", "layer = hjsym.LSELayer(2, 3, 0.5)\nnumber = 3\ndef needs_args(a):\n    return a\n")
    with pytest.raises(InputError if "nn.Module" not in message else ModuleFormError, match=message):
        hjsym.check("lse", module=ref.format(dir=tmp_path))


def test_perturbations_change_only_the_forward_pass(reference_nets):
    base = reference_nets[1]
    for kind in Perturbed.KINDS:
        p = Perturbed(base, kind, 1e-3)
        r0, r1 = read_lse(base), read_lse(p)
        assert torch.equal(r0.W, r1.W) and r0.eps == r1.eps
        x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            assert not torch.allclose(p(x), base(x), rtol=0, atol=1e-6)


def test_reference_networks_are_trained_and_deterministic():
    a, b = reference_modules(seed=3), reference_modules(seed=3)
    for m1, m2 in zip(a, b):
        assert torch.equal(m1.linear.weight, m2.linear.weight)
        assert m1.train_loss < 0.05  # training did something
    fresh = hjsym.train_lse_layer(d=2, seed=302, cache=False)
    torch.testing.assert_close(fresh.linear.weight, a[1].linear.weight, rtol=0, atol=0)


def test_unknown_check_names_are_refused():
    with pytest.raises(InputError, match="unknown check"):
        hjsym.check("lse", only=["idenity"])


def test_copy_of_module_is_untouched(reference_nets):
    before = copy.deepcopy(reference_nets[0].linear.weight)
    hjsym.check("lse", module=reference_nets[0], only=["tropical_bound"])
    assert torch.equal(before, reference_nets[0].linear.weight) and reference_nets[0].eps == 0.5
