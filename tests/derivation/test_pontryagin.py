"""The control family's derivation: steps, verifications, classification and generated functions."""

import pytest
import sympy as sp
import torch

import hjsym
from hjsym import Claim, Dynamics, Scalar, Spec, SpecError, Tensor
from hjsym.spec.parse import Namespace, parse
from hjsym.symbolic.gates import DSigmoid, DTanh, Sigmoid, Softplus, Tanh, from_gates, to_gates

CONTROL = ("resnet", "rnn", "gru", "lstm", "ssm", "ssm-selective", "mgu")


@pytest.fixture(scope="module", params=CONTROL)
def derivation(request):
    return hjsym.derive(request.param)


def _status(d, id):
    return d.step(id).status


def test_every_control_derivation_verifies_its_identities(derivation):
    ids = [s.id for s in derivation.steps]
    for needed in ("step-map", "control-hamiltonian", "hamilton-equations", "discrete-costate", "parameter-gradient",
                   "backprop", "continuous-limit", "value-function", "euler-gap"):
        assert needed in ids, needed
    assert not [s.id for s in derivation.steps if s.status == "failed"]
    for verified in ("hamilton-equations", "backprop"):
        assert _status(derivation, verified) == "verified"
    if derivation.spec.dynamics.definitions or derivation.name in ("resnet", "rnn"):
        assert _status(derivation, "chain-rule-check") == "verified"
    for s in derivation.steps:
        if s.id.startswith("claim-"):
            assert s.status == "verified", s.title


def test_classification_and_gap_terms():
    exact = {"ssm", "ssm-selective"}
    for name in CONTROL:
        c = hjsym.derive(name).classification
        assert c.kind == ("exact" if name in exact else "structural"), name
        assert (c.gap == 0) == (name in exact)
    gru = hjsym.derive("gru").classification.statement
    assert "update gate" in gru and "torch's GRU update" not in gru  # conventions are not structure
    assert "gated Euler step" in hjsym.derive("lstm").classification.statement


def test_viscosity_is_derived_as_half_sigma_squared():
    d = hjsym.derive("resnet")
    sigma = sp.Symbol("sigma", real=True)
    assert sp.simplify(d.results["noise_viscosity"] - sigma ** 2 / 2) == 0


def test_riccati_equation_from_the_hjb_equation():
    d = hjsym.derive("ssm")
    assert _status(d, "riccati") == "verified" and _status(d, "exact-flow") == "verified"
    text = sp.sstr(d.results["riccati_rhs"])
    assert "Q[k, l]" in text and "/r" in text and "A[k]*P[k, l]" in text
    # the continuous limit dt -> 0 of the zero-order-hold field, by SymPy
    assert "A[i]*s[i]" in sp.sstr(d.results["continuous_field"]["s"])


def test_generated_functions_of_a_control_derivation(derivation):
    names = set(derivation.functions)
    assert {"step", "field", "forward_step", "hamiltonian", "costate_step", "parameter_gradient", "adjoint_step",
            "costate_step_saved", "parameter_gradient_saved", "continuous_field", "continuous_costate_rhs"} <= names
    f = derivation.function("costate_step")
    assert f.outputs and f.unchecked is not f._fn


def test_costate_step_is_backprop_through_one_rnn_step():
    d = hjsym.derive("rnn")
    gen = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    s, x, W, U, b, p = r(3, 4), r(3, 2), r(4, 4), r(4, 2), r(4), r(3, 4)
    h = 0.7
    sg = s.clone().requires_grad_(True)
    nxt = sg + h * (torch.tanh(sg @ W.T + x @ U.T + b) - sg)
    (want,) = torch.autograd.grad(nxt, sg, grad_outputs=p)
    got = d.function("costate_step")(s=s, x=x, W=W, U=U, b=b, h=h, p=p)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
    unchecked = d.function("costate_step").unchecked(s=s, x=x, W=W, U=U, b=b, h=h, p=p)
    torch.testing.assert_close(unchecked, got, rtol=0, atol=0)


def test_gates_rewrite_and_differentiate_as_one_node():
    z = sp.Symbol("z", real=True)
    assert to_gates(1 / (1 + sp.exp(-z))) == Sigmoid(z)
    assert to_gates(sp.log(1 + sp.exp(z))) == Softplus(z)
    assert to_gates(sp.tanh(z)) == Tanh(z)
    assert sp.diff(Tanh(z), z) == DTanh(Tanh(z)) and sp.diff(Sigmoid(z), z) == DSigmoid(Sigmoid(z))
    assert sp.simplify(from_gates(sp.diff(Softplus(z), z)) - 1 / (1 + sp.exp(-z))) == 0
    assert sp.simplify(from_gates(DTanh(Tanh(z))) - (1 - sp.tanh(z) ** 2)) == 0


def test_matrix_vector_products_parse_without_eval():
    W, s = sp.IndexedBase("W"), sp.IndexedBase("s")
    ns = Namespace({}, {"W": (W, ("dim", "dim")), "s": (s, ("dim",))})
    e = parse("tanh(W @ s)", ns, "F")
    assert isinstance(e, sp.tanh) and isinstance(e.args[0], sp.Sum)
    with pytest.raises(SpecError, match="needs a matrix"):
        parse("s @ s", ns, "F")


def _spec(**kw):
    dyn = dict(field="tanh(W @ s) - s", controls=("W",), step_size="h")
    dyn.update(kw)
    return Spec(name="cell", title="t", family="control", state="s",
                symbols=(Scalar("h"), Tensor("W", ("dim", "dim"))), dynamics=Dynamics(**dyn))


@pytest.mark.parametrize("kw, message", [
    ({"controls": ("V",)}, "control 'V' is not declared"),
    ({"step_size": "dt"}, "step size 'dt' is not a declared scalar"),
    ({"definitions": (("W", "tanh(s)"),)}, "reuses a declared name"),
    ({"definitions": (("z", "tanh(s)"),)}, "declared but never used: z"),
    ({"field": "sum(s)"}, "free indices"),
    ({"claims": (Claim("wrong shape", "F", "sum(s)"),)}, "different free axes"),
    ({"inputs": ("W",)}, "not a declared tensor over the 'input' axis"),
])
def test_dynamics_are_validated(kw, message):
    with pytest.raises(SpecError, match=message):
        _spec(**kw).validate()


def test_a_failed_claim_is_reported_not_hidden():
    spec = _spec(claims=(Claim("not true", "F", "tanh(W @ s)"),))
    d = hjsym.derive(spec, cache=False)
    assert d.step("claim-1").status == "failed"
