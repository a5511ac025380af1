"""The derivation engine: from a validated spec to numbered, reasoned steps and named results.

:func:`derive_symbolic` runs the registered passes (:mod:`hjsym.derivation.passes`) in order on
a :class:`Deriver`, which holds the results, steps and function specs and the helpers passes
share. Each pass adds steps (equation, one-line reason, the steps it uses) and named results; a
pass that does not apply is skipped, and one that fails says so in a step of its own. Nothing
asserts a formula: results are computed by SymPy from the spec (derivatives by the rules of
:mod:`hjsym.symbolic.reductions`, equalities by canonicalising a difference to zero, the
Hopf-Cole constant by ``solve``).
"""

from __future__ import annotations

import sympy as sp

from ..ir import FunctionSpec
from ..spec.validate import SymbolicSpec
from ..symbolic.axes import ATOM, DIM, bound_index, free_index
from ..symbolic.calculus import canonical, laplacian, pdiff, substitute_indexed
from ..symbolic.latex import eq, to_latex
from ..symbolic.magnitude import magnitude
from ..symbolic.reductions import LogSumExp

# the pass modules register themselves on import (hjsym.derivation.passes)
from . import (  # noqa: F401
    activations, anisotropic, diagram, gibbs, gradient_flow, hamilton_jacobi, mean_field, network, pontryagin, semigroup,
    training, variational,
)
from .derivation import STATUSES, Classification, Derivation, Step
from .passes import check_requested, pipeline
from .presentation import present

__all__ = ["Deriver", "derive_symbolic"]


def derive_symbolic(spec) -> Derivation:
    """Validate ``spec`` and run every applicable pass; returns a :class:`Derivation` without generated code.

    :func:`hjsym.derive` then generates a torch function for each function spec.
    """
    check_requested(spec)
    sym = spec.validate()
    d = Deriver(sym)
    for p in pipeline():
        if (not p.requested or p.name in spec.passes) and p.applies(d):
            p.run(d)
    names = {**sym.latex_names(), **d.symbol_names}
    step_size = sym.scalars.get(spec.dynamics.step_size) if spec.dynamics is not None else None
    present(d.steps, names, step_size)
    return Derivation(spec, d.steps, d.results, d.classify(), names, function_specs=dict(d.fns),
                      magnitude_specs=dict(d.magnitudes))


