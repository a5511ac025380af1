"""Specs: validate() catches unbound, unused and inconsistent symbols before anything is derived."""

import dataclasses

import pytest

from hjsym import AtomicData, Network, Scalar, SpecError, Tensor
from hjsym.architectures.lse import SPEC


def with_(**changes):
    return dataclasses.replace(SPEC, **changes)


def test_the_lse_spec_validates():
    sym = SPEC.validate()
    assert sym.hamiltonian is not None and sym.network is not None
    assert [a.name for a in sym.args_of(sym.network)] == ["x", "eps", "W", "b"]


def test_key_is_stable_and_changes_with_the_spec():
    assert SPEC.key() == SPEC.key()
    assert with_(viscosity="2*eps").key() != SPEC.key()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"hamiltonian": "norm2(q)"}, "unknown name 'q'"),
        ({"hamiltonian": "p**2"}, "not a scalar"),
        ({"hamiltonian": "eps"}, "does not involve p"),
        ({"viscosity": "-eps"}, "negative"),
        ({"viscosity": "sum(x)"}, "viscosity depends on"),
        ({"name": "LSE layer"}, "slug"),
        ({"family": "magic"}, "family"),
        ({"network": None}, "needs a network"),
        ({"network": Network(output="eps * lse((dot(W, x) + b) / eps)", weights=("W", "b", "Q"))}, "'Q' is not a declared tensor"),
        ({"initial_data": AtomicData(points="g", values="y")}, "initial data points"),
        ({"diffusion": "W"}, "diffusion"),
    ],
)
def test_inconsistent_specs_are_refused(changes, message):
    with pytest.raises(SpecError, match=message):
        with_(**changes).validate()


def test_unused_and_duplicate_symbols():
    extra = SPEC.symbols + (Scalar("sigma"),)
    with pytest.raises(SpecError, match="never used: sigma"):
        with_(symbols=extra).validate()
    with pytest.raises(SpecError, match="declared twice"):
        with_(symbols=SPEC.symbols + (Tensor("W", ("atom",)),)).validate()
    with pytest.raises(SpecError, match="axes"):
        with_(symbols=SPEC.symbols[:1] + (Tensor("W", ("neuron", "dim")),) + SPEC.symbols[2:]).validate()


def test_all_problems_are_reported_at_once():
    with pytest.raises(SpecError) as info:
        with_(hamiltonian="norm2(q)", viscosity="-eps").validate()
    assert "unknown name 'q'" in info.value.problem and "negative" in info.value.problem


def test_unsafe_strings_never_run():
    with pytest.raises(SpecError, match="only plain function names"):
        with_(hamiltonian="__import__('os').system('touch /tmp/hjsym-pwned')").validate()
