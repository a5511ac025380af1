"""Formula controls: every check fails when the derived result behind route B is mutated; bounds are attained at a witness."""

import json
import math
from pathlib import Path

import pytest
import sympy as sp
import torch

import hjsym
from hjsym.checks.formula import Custom, Mutate, default_mutation, targets
from hjsym.checks.mutation import MUTANTS, QUICK, run_mutant, score
from hjsym.ir.mutations import Mutation, mutations_of, terms_of


@pytest.fixture(scope="session")
def lse_formula_report():
    return hjsym.check("lse", formula_controls=True)


def _all_caught(report):
    assert report.passed, report.table()
    controls = report.formula_controls
    assert [c["check"] for c in controls] == [c.name for c in report.checks]
    for c in controls:
        assert c["applied"] and not c["passed"], c
        assert c["margin"] < 1, c
    return controls


def test_every_lse_check_fails_on_its_mutated_formula(lse_formula_report):
    controls = _all_caught(lse_formula_report)
    by = {c["check"]: c for c in controls}
    assert by["tropical_bound"]["mutation"] == "tropical_bound times 1 + 1e-06"
    assert by["identity"]["functions"] == ["u"] and by["relu"]["functions"] == ["hopf_lax"]


def test_bounds_are_attained_at_their_witness(lse_formula_report):
    for name in ("tropical_bound", "tropical_bound_sharp", "hessian_bound"):
        tight = lse_formula_report.check(name).details["tightness"]
        assert tight["passed"] and tight["configurations"], name
        assert abs(tight["ratio_min"] - 1) < 1e-12 and abs(tight["ratio_max"] - 1) < 1e-12, (name, tight)
        # the widened bound is caught at the witness: there the measured ratio is 1 / (1 + 1e-6)
        ratio = lse_formula_report.check(name).details["formula_control"]["tightness_ratio"]
        assert ratio[1] == pytest.approx(1 / (1 + 1e-6), rel=1e-12), name


def test_the_json_records_formula_controls(lse_formula_report):
    data = json.loads(json.dumps(lse_formula_report.to_dict()))
    assert len(data["formula_controls"]) == len(data["checks"])
    assert all(f["passed"] is False and f["mutation"] and "error" in f for f in data["formula_controls"])
    assert "formula controls: 10/10 checks fail" in lse_formula_report.table()


def test_cli_formula_controls_and_a_control_that_passes_is_exit_1(capsys, monkeypatch):
    from hjsym._cli import main
    from hjsym.checks import engine

    assert main(["check", "lse", "--only", "tropical_bound", "--formula-controls", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["formula_controls"][0]["check"] == "tropical_bound" and out["formula_controls"][0]["passed"] is False

    def uncaught(check, ctx, nets, evaluate):
        return {"functions": [], "mutation": "nothing", "passed": True, "applied": True}

    monkeypatch.setattr(engine, "formula_control", uncaught)
    assert main(["check", "lse", "--only", "identity", "--formula-controls"]) == 1
    assert "passed where they must fail: identity (formula control)" in capsys.readouterr().err


def test_targets_and_default_mutations_follow_the_declarations():
    from hjsym.checks.suites.control import CHECKS as CONTROL
    from hjsym.checks.suites.diagram import CHECKS as DIAGRAM
    from hjsym.checks.suites.lse import CHECKS as LSE

    lse = {c.name: c for c in LSE}
    assert targets(lse["identity"]) == ("u",) and targets(lse["pde_residual"]) == ("residual",)
    assert default_mutation(lse["tropical_bound"], torch.float64) == Mutation("widen", 1e-6)
    assert default_mutation(lse["identity"], torch.float32) == Mutation("widen", 1e-2)
    control = {c.name: c for c in CONTROL}
    assert "adjoint_step" in targets(control["costates"]) and targets(control["forward"]) == ("forward_step",)
    assert isinstance(next(c for c in DIAGRAM if c.name == "convex_duality").formula, Custom)
    assert isinstance(Mutate().functions, tuple)


def test_mutations_change_the_expression_and_keep_the_index_bounds():
    N, eps = sp.Symbol("N"), sp.Symbol("eps", positive=True)
    bound = eps * sp.log(N)
    assert Mutation("substitute", 1.0, symbol="N").expression(bound) == eps * sp.log(2 * N)
    assert Mutation("multiply", symbol="eps").expression(bound / eps ** 2) == bound / eps
    x = sp.Symbol("x")
    e = x ** 2 / 4 + 3 * x
    assert len(terms_of(e)) == 2
    assert Mutation("drop", term=0).expression(e) in (3 * x, x ** 2 / 4)
    assert Mutation("sign", term=0).expression(e) != e
    with pytest.raises(ValueError, match="no term 5"):
        Mutation("scale", 0.1, term=5).expression(e)
    with pytest.raises(ValueError, match="unknown mutation"):
        Mutation("swap")


def test_mutations_of_a_derived_function(lse_derivation):
    specs = lse_derivation.function_specs
    u_mutations = mutations_of(specs["u"])
    assert {m.kind for m in u_mutations} == {"widen", "sign", "scale", "drop"} and len(u_mutations) == 1 + 3 * 2
    sharp = Mutation("substitute", 1.0, symbol="N").apply(specs["tropical_bound_sharp"])
    from hjsym.codegen.generate import generate

    fn = generate(sharp)  # N counts the atoms in the index bounds still; only its value moved
    assert "N" in sp.sstr(sharp.expr) and fn is not None


def test_the_quick_mutants_are_all_caught(capsys):
    """The audit's loosened bound eps log 2N and a Hessian bound without its 1/eps, among others: hjsym check fails."""
    rows = [run_mutant(m) for m in QUICK]
    print(score(rows))
    assert len(rows) >= 4 and all(r["caught"] for r in rows), score(rows)
    by = {(r["function"], r["mutation"]): r for r in rows}
    assert by[("tropical_bound", "N -> 2 N in tropical_bound")]["failed_checks"] == ["tropical_bound"]
    assert "hessian_bound" in by[("hessian_bound", "hessian_bound times eps")]["failed_checks"]


@pytest.mark.slow
def test_every_mutant_is_caught(capsys):
    """The whole harness (at least 30 mutations of core formulas, every architecture): the score is printed."""
    rows = [run_mutant(m) for m in MUTANTS]
    with capsys.disabled():
        print("\nmutation testing:", score(rows))
    assert len(rows) >= 30
    assert all(r["caught"] for r in rows), score(rows)


_SPEC_FILES = [pytest.param(str(p), id=p.name)
               for p in sorted((Path(__file__).resolve().parents[2] / "derivations" / "spec_files").glob("*.py"))]


@pytest.mark.slow
@pytest.mark.parametrize("name", [a["name"] for a in hjsym.list_architectures() if a["checks"]] + _SPEC_FILES)
def test_every_architecture_fails_every_formula_control(name):
    """Every registered architecture, and the example spec files (whose checks come from their family's suite)."""
    report = hjsym.check(name, formula_controls=True)
    _all_caught(report)
    for c in report.checks:
        if "tightness" in c.details and "ratio_min" in c.details["tightness"]:
            t = c.details["tightness"]
            assert t["passed"] and math.isclose(t["ratio_min"], 1, rel_tol=1e-9) and math.isclose(t["ratio_max"], 1, rel_tol=1e-9)