class Deriver:
    """The state of one derivation while the passes run: results, steps, function specs, and shared helpers."""

    def __init__(self, sym: SymbolicSpec):
        self.sym = sym
        self.steps: list[Step] = []
        self.results: dict[str, sp.Expr] = {}
        self.fns: dict = {}  # name -> FunctionSpec or ProgramSpec (hjsym.ir)
        self.magnitudes: dict = {}  # name -> FunctionSpec of the magnitude of its terms (hjsym.symbolic.magnitude)
        self.symbol_names: dict = {}  # LaTeX names of symbols a pass introduces
        self.classification: Classification | None = None  # set by a pass that classifies itself
        self.x, self.p, self.t = sym.x, sym.p, sym.t
        self.H, self.nu = sym.hamiltonian, sym.viscosity
        spec = sym.spec
        self.A = sym.tensors[spec.diffusion] if spec.diffusion else None
        self.k, self.l = free_index(DIM, 0), free_index(DIM, 1)
        self.m = free_index(ATOM, 0)
        self.u = sp.Symbol("u")
        self.w = sp.Symbol("w", positive=True)
        self.d = DIM.extent
        self.N = ATOM.extent
        if self.H is not None:
            self.results["hamiltonian"] = self.H
        if self.nu is not None:
            self.results["viscosity"] = self.nu

    # ------------------------------------------------------------------ bookkeeping
    def add(self, id, title, equations, reason, uses=(), status="derived"):
        if status not in STATUSES:
            raise ValueError(status)
        if isinstance(equations, sp.Basic):
            equations = (equations,)
        for u in uses:
            if not any(s.id == u for s in self.steps):
                raise RuntimeError(f"step {id} uses unknown step {u}")
        self.steps.append(Step(id, title, tuple(equations), reason, tuple(uses), status))

    def latex(self, expr) -> str:
        """LaTeX of ``expr`` in this derivation's symbol names."""
        return to_latex(expr, {**self.sym.latex_names(), **self.symbol_names})

    def math(self, expr) -> str:
        """``expr`` as a ``$...$`` span for a step's prose (:mod:`hjsym.symbolic.prose`)."""
        return f"${self.latex(expr)}$"

    def has(self, id) -> bool:
        return any(s.id == id for s in self.steps)

    def fn(self, name, expr, doc, out=(), terms=None, extra=()):
        """Register a function spec for ``expr``; ``terms`` is the same quantity written as its terms before they cancel
        (e.g. a residual ``u_t + H(grad u) - nu Lap u`` before simplification), whose magnitude bounds its rounding.

        ``extra``: arguments (:class:`~hjsym.ir.ArgSpec`) for symbols a pass introduced itself (not declared in the spec),
        e.g. a curve's second derivative or a neuron-indexed parameter; each is passed where the expression has it.
        """
        self.fns[name] = FunctionSpec(name, expr, self._args(expr, extra), tuple(out), doc)
        scale = magnitude(expr if terms is None else terms)
        self.magnitudes[name] = FunctionSpec(f"{name}_magnitude", scale, self._args(scale, extra), tuple(out),
                                             f"magnitude of the terms of {name} (the scale of its rounding error)")

    def _args(self, expr, extra):
        """The declared symbols of ``expr``, then the ``extra`` ones it has (an extra argument replaces a declared one of its
        name: a neuron-indexed ``a[m]`` stands for the spec's scalar ``a``)."""
        mine = {a.name for a in extra}
        declared = [a for a in self.sym.args_of(expr) if a.name not in mine]
        return tuple(declared) + tuple(a for a in extra if expr.has(a.symbol))

    # ------------------------------------------------------------------ the PDE
    def diffusion_of(self, jet_xx):
        """``nu * sum_{il} D_il jet(i, l)`` (``D`` the identity unless the spec sets it)."""
        i, l = bound_index(DIM, 0), bound_index(DIM, 1)
        if self.A is None:
            return self.nu * sp.Sum(jet_xx(i, i), (i, 1, self.d))
        return self.nu * sp.Sum(sp.Sum(self.A[i, l] * jet_xx(i, l), (l, 1, self.d)), (i, 1, self.d))

    def hamiltonian_at(self, grad_template, index):
        """``H(x, p)`` with ``p_k`` replaced by ``grad_template`` (free index ``index``)."""
        return substitute_indexed(self.H, self.p, grad_template, (index,))

    def hj_residual(self, u_expr, simplify: bool = True):
        """``u_t + H(x, grad u) - nu * div(D grad u)`` for an explicit ``u(x, t)``.

        With ``simplify=False``: the three terms as they are computed, before they cancel.
        """
        k = self.k
        grad_k = pdiff(u_expr, self.x[k])
        metric = None if self.A is None else self.A
        # unevaluated: SymPy would otherwise cancel equal terms of u_t and H(grad u) before their magnitude is taken
        terms = sp.Add(pdiff(u_expr, self.t), self.hamiltonian_at(grad_k, k), -self.nu * laplacian(u_expr, self.x, metric), evaluate=False)
        return canonical(terms) if simplify else terms

    def legendre(self, q, grad, pk, reason):
        """``L(q) = p.q - H(p)`` at the solution ``p_k = pk`` of ``q_k = grad``; records the step."""
        p, k = self.p, self.k
        i = bound_index(DIM)
        L = substitute_indexed(sp.Sum(p[i] * q[i], (i, 1, self.d)) - self.H, p, pk, (k,))
        self.results["lagrangian"] = L
        self.L_q = q
        self.add("legendre", "Legendre transform L = H*", (eq(q[k], grad), eq(p[k], pk), eq(sp.Function("L")(q), L)), reason, ("convexity",))

    def _lse_term(self, expr):
        """``(coefficient, LogSumExp node, rest)`` of an expression with one log-sum-exp term."""
        terms = sp.Add.make_args(canonical(expr))
        with_lse = [t for t in terms if t.atoms(LogSumExp)]
        if len(with_lse) != 1:
            return None
        node = next(iter(with_lse[0].atoms(LogSumExp)))
        coeff = canonical(with_lse[0] / node)
        if coeff.atoms(LogSumExp):
            return None
        rest = canonical(sp.Add(*[t for t in terms if t is not with_lse[0]]))
        return coeff, node, rest

    def classify(self) -> Classification:
        if self.classification is not None:
            return self.classification
        ident = next((s for s in self.steps if s.id == "identity"), None)
        if ident is not None and ident.status == "verified":
            return Classification(
                "exact",
                "the network output plus the Hopf-Cole solution equals a fixed quadratic: the correspondence is an identity",
                sp.S.Zero,
            )
        if "hopf_cole_leftover" in self.results:
            return Classification("open", "the Hamilton-Jacobi equation does not linearise", self.results["hopf_cole_leftover"])
        return Classification("structural", "the derivation does not establish an identity with a Hopf-Cole solution", sp.nan)
