"""Formula controls: every check run again with the derived result behind route B mutated, and it must fail.

A negative control moves route A (a perturbed network); a formula control moves route B: the
function spec of the derivation that the check tests is mutated (:mod:`hjsym.ir.mutations`: a
bound widened by a factor, a term scaled, a sign flipped, a term dropped), the mutated function
is generated, and the same check runs with it in place of the original in the context (the
magnitudes, hence the tolerances, stay those of the derivation). A check that passes on a wrong
formula cannot tell a right one from it.

This needs no per-check code: a check's formula is, unless it says otherwise, the last function
of its route B (``Generated("identity_rhs", "-u")`` tests ``u``) or of its ``requires``; the
mutation is the whole result times ``1 + delta``, ``delta`` the check's resolution
(:func:`default_mutation`). A check names other functions with ``formula=("log_kernel",)`` or ``formula=Mutate(functions, mutation)``; a check whose route B is
not a generated function (a Newton solve, a closed form) declares ``formula=Custom(description,
run)``, ``run(ctx, nets) -> CheckResult`` evaluating the check with its own route B mutated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..codegen.generate import generate
from ..codegen.pipeline import cache_key, function_specs
from ..ir.mutations import Mutation

__all__ = ["Mutate", "Custom", "targets", "default_mutation", "formula_control", "mutated_context", "DELTA", "STATISTIC_DELTA"]

#: The relative size of a default mutation, by dtype: the resolution every identity and bound check states (one part in a
#: million in float64), so a formula control shows the check resolves a wrong formula as finely as a perturbed network.
DELTA = {torch.float64: 1e-6, torch.float32: 1e-2}
#: Checks of kind "statistic" state their own tolerance (a discretisation order, a confidence interval): a term is
#: changed by this fraction.
STATISTIC_DELTA = 0.1


@dataclass(frozen=True)
class Mutate:
    """The generic formula control: ``mutation`` (default: :func:`default_mutation`) applied to each of ``functions``
    (default: :func:`targets`) that the derivation has."""

    functions: tuple[str, ...] = ()
    mutation: Mutation | None = None


@dataclass(frozen=True)
class Custom:
    """A formula control declared by a check whose route B is not a generated function: ``run(ctx, nets)`` evaluates the
    check with its route B mutated as ``description`` says, and returns the :class:`~hjsym.CheckResult`."""

    description: str
    run: Callable


def targets(check) -> tuple[str, ...]:
    """The generated functions whose derived result ``check`` tests (see the module docstring)."""
    declared = check.formula
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, tuple):
        return declared
    if isinstance(declared, Mutate) and declared.functions:
        return declared.functions
    own = getattr(check.route_b, "functions", ())
    if own:
        return (own[-1],)
    return check.requires[-1:]


def default_mutation(check, dtype) -> Mutation:
    """The whole derived result times ``1 + delta`` (a bound widened, an identity's result off by that factor), ``delta``
    the check's stated resolution (:data:`DELTA`), or :data:`STATISTIC_DELTA` for a statistic; or the check's own."""
    if isinstance(check.formula, Mutate) and check.formula.mutation is not None:
        return check.formula.mutation
    return Mutation("widen", STATISTIC_DELTA if check.kind == "statistic" else DELTA[dtype])


_SPECS: dict = {}
_GENERATED: dict = {}


def _function_specs(spec) -> dict:
    key = cache_key(spec)
    if key not in _SPECS:
        _SPECS[key] = function_specs(spec)
    return _SPECS[key]


def mutated_context(ctx, functions, mutation: Mutation):
    """``ctx`` with each of ``functions`` the derivation has replaced by its mutated, re-generated twin; and the
    descriptions of what changed. Memoised per spec, function and mutation (generation runs SymPy's printer)."""
    specs = _function_specs(ctx.spec)
    fns, described = {}, []
    for name in functions:
        if name not in specs or name not in ctx.fns:
            continue
        key = (cache_key(ctx.spec), name, mutation)
        if key not in _GENERATED:
            _GENERATED[key] = generate(mutation.apply(specs[name]))
        fns[name] = _GENERATED[key]
        described.append(mutation.describe(specs[name]))
    return dataclasses.replace(ctx, fns={**ctx.fns, **fns}, memo={}), described


def formula_control(check, ctx, nets, evaluate) -> dict:
    """Run ``check`` with its formula mutated: ``evaluate(ctx) -> CheckResult`` runs it on a context.

    Returns what the report records: the function(s) and the mutation, the error, tolerance and
    margin of the mutated run, and ``passed`` (False: the check caught the wrong formula).
    """
    if isinstance(check.formula, Custom):
        record = {"functions": [], "mutation": check.formula.description}
        run, mctx = check.formula.run, ctx
    else:
        mutation = default_mutation(check, ctx.dtype)
        names = targets(check)
        try:
            mctx, described = mutated_context(ctx, names, mutation)
        except ValueError as exc:  # the mutation's site does not exist in this derivation's result
            return {"functions": list(names), "mutation": str(exc), "passed": True, "applied": False}
        if not described:
            return {"functions": list(names), "mutation": "none of these functions is generated for this architecture",
                    "passed": True, "applied": False}
        record = {"functions": [n for n in names if n in mctx.fns], "mutation": "; ".join(described), "kind": mutation.kind}
        run = lambda c, _nets: evaluate(c)  # noqa: E731 - the same check on the mutated context
    try:
        result = run(mctx, nets)
    except Exception as exc:  # noqa: BLE001 - a wrong formula that breaks the check is caught, but say how
        record.update(passed=False, applied=True, raised=f"{type(exc).__name__}: {exc}")
        return record
    tight = result.details.get("tightness") or {}
    record.update(max_abs_err=result.max_abs_err, error=result.error, tolerance=result.tolerance, margin=result.margin,
                  passed=result.passed, applied=True)
    if "ratio_min" in tight:
        record["tightness_ratio"] = [tight["ratio_min"], tight["ratio_max"]]
    return record
