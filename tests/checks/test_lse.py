"""The LSE checks against real torch modules: they pass, each fails on a perturbed network, user layers are read."""

import copy

import pytest
import torch
from helpers import assert_all_pass_and_controls_fail, lse_module, write_module_file
from torch import nn

import hjsym
from hjsym import InputError, ModuleFormError
from hjsym.checks.api import suite_of
from hjsym.checks.engine import Network
from hjsym.checks.suites.lse import relu_atoms
from hjsym.networks.lse import LSELayer, lse_references, read_lse
from hjsym.networks.perturb import perturb
from hjsym.spec.registry import get

NAMES = ("identity", "pde_residual", "tropical_limit", "tropical_bound", "tropical_bound_sharp", "hopf_lax", "relu", "hessian",
         "hessian_bound", "attribution")


def test_every_check_passes_in_float64_and_fails_on_its_negative_control(lse_report):
    assert_all_pass_and_controls_fail(lse_report, NAMES)


def test_every_check_names_the_equation_it_tests(lse_derivation):
    for c in suite_of(get("lse")).checks:
        step, _, k = c.step.partition(":")
        assert lse_derivation.step(step) and int(k) <= len(lse_derivation.step(step).equations), c.name


def test_float32_passes_with_its_own_unit_roundoff():
    report = hjsym.check("lse", dtype="float32")
    assert report.passed, report.table()
    assert report.dtype == "float32" and all(c.unit_roundoff == 2.0**-24 for c in report.checks)


def test_the_reference_repository_relu_construction_fails(lse_report):
    repo = lse_report.check("relu").details["reference_repo_construction"]
    assert not repo["passed"] and repo["max_abs_err"] > 1.0  # off by order one, not by rounding
    y, g = relu_atoms(1.0, torch.float64, "reference-repo")
    assert y.shape == (501, 1) and torch.equal(g, torch.zeros(501, dtype=torch.float64))


# ----------------------------------------------------------------------------- user layers (the measurements)
@pytest.mark.parametrize("eps, N, d", [(0.3, 7, 3), (0.037, 40, 2), (7.3, 333, 33), (1e-3, 40, 2), (1e-3, 1, 1), (0.3, 1, 33)])
def test_plain_float64_user_layers_pass_and_their_bumped_twins_fail(eps, N, d):
    clean = hjsym.check("lse", lse_module(d, N, eps))
    assert clean.passed, clean.table()
    bumped = hjsym.check("lse", lse_module(d, N, eps, bump=1e-6))
    assert not bumped.passed
    assert not bumped.check("identity").passed and not bumped.check("pde_residual").passed


def test_the_residual_is_computed_in_the_modules_dtype_not_torchs_default():
    """eps = 0.3 is not a float32 number: a residual in float32 is off by 2e-8, far above the float64 tolerance."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        r = hjsym.check("lse", lse_module(2, 6, 0.3), only=["pde_residual"])
        f = hjsym.function("lse", "residual")
        assert f(eps=0.3, t=1.0, d=2).dtype == torch.float64
    finally:
        torch.set_default_dtype(default)
    assert r.passed, r.table()


def test_near_ties_at_small_temperature_get_a_tolerance_from_their_conditioning():
    r = hjsym.check("lse", lse_module(2, 40, 1e-3), only=["hessian"])
    c = r.check("hessian")
    # the scale carries the conditioning of Cov_pi(W)/eps at eps = 1e-3: max |W|^2/eps times the logits' size |z|/eps
    assert c.passed and c.details["max_scale"] > 1e5, r.table()


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


@pytest.mark.parametrize("kind", ["offset", "bump", "temperature", "quadratic"])
def test_perturbations_change_only_the_forward_pass(reference_nets, kind):
    base = reference_nets[1]
    p = perturb(base, kind, 1e-3)
    r0, r1 = read_lse(base), read_lse(p)
    assert torch.equal(r0.W, r1.W) and r0.eps == r1.eps
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.allclose(p(x), base(x), rtol=0, atol=1e-6)


def test_negative_controls_keep_route_b_on_the_original_weights(lse_ctx, reference_nets):
    net = Network("d = 2", lse_ctx.suite.read(lse_ctx, reference_nets[1]))
    moved = Network("d = 2", net.readout, lse_ctx.suite.read(lse_ctx, perturb(reference_nets[1], "weights", 1e-3)))
    assert not torch.equal(moved.a.W, net.readout.W) and moved.readout is net.readout


def test_reference_networks_are_trained_and_deterministic():
    a, b = lse_references(seed=3), lse_references(seed=3)
    for m1, m2 in zip(a.values(), b.values()):
        assert torch.equal(m1.linear.weight, m2.linear.weight)
        assert m1.train_loss < 0.05  # training did something
    fresh = hjsym.train_lse_layer(d=2, seed=302, cache=False)
    torch.testing.assert_close(fresh.linear.weight, a["LSELayer d = 2"].linear.weight, rtol=0, atol=0)


def test_unknown_check_names_are_refused():
    with pytest.raises(InputError, match="unknown check"):
        hjsym.check("lse", only=["idenity"])


def test_copy_of_module_is_untouched(reference_nets):
    before = copy.deepcopy(reference_nets[0].linear.weight)
    hjsym.check("lse", module=reference_nets[0], only=["tropical_bound"])
    assert torch.equal(before, reference_nets[0].linear.weight) and reference_nets[0].eps == 0.5


def test_a_new_lse_type_architecture_needs_a_spec_and_no_suite():
    """A spec whose network is an LSE layer with atomic data is checked by the declared LSE checks, nothing else written."""
    import dataclasses

    from hjsym.architectures.lse import SPEC

    spec = dataclasses.replace(SPEC, name="lse-copy", title="An LSE layer under another name")
    arch = hjsym.Architecture(spec, networks=lambda seed, dtype: {"d = 2": lse_module(2, 5, 0.2, seed=seed, dtype=dtype)})
    report = hjsym.check(arch, negative_controls=True)
    assert_all_pass_and_controls_fail(report, NAMES)
