"""Validation of the variational family's specs: one functional, every name declared, no eval."""

from __future__ import annotations

import pytest

from hjsym import SpecError
from hjsym.architectures.brachistochrone import SPEC as BRACHISTOCHRONE
from hjsym.architectures.fokker_planck import SPEC as FOKKER_PLANCK
from hjsym.architectures.mean_field import SPEC as MEAN_FIELD
from hjsym.spec.spec import Functional, GradientFlow, Scalar, Spec


def _curve(**changes):
    base = dict(name="curve", title="a curve", family="variational",
                symbols=(Scalar("x", positive=False), Scalar("y"), Scalar("yp", positive=False)),
                functional=Functional("sqrt(1 + yp**2)", variable="x", unknowns=(("y", "yp"),)))
    base.update(changes)
    return Spec(**base)


@pytest.mark.parametrize("spec", [BRACHISTOCHRONE, FOKKER_PLANCK, MEAN_FIELD], ids=lambda s: s.name)
def test_the_shipped_specs_validate(spec):
    sym = spec.validate()
    assert sym.variational["kind"] in ("functional", "gradient_flow", "mean_field")


def test_a_curve_needs_no_state_and_its_variables_are_per_point():
    sym = _curve().validate()
    assert sym.x is None and sym.p is None
    assert {"x", "y", "yp"} <= sym.pointwise
    assert sym.arg("y").per_point and not sym.arg("y").batched


@pytest.mark.parametrize("changes, message", [
    ({"functional": None}, "exactly one of functional"),
    ({"family": "exact", "symbols": (Scalar("s", positive=False), Scalar("y"), Scalar("yp", positive=False)),
      "functional": Functional("sqrt(1 + yp**2)", variable="s", unknowns=(("y", "yp"),))}, "functional is set but the family is 'exact'"),
    ({"functional": Functional("sqrt(1 + yq**2)", variable="x", unknowns=(("y", "yp"),))}, "unknown name 'yq'"),
    ({"functional": Functional("sqrt(1 + yp**2)", variable="x", unknowns=(("y", "zp"),))}, "derivative 'zp'"),
    ({"functional": Functional("sqrt(1 + yp**2)", variable="x", unknowns=("y",))}, "name pairs"),
    ({"functional": Functional("__import__('os').system('true')", variable="x", unknowns=(("y", "yp"),))}, "only plain function names"),
    ({"gradient_flow": GradientFlow("rho * log(rho)")}, "exactly one of"),
])
def test_bad_variational_specs_name_the_problem(changes, message):
    with pytest.raises(SpecError, match=message):
        _curve(**changes).validate()


def test_a_gradient_flow_needs_a_positive_density_and_declared_initial_data():
    symbols = (Scalar("x", positive=False), Scalar("rho", positive=False), Scalar("V", positive=False), Scalar("eps"))
    with pytest.raises(SpecError, match="positive=True"):
        Spec(name="gf", title="gf", family="variational", symbols=symbols, gradient_flow=GradientFlow("V * rho + eps * rho * log(rho)")).validate()
    symbols = (Scalar("x", positive=False), Scalar("rho"), Scalar("V", positive=False), Scalar("eps"), Scalar("k"))
    with pytest.raises(SpecError, match="initial mean 'm0'"):
        Spec(name="gf", title="gf", family="variational", symbols=symbols,
             gradient_flow=GradientFlow("V * rho + eps * rho * log(rho)", example="k * x**2 / 2")).validate()
