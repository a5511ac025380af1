"""Mutation testing of the checks: core formulas of the derivations mutated, and whether ``hjsym check`` notices.

Each entry of :data:`MUTANTS` names an architecture, one of its generated functions and a
:class:`~hjsym.ir.mutations.Mutation` of the derived result behind it (a sign flipped, a term
dropped, a bound widened, ``N -> 2N``, a ``1/eps`` dropped, ...). :func:`run_mutant` generates
the mutated function, puts it in place of the original and runs every check of the
architecture on its reference networks, exactly as ``hjsym check NAME`` does: the mutant is
*caught* when at least one check fails. :func:`score` is the share caught.

The formula controls (:mod:`hjsym.checks.formula`) are the per-check version of the same idea;
this harness asks the converse question, mutation by mutation: is there a wrong formula the
checks all pass?
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.mutations import Mutation
from ..spec.registry import get
from .api import _run, context, suite_of
from .engine import torch_threads
from .formula import mutated_context

__all__ = ["Mutant", "MUTANTS", "QUICK", "run_mutant", "score"]


@dataclass(frozen=True)
class Mutant:
    """One wrong formula: ``mutation`` of the function ``function`` of ``architecture``, and why it is a plausible slip."""

    architecture: str
    function: str
    mutation: Mutation
    why: str = ""


def _m(arch, fn, kind, why="", **kw):
    return Mutant(arch, fn, Mutation(kind, **kw), why)


#: The core formulas of the derivations, each mutated the way a derivation goes wrong.
MUTANTS = (
    _m("lse", "tropical_bound", "substitute", "eps log 2N instead of eps log N (the audit's loosened bound)", delta=1.0, symbol="N"),
    _m("lse", "tropical_bound", "widen", "bound loosened by 0.1 %", delta=1e-3),
    _m("lse", "tropical_bound_sharp", "substitute", "N - 1 counted as 2N - 1", delta=1.0, symbol="N"),
    _m("lse", "tropical_bound_sharp", "widen", "sharp bound loosened by 0.1 %", delta=1e-3),
    _m("lse", "hessian_bound", "multiply", "the Hessian bound's 1/eps dropped", symbol="eps"),
    _m("lse", "hessian_bound", "widen", "curvature bound loosened by a factor 2", delta=1.0),
    _m("lse", "u", "sign", "sign of the log-sum-exp term of the Hopf-Cole solution", term=0),
    _m("lse", "u", "drop", "the quadratic term |x|^2/(4t) of u dropped", term=1),
    _m("lse", "u", "scale", "the viscosity factor of the log-sum-exp off by 0.1 %", delta=1e-3, term=0),
    _m("lse", "u", "substitute", "t -> 2t in the solution", delta=1.0, symbol="t"),
    _m("lse", "identity_rhs", "widen", "|x|^2/(4t) off by one part in a million", delta=1e-6),
    _m("lse", "residual", "sign", "residual +eps d/(2t) instead of -eps d/(2t)", term=0),
    _m("lse", "residual", "widen", "residual -eps d/t (factor 2)", delta=1.0),
    _m("lse", "hopf_lax", "drop", "Hopf-Lax without its quadratic term", term=0),
    _m("lse", "hopf_lax", "scale", "Hopf-Lax quadratic term |x - y|^2/(2t) (factor 2)", delta=1.0, term=0),
    _m("lse", "hessian_f", "drop", "Hessian as E_pi[W W^T]/eps (the covariance's mean term dropped)", term=1),
    _m("lse", "hessian_f", "widen", "Hessian off by one part in a million", delta=1e-6),
    _m("lse", "attribution", "widen", "attribution off by 0.1 %", delta=1e-3),
    _m("lse", "atoms_g", "sign", "g = b - t|W|^2 (sign of b)", term=0),
    _m("lse", "atoms_g", "drop", "g = -b (the t|W|^2 term dropped)", term=1),
    _m("lse", "atoms_y", "widen", "y = 4tW instead of 2tW", delta=1.0),
    _m("lse", "weights_b", "drop", "b = -g (the |y|^2/(4t) term dropped)", term=1),
    _m("lse", "f0", "widen", "max-plus network off by 0.1 %", delta=1e-3),
    _m("diagram", "f0", "sign", "max-plus network with the sign of its maximum flipped", term=0),
    _m("lse-aniso", "u", "sign", "anisotropic solution: sign of the log-sum-exp term", term=0),
    _m("lse-aniso", "diffusion_from_map", "widen", "A = 2 (L^T L)^-1", delta=1.0),
    _m("softplus-mlp", "gap_silu", "sign", "SiLU gap with the sign of its first term flipped", term=0),
    _m("softplus-mlp", "gap_gelu", "widen", "GELU gap off by 1 %", delta=1e-2),
    _m("softplus-mlp", "log_kernel", "drop", "heat kernel without its normalisation term", term=0),
    _m("softplus-mlp", "tropical_bound", "substitute", "per-unit tropical error eps log 4 (N -> 2N)", delta=1.0, symbol="N"),
    _m("attention", "entropy", "sign", "entropy LSE(z) + E_pi[z]/eps-type sign slip", term=1),
    _m("attention", "attention_jacobian", "drop", "attention Jacobian E_pi[K V]/eps (mean term dropped)", term=1),
    _m("attention", "f", "widen", "attention's log-sum-exp off by one part in a million", delta=1e-6),
    _m("diagram", "tropical_bound", "substitute", "diagram edge bound eps log 2N", delta=1.0, symbol="N"),
    _m("resnet", "forward_step", "scale", "residual step s + h F with h off by 0.1 %", delta=1e-3, term=0),
    _m("resnet", "adjoint_step", "sign", "costate recursion with the sign of a term flipped", term=0),
    _m("resnet", "kolmogorov_rhs", "substitute", "viscosity sigma^2 instead of sigma^2/2", delta=2 ** 0.5 - 1, symbol="sigma",
       output="dc0"),
    _m("resnet", "continuous_costate_rhs", "sign", "continuous costate dp/dt = +d_s H (sign)", term=0),
    _m("rnn", "forward_step", "widen", "Elman step off by one part in a million", delta=1e-6),
    _m("gru", "forward_step", "drop", "GRU step with a term of the gated update dropped", term=0),
    _m("gru", "costate_step_saved_inputs", "scale", "GRU costate: one term off by 0.1 %", delta=1e-3, term=0),
    _m("lstm", "forward_step", "sign", "LSTM step: sign of one term of the cell update", term=0),
    _m("lstm", "parameter_gradient_saved", "widen", "LSTM parameter gradients off by 0.1 %", delta=1e-3),
    _m("ssm", "riccati_rhs", "drop", "Riccati equation without its state cost Q", term=0),
    _m("ssm", "forward_step", "widen", "zero-order hold off by one part in a million", delta=1e-6),
    _m("ssm-selective", "forward_step", "scale", "selective step: one term off by 0.1 %", delta=1e-3, term=0),
    _m("mgu", "costate_step_saved_inputs", "sign", "MGU costate: sign of a term", term=0),
    _m("rnn-relu", "forward_step", "sign", "ReLU Elman step: sign of one term", term=0),
    _m("rnn-relu", "costate_step_saved_inputs", "scale", "ReLU Elman costate: one term off by 0.1 %", delta=1e-3, term=0),
    _m("lstm-proj", "forward_step", "drop", "projected LSTM step with a term dropped", term=0),
    _m("lstm-proj", "parameter_gradient_saved", "widen", "projected LSTM parameter gradients off by 0.1 %", delta=1e-3),
    _m("mamba", "forward_step", "scale", "selective scan: one term of the step off by 0.1 %", delta=1e-3, term=0),
    _m("mamba", "costate_step_saved_inputs", "sign", "selective scan costate: sign of a term", term=0),
    _m("brachistochrone", "extremal_value", "widen", "time along the cycloid 1 % too long", delta=1e-2),
    _m("brachistochrone", "extremal_y", "widen", "cycloid 10 % too deep", delta=0.1),
    _m("fokker-planck", "ou_density", "substitute", "OU density at temperature 1.1 eps", delta=0.1, symbol="eps"),
    _m("fokker-planck", "jko_variance", "widen", "exact JKO variance step 1 % too large", delta=1e-2),
    _m("mean-field", "network_tanh", "widen", "mean-field network off by one part in a million", delta=1e-6),
    _m("mean-field", "neuron_velocity_w_relu", "sign", "neuron velocity of w: sign of a term", term=0),
)

#: The subset the default test run tries (one architecture, seconds).
QUICK = tuple(m for m in MUTANTS if m.architecture == "lse" and m.mutation.kind in ("substitute", "multiply"))


def run_mutant(m: Mutant, seed: int = 0) -> dict:
    """Every check of ``m.architecture`` on its reference networks with ``m``'s function mutated; caught iff one fails."""
    arch = get(m.architecture)
    suite = suite_of(arch)
    ctx = context(arch, seed=seed)
    mctx, described = mutated_context(ctx, (m.function,), m.mutation)
    if not described:
        raise KeyError(f"{m.architecture} generates no function {m.function!r}")
    with torch_threads(1):
        report = _run(arch, suite, mctx, module=None, only=None, negative_controls=False, formula_controls=False, progress=False,
                      max_memory=None)
    failed = [c.name for c in report.checks if not c.passed]
    return {"architecture": m.architecture, "function": m.function, "mutation": described[0], "why": m.why, "caught": bool(failed),
            "failed_checks": failed, "checks": len(report.checks)}


def score(rows: list[dict]) -> str:
    """``"caught 44/46 (95.7 %)"`` and the survivors."""
    caught = sum(r["caught"] for r in rows)
    text = f"caught {caught}/{len(rows)} ({100 * caught / max(1, len(rows)):.1f} %)"
    survivors = [f"{r['architecture']}: {r['mutation']}" for r in rows if not r["caught"]]
    return text + ("; survivors: " + "; ".join(survivors) if survivors else "")
