"""The control (Pontryagin) family: a network as a discretised controlled dynamical system.

A spec with :class:`~hjsym.Dynamics` describes the step ``s_{k+1} = s_k + h F(s_k, x_k, theta)``.
:func:`control_pass` (called by the derivation engine) derives, with SymPy:

* the control Hamiltonian ``H(s, p, theta) = p . F`` and Hamilton's equations;
* the discrete costate recursion ``p_k = p_{k+1} + d_s (h H)(s_k, p_{k+1}, theta)`` and the
  parameter gradient ``dPhi/dtheta = d_theta (h H)`` (``= h d_theta H`` unless theta is h
  itself), by the chain rule through the spec's named definitions (gates) and the
  intermediates it extracts (every pre-activation): each definition ``g`` gets an adjoint
  ``gbar = dH/dg``, computed from the later ones, exactly as backprop does; the result is
  also checked against SymPy's derivative of the fully substituted Hamiltonian;
* that this recursion is the vector-Jacobian product of the step map (backprop), verified;
* the continuous limit ``h -> 0`` (``ds/dt = F_c``, ``dp/dt = -d_s H_c``), the local gap
  of the step to the exact flow of ``F_c`` and the resulting classification (exact when the
  step *is* that flow, as for the zero-order-hold SSM);
* the value function's equation ``V_tau + min_theta H(s, grad V, theta) = -nu Lap V`` with
  ``nu = 0`` or ``sigma^2/2``, the generator derived from noise ``sigma sqrt(h) xi`` per step;
* the gates as Gibbs weights (``sigma(z) = d_z LSE(z, 0)``, ``tanh(z) = d_z LSE(z, -z)``)
  and the spec's structural claims, each verified;
* for a field linear in state and input, the LQR Riccati equation from the HJB equation by
  the quadratic ansatz ``V = s^T P s``; with noise, the backward Kolmogorov equation of the
  linear-Gaussian case, reduced by the same ansatz to ODEs for its coefficients.

Generated torch functions (:mod:`hjsym.codegen.generate`): ``step``, ``field``, ``forward_step``
(next state and every intermediate, saved for the backward sweep), ``hamiltonian``,
``costate_step``, ``parameter_gradient``, ``adjoint_step`` (costate, parameter and input
gradients of one step from the saved intermediates), ``continuous_field``,
``continuous_costate_rhs`` and, where they apply, ``riccati_rhs``, ``lqr_control`` and
``kolmogorov_rhs``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from ..ir import ArgSpec, Let, Output, ProgramSpec
from ..spec.parse import placeholder
from ..symbolic.axes import AXES, DIM, INPUT, axis_of, bound_index, free_index
from ..symbolic.calculus import canonical, free_indices, fresh_binders, instantiate, pdiff, substitute_indexed
from ..symbolic.gates import PIECEWISE, AbsGate, Relu, Sigmoid, Softplus, Tanh, from_gates, to_gates
from ..symbolic.latex import Limit0, Partial, Tex, eq
from .derivation import Classification
from .passes import register

__all__ = ["control_pass", "Definition", "ChainRule"]

_GATE_FUNCS = (Tanh, Sigmoid, Softplus, Relu, AbsGate, sp.exp)
VERIFY_ALL_PARAMS = 5  # above this many controls the chain-rule check takes one per kind of slot (see verify_chain_rule)


# ----------------------------------------------------------------------------- display helpers
class Dtau(sp.Function):
    """Display: ``partial_tau V``."""

    nargs = 1

    def _latex(self, printer, exp=None):
        return rf"\partial_{{\tau}} {printer._print(self.args[0])}"


class Ds(sp.Function):
    """Display: ``partial_{s_i} V``."""

    nargs = 2

    def _latex(self, printer, exp=None):
        out = rf"\partial_{{s_{{{printer._print(self.args[1])}}}}} {printer._print(self.args[0])}"
        return rf"\left({out}\right)^{{{exp}}}" if exp else out


class Dss(sp.Function):
    """Display: ``partial_{s_i} partial_{s_l} V``."""

    nargs = 3

    def _latex(self, printer, exp=None):
        f, i, l = (printer._print(a) for a in self.args)
        out = rf"\partial_{{s_{{{i}}}}}^{{2}} {f}" if i == l else rf"\partial_{{s_{{{i}}}}} \partial_{{s_{{{l}}}}} {f}"
        return rf"\left({out}\right)^{{{exp}}}" if exp else out


class MinOver(sp.Function):
    """Display: ``min_theta expr``."""

    nargs = 2

    def _latex(self, printer, exp=None):
        return rf"\min_{{{printer._print(self.args[1])}}} {printer._print(self.args[0])}"


# ----------------------------------------------------------------------------- definitions
@dataclass
class Definition:
    """A named intermediate: ``base[index] = expr`` (``base`` a Symbol when it is a scalar)."""

    name: str
    base: sp.Basic
    axes: tuple
    expr: sp.Expr
    auto: bool = False  # extracted by the pass (a pre-activation or an inner gate), not in the spec

    @property
    def index(self) -> tuple:
        return tuple(placeholder(a) for a in self.axes)

    @property
    def template(self):
        """The definition's own component ``base[placeholders]``."""
        return self.base[self.index] if self.axes else self.base

    def at(self, indices):
        return self.base[tuple(indices)] if self.axes else self.base


def _extent(axis: str):
    return AXES[axis].extent


def _leaf_component(base, axes):
    """``base[k, l, ...]`` with free indices (distinct per slot), or the symbol itself."""
    if not axes:
        return base, ()
    counts: dict = {}
    idx = []
    for a in axes:
        n = counts.get(a, 0)
        counts[a] = n + 1
        idx.append(free_index(AXES[a], n))
    return base[tuple(idx)], tuple(idx)


def _sum_over(expr, indices):
    for ix in indices:
        expr = sp.Sum(expr, (ix, 1, ix.upper))
    return expr


def _has_contraction(e) -> bool:
    return bool(e.atoms(sp.Sum))


class ChainRule:
    """The derivative of a scalar ``H`` through named definitions, backprop-style.

    ``defs`` are in evaluation order. ``adjoint(D) = dH/dD`` (total) is built from the explicit
    partial and the adjoints of the definitions that use ``D``; ``grad(v)`` is the total
    derivative with respect to a leaf component ``v`` (a state, control or input entry).
    Every partial is a SymPy derivative, canonicalised (Kronecker deltas contracted).
    """

    def __init__(self, H, defs: list[Definition], bar_name=lambda d: f"{d.name}bar"):
        self.H = H
        self.defs = defs
        self.bars: dict[str, sp.Basic] = {}
        self.adjoints: dict[str, tuple] = {}  # name -> (bar component template, indices, expr)
        for D in reversed(defs):
            base = sp.IndexedBase(bar_name(D)) if D.axes else sp.Symbol(bar_name(D), real=True)
            self.bars[D.name] = base
            comp, idx = _leaf_component(D.base, D.axes)
            expr = self._pullback(comp, after=defs[defs.index(D) + 1:])
            self.adjoints[D.name] = (base[idx] if idx else base, idx, expr)

    def _pullback(self, comp, after):
        total = pdiff(self.H, comp)
        for E in after:
            part = pdiff(E.expr, comp)
            if part == 0:
                continue
            part = part.xreplace({E.expr: E.template})  # the gate's own value, as backprop reuses it
            bar = self.bars[E.name]
            total = total + _sum_over((bar[E.index] if E.axes else bar) * part, E.index)
        return canonical(total)

    def grad(self, comp):
        """Total derivative of ``H`` with respect to the leaf component ``comp``."""
        return self._pullback(comp, after=self.defs)

    def lets(self) -> list[Let]:
        """The adjoints as program bindings, latest definition first (their evaluation order)."""
        out = []
        for D in reversed(self.defs):
            comp, idx, expr = self.adjoints[D.name]
            if expr != 0:
                out.append(Let(self.bars[D.name], idx, expr))
        return out

    def substitute_zero_adjoints(self, expr):
        """Replace adjoints that vanish identically by 0."""
        zero = {}
        for D in self.defs:
            _, idx, e = self.adjoints[D.name]
            if e == 0:
                zero[self.bars[D.name]] = True
        if not zero:
            return expr
        expr = expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base in zero, lambda e: sp.S.Zero)
        expr = expr.xreplace({b: 0 for b in zero if isinstance(b, sp.Symbol)})
        return canonical(expr)


# ----------------------------------------------------------------------------- the pass
@register("control", order=300, when=lambda d: d.sym.spec.dynamics is not None)
def control_pass(d) -> None:
    """Run the control-family derivation on a :class:`hjsym.derivation.engine.Deriver`."""
    ControlPass(d).run()


class ControlPass:
    def __init__(self, d):
        self.d = d
        sym = d.sym
        self.sym = sym
        spec = sym.spec
        self.dyn = spec.dynamics
        self.h = sym.scalars[self.dyn.step_size]
        self.states = list(sym.states)
        self.S = dict(sym.states)
        self.P = dict(sym.costates)
        self.inputs = list(self.dyn.inputs)
        self.controls = list(self.dyn.controls)
        self.sigma = sym.scalars[self.dyn.noise] if self.dyn.noise else None
        self.i = placeholder("dim")
        self.k = free_index(DIM, 0)
        self.l = free_index(DIM, 1)
        self.names_taken = set(sym.scalars) | set(sym.tensors) | set(sym.definitions)
        self.defs: list[Definition] = []
        self._extracted: dict = {}

    # ------------------------------------------------------------------ helpers
    def add(self, *args, **kwargs):
        self.d.add(*args, **kwargs)

    def tex(self, name: str, latex: str):
        self.d.symbol_names[sp.Symbol(name)] = latex
        return name

    def fresh_name(self, stem: str) -> str:
        name, n = stem, 1
        while name in self.names_taken:
            n += 1
            name = f"{stem}{n}"
        self.names_taken.add(name)
        return name

    def arg(self, name: str) -> ArgSpec:
        return self.sym.arg(name)

    def def_arg(self, D: Definition) -> ArgSpec:
        return ArgSpec(D.name, D.base, D.axes, batched=True, doc=f"saved intermediate {D.name} (from forward_step)")

    def leaf(self, name: str):
        """Component and free indices of a state, control or input."""
        if name in self.sym.scalars:
            return self.sym.scalars[name], ()
        return _leaf_component(self.sym.tensors[name], tuple(self.sym.tensor_decl[name].axes))

    def expand(self, expr, canon: bool = True):
        """``expr`` with every definition substituted (latest first), canonicalised once at the end."""
        for D in reversed(self.defs):
            expr = _substitute_raw(expr, D)
        return canonical(expr) if canon else expr

    # ------------------------------------------------------------------ extraction
    def extract(self, expr, owner: str | None):
        """Replace gate arguments that contain contractions, and gates inside a larger expression, by definitions.

        A definition that *is* a gate (``z = sigmoid(...)``) keeps its name; its argument becomes the
        pre-activation ``a_z``. Inside a field, ``W2 @ tanh(W1 @ s + b1) + b2`` gets ``a`` and ``y = tanh(a)``.
        """

        def walk(e, root):
            if e.is_Atom or isinstance(e, (sp.Indexed, sp.Idx, sp.IndexedBase)):
                return e
            args = tuple(walk(a, False) for a in e.args)
            if args != e.args:
                e = e.func(*args)
            if isinstance(e, _GATE_FUNCS) and _has_contraction(e.args[0]):
                owner_tex = self.d.symbol_names.get(sp.Symbol(owner)) or sp.latex(sp.Symbol(owner)) if owner else None
                pre = self.make_def(e.args[0], f"a_{owner}" if owner else "a", rf"a^{{({owner_tex})}}" if owner else "a", owner)
                if pre is not None:
                    e = e.func(pre)
            if isinstance(e, _GATE_FUNCS) and not root and not isinstance(e, sp.exp):
                val = self.make_def(e, "y", "y", owner)
                if val is not None:
                    e = val
            return e

        return walk(to_gates(expr), True)

    def make_def(self, sub, stem: str, latex: str, owner):
        """A definition for ``sub`` (at most one free index per axis); returns its component at the use site."""
        free = sorted(free_indices(sub), key=str)
        axes = [axis_of(ix).name for ix in free]
        if len(set(axes)) != len(axes):
            return None
        order = sorted(range(len(free)), key=lambda n: AXES[axes[n]].order)
        free = [free[n] for n in order]
        axes = tuple(axes[n] for n in order)
        template = canonical(instantiate(sub, {ix: placeholder(a) for ix, a in zip(free, axes)}))
        key = (template, axes)
        if key not in self._extracted:
            name = self.fresh_name(stem)
            n = name[len(stem):]
            # numbered as a superscript: the definition is indexed, so a subscript would be a double one
            self.tex(name, latex if not n else (f"{latex[:-1]},{n}}}" if latex.endswith("}") and "^" in latex else f"{latex}^{{({n})}}"))
            base = sp.IndexedBase(name) if axes else sp.Symbol(name, real=True)
            D = Definition(name, base, axes, template, auto=True)
            self.defs.append(D)
            self._extracted[key] = D
        D = self._extracted[key]
        return D.at(free)

    def build_definitions(self):
        """The spec's definitions and fields in gate form, with pre-activations extracted."""
        for entry in self.dyn.definitions:
            if len(entry) == 3:
                self.tex(entry[0], entry[2])
        if len(self.states) > 1:
            for state in self.states:
                self.tex(self.P[state].label.name, f"p^{{{state}}}")
        for fname, state in self.sym.field_names.items():
            if fname != "F":
                self.tex(fname, f"F^{{{state}}}")
        self.tex("F_lin", r"F^{\mathrm{lin}}")
        for name, (base, axes, expr) in self.sym.definitions.items():
            expr = self.extract(expr, name)
            self.defs.append(Definition(name, base, axes, canonical(expr)))
        self.fields = {}
        for state in self.states:
            self.fields[state] = canonical(self.extract(self.sym.fields[state], None))

    # ------------------------------------------------------------------ main
    def run(self):
        self.build_definitions()
        self.step_map()
        self.piecewise()
        self.hamiltonian()
        self.costate()
        self.backprop_identity()
        self.verify_chain_rule()
        self.continuous_limit()
        self.value_function()
        self.gibbs_gates()
        self.claims()
        self.classification()
        self.lqr()
        self.kolmogorov_linear()
        self.functions()

    def at_times(self, relation, left_now: bool = False):
        """Display with time indices: every costate on the right is ``p^{(k+1)}`` (on the left ``p^{(k)}`` for the
        costate step), the component index is ``l`` so that ``k`` is the step. The derived relation is kept in the results."""
        comp = free_index(DIM, 1)
        nxt, now = {}, {}
        for st in self.states:
            name = self.P[st].label.name
            sup = "" if len(self.states) == 1 else f"{st},"
            nxt[self.P[st]] = sp.IndexedBase(self.tex(f"{name}_next", f"p^{{{sup}(k+1)}}"))
            now[self.P[st]] = sp.IndexedBase(self.tex(f"{name}_now", f"p^{{{sup}(k)}}"))
        lhs = relation.lhs.xreplace(now if left_now else nxt).xreplace({self.k: comp})
        rhs = relation.rhs.xreplace(nxt).xreplace({self.k: comp})
        return eq(lhs, rhs)

    # ------------------------------------------------------------------ the step map
    def state_display(self, state, next_=False, idx=None):
        label = f"{state}_next" if next_ else state
        if next_:
            self.tex(label, f"{state}^{{+}}")
        return sp.IndexedBase(label)[idx if idx is not None else self.i]

    def step_map(self):
        h, i = self.h, self.i
        eqs = []
        for D in self.defs:
            eqs.append(eq(_show(D.template), _show(D.expr)))
        for state in self.states:
            F = self.fields[state]
            eqs.append(eq(_show(self.state_display(state, True)), _show(self.S[state][i]) + h * sp.UnevaluatedExpr(_show(F))))
        self.d.results["fields"] = dict(self.fields)
        self.d.results["field"] = self.fields[self.states[0]]
        self.d.results["definitions"] = {D.name: D.expr for D in self.defs}
        n_auto = sum(D.auto for D in self.defs)
        why = "the spec's dynamics: one explicit step of size $h$ of the field $F$ ($s^+ = s + h F$)"
        if self.defs:
            why += f"; intermediates first ({len(self.defs) - n_auto} named in the spec"
            why += f", {n_auto} pre-activations and inner gates extracted as chain-rule nodes)" if n_auto else ")"
        self.add("step-map", "The step map", eqs, why, (), "stated")

    def kink_arguments(self) -> list:
        """``(definition, node)`` for every relu / abs node of the step: its argument's distance to 0 is the distance to the kink."""
        out = []
        for expr in [D.expr for D in self.defs] + list(self.fields.values()):
            for node in sp.preorder_traversal(expr):
                if isinstance(node, PIECEWISE) and node not in [n for n, _ in out]:
                    out.append((node, node.args[0]))
        return out

    def piecewise(self):
        """Piecewise-linear steps (max, min, relu, abs): the subgradient convention of every derivative that follows."""
        kinks = self.kink_arguments()
        if not kinks:
            return
        z = sp.Symbol("z", real=True)
        kinds = {type(n) for n, _ in kinks}
        eqs = []
        if Relu in kinds:
            eqs += [eq(sp.Symbol(r"\operatorname{relu}'(z)"), sp.Symbol(r"\mathbf{1}[z > 0]")),
                    eq(sp.Symbol(r"\operatorname{relu}'(0)"), sp.S.Zero)]
        if AbsGate in kinds:
            eqs += [eq(sp.Symbol(r"\frac{d}{dz}|z|"), sp.sign(z)), eq(sp.Symbol(r"\operatorname{sign}(0)"), sp.S.Zero)]
        args = ", ".join(self.d.math(a) for _, a in kinks)
        self.d.results["kinks"] = [a for _, a in kinks]
        self.add("piecewise", "Piecewise-linear step: derivatives almost everywhere", tuple(eqs),
                 r"$\max(a, b) = b + \operatorname{relu}(a - b)$ and $\min(a, b) = a - \operatorname{relu}(a - b)$; every derivative "
                 f"below holds off the kink set where an argument of relu or abs vanishes ({args}), a set of measure zero; on it the "
                 r"convention $\operatorname{relu}'(0) = 0$, $\operatorname{sign}(0) = 0$ (torch's relu and abs) picks one subgradient "
                 "(torch.maximum takes 1/2, clamp 1). The checks measure the distance of every such argument to its kink along the "
                 "trajectory (generated function kinks)", ("step-map",), "stated")

    def hamiltonian(self):
        i = self.i
        H = sp.S.Zero
        for state in self.states:
            H += sp.Sum(self.P[state][i] * self.fields[state], (i, 1, DIM.extent))
        self.H = canonical(H)
        self.hH = canonical(self.h * self.H)
        self.tex("Hc", r"\mathcal{H}")
        Hsym = sp.Symbol("Hc")
        self.d.results["control_hamiltonian"] = self.H
        self.add("control-hamiltonian", "Control Hamiltonian", eq(Hsym, self.H),
                 r"$\mathcal{H}(s, p, \theta) = p \cdot F$: the costate paired with the field (no running cost)", ("step-map",))
        k = self.k
        eqs = []
        ok = True
        for state in self.states:
            sdot = pdiff(self.H, self.P[state][k])
            target = instantiate(self.fields[state], {i: k})
            ok = ok and canonical(sdot - target) == 0
            self.tex(f"{state}dot", rf"\dot{{{state}}}")
            eqs.append(eq(sp.IndexedBase(f"{state}dot")[k], sdot))
        for state in self.states:
            pname = self.P[state].label.name
            self.tex(f"{pname}dot", rf"\dot{{p}}^{{{state}}}" if len(self.states) > 1 else r"\dot{p}")
            eqs.append(eq(sp.IndexedBase(f"{pname}dot")[k], -Partial(Hsym, self.S[state][k])))
        self.add("hamilton-equations", "Hamilton's equations", eqs,
                 r"$\dot{s} = \partial\mathcal{H}/\partial p$ reproduces the field (" + ("verified: the difference is 0" if ok else "it does not: "
                 "the difference is not 0") + r"); $\dot{p} = -\partial\mathcal{H}/\partial s$ is the costate equation",
                 ("control-hamiltonian",), "verified" if ok else "failed")

    # ------------------------------------------------------------------ costate and gradients
    def costate(self):
        self.tex_bars()
        self.chain = ChainRule(self.H, self.defs, bar_name=lambda D: f"{D.name}bar")
        eqs = []
        for D in reversed(self.defs):
            comp, idx, expr = self.chain.adjoints[D.name]
            eqs.append(self.at_times(eq(comp, expr)))
        if eqs:
            self.add("adjoints", "Adjoints of the intermediates (the chain rule, backprop's order)", eqs,
                     r"$\bar{g} = \partial\mathcal{H}/\partial g$ for every intermediate $g$, latest first: the explicit partial plus the "
                     "adjoints of the intermediates that use $g$ times their local derivatives (SymPy derivatives; gate derivatives reuse the gate value)",
                     ("control-hamiltonian",))
        self.costate_exprs = {}
        eqs = []
        for state in self.states:
            comp, idx = _leaf_component(self.S[state], ("dim",))
            g = self.chain.grad(comp)
            self.costate_exprs[state] = canonical(self.P[state][idx[0]] + self.h * g)
            eqs.append(self.at_times(eq(self.P[state][idx[0]], self.costate_exprs[state]), left_now=True))
        uses = ("adjoints",) if self.defs else ("control-hamiltonian",)
        self.d.results["costate"] = dict(self.costate_exprs)
        self.add("discrete-costate", "Discrete costate recursion", eqs,
                 r"$p_K = \nabla\Phi(s_K)$, $p_k = p_{k+1} + \partial_s (h\mathcal{H})(s_k, p_{k+1}, \theta_k)$: on the right every $p$ is $p_{k+1}$ and "
                 r"every $s$ is $s_k$", uses)
        self.param_exprs = {}
        eqs = []
        for name in self.controls:
            comp, idx = self.leaf(name)
            g = canonical(self.h * self.chain.grad(comp) + (self.H if comp == self.h else 0))  # d(hH)/dtheta
            self.param_exprs[name] = (g, idx)
            eqs.append(eq(Partial(sp.Symbol("Phi"), comp), g))
        self.input_exprs = {}
        for name in self.inputs:
            comp, idx = self.leaf(name)
            g = canonical(self.h * self.chain.grad(comp))
            self.input_exprs[name] = (g, idx)
            eqs.append(eq(Partial(sp.Symbol("Phi"), comp), g))
        self.d.results["parameter_gradient"] = {n: g for n, (g, _) in self.param_exprs.items()}
        self.d.results["input_gradient"] = {n: g for n, (g, _) in self.input_exprs.items()}
        reason = (r"$\partial\Phi/\partial\theta_k = \partial_\theta (h\mathcal{H})(s_k, p_{k+1}, \theta_k)$ ($= h\, \partial_\theta \mathcal{H}$ when $\theta$ is not $h$); "
                  r"weights shared across steps add up over $k$, and over the batch")
        if self.inputs:
            reason += r"; $\partial\Phi/\partial x_k = \partial_x (h\mathcal{H})$ is what a lower layer receives as its running seed"
        self.add("parameter-gradient", "Parameter (and input) gradients", eqs, reason, uses)

    def tex_bars(self):
        for D in self.defs:
            base_tex = self.d.symbol_names.get(sp.Symbol(D.name)) or D.name
            head = re.match(r"^(\\?[A-Za-z]+)((?:\^|_).*)$", base_tex)
            self.tex(f"{D.name}bar", rf"\bar{{{head.group(1)}}}{head.group(2)}" if head else rf"\bar{{{base_tex}}}")

    def backprop_identity(self):
        """The costate step is the vector-Jacobian product of the step map (backprop), verified."""
        k, i = self.k, self.i
        eqs = []
        ok = True
        for state in self.states:
            vjp = sp.S.Zero
            for s2 in self.states:
                vjp += sp.Sum(self.P[s2][i] * (self.S[s2][i] + self.h * self.fields[s2]), (i, 1, DIM.extent))
            lhs = canonical(vjp)
            # the VJP of the step map with the intermediates' chain rule is the chain rule of p . (s + h F)
            chain = ChainRule(lhs, self.defs, bar_name=lambda D: f"_vjp_{D.name}bar")
            comp, idx = _leaf_component(self.S[state], ("dim",))
            total = chain.grad(comp)
            diff = flatten_sums(self.expand_bars(total, chain) - self.expand_bars(self.costate_exprs[state], self.chain))
            ok = ok and diff == 0
            eqs.append(eq(Tex(rf"\sum_i p_i \partial s^{{+}}_i / \partial {state}_{{{k}}} - p_{{{k}}}"), diff))
        self.add("backprop", "The costate recursion is backprop", eqs,
                 r"$\partial\Phi/\partial s_k = (\partial s_{k+1}/\partial s_k)^\top\, \partial\Phi/\partial s_{k+1}$: the vector-Jacobian product of the step map equals the costate "
                 r"step (difference computed by SymPy)", ("discrete-costate",), "verified" if ok else "failed")

    def expand_bars(self, expr, chain: ChainRule, canon: bool = True):
        """``expr`` with the adjoints substituted (latest definition's first) and then the definitions."""
        for D in self.defs:  # earliest first: an adjoint refers only to later definitions' adjoints
            comp, idx, val = chain.adjoints[D.name]
            bar = chain.bars[D.name]
            expr = _substitute_raw(expr, Definition(D.name, bar, D.axes, instantiate(val, dict(zip(idx, D.index)))))
        return canonical(expr) if canon else expr

    def verify_chain_rule(self):
        """The chain-rule gradients equal SymPy's derivative of the fully substituted h H."""
        if not self.defs:
            return
        full = self.expand(self.hH)
        ok, checked = True, 0
        targets = [(self.costate_exprs[st], _leaf_component(self.S[st], ("dim",))[0], self.P[st][self.k]) for st in self.states]
        targets += [(g, self.leaf(name)[0], sp.S.Zero) for name, (g, _) in self.input_exprs.items()]
        # every adjoint enters the costate; parameter gradients add only local partials: check all of
        # them when there are few, else one per kind of slot (matrix, vector, scalar)
        params = list(self.param_exprs.items())
        if len(params) > VERIFY_ALL_PARAMS:
            kinds: dict = {}
            for name, (g, idx) in params:
                kinds.setdefault(tuple(axis_of(ix).name for ix in idx), (name, (g, idx)))
            params = list(kinds.values())
        targets += [(g, self.leaf(name)[0], sp.S.Zero) for name, (g, _) in params]
        n_params = len(params)
        for g, comp, offset in targets:
            chain = self.expand(self.expand_bars(g, self.chain, canon=False), canon=False)
            # both sides carry the same gate nodes (Tanh, DTanh(Tanh(.)), ...): no need to rewrite them
            ok = ok and flatten_sums(chain - offset - pdiff(full, comp)) == 0
            checked += 1
        self.add("chain-rule-check", "Chain rule = derivative of the substituted Hamiltonian",
                 eq(Tex(r"\mathrm{difference}"), sp.S.Zero if ok else sp.nan),
                 r"substitute every adjoint and intermediate and compare with SymPy's derivative of $h\mathcal{H}$ written out in full: "
                 f"{checked} gradients (every costate and input gradient, {n_params} of {len(self.param_exprs)} parameter gradients), "
                 "difference " + ("0" if ok else "not shown to be 0"),
                 ("discrete-costate", "parameter-gradient"), "verified" if ok else "failed")

    # ------------------------------------------------------------------ continuous limit
    def continuous_limit(self):
        h, i, k = self.h, self.i, self.k
        self.cfields = {}
        depends = False
        self.d.results["field_expanded"] = {}
        for state in self.states:
            F = self.expand(self.fields[state])
            self.d.results["field_expanded"][state] = F  # every definition substituted (the field as one expression)
            if F.has(h):
                depends = True
                F = _limit(F, h)
            self.cfields[state] = F
        self.field_depends_on_h = depends
        if depends:
            self.cdefs_source = None
            saved = self.defs
            self._extracted = {}
            self.defs = []
            cf = {s: canonical(self.extract(F, None)) for s, F in self.cfields.items()}
            self.cdefs = self.defs
            self.defs = saved
            self.cfields_dec = cf
        else:
            self.cdefs = self.defs
            self.cfields_dec = self.fields
        Hc = sp.S.Zero
        for state in self.states:
            Hc += sp.Sum(self.P[state][i] * self.cfields_dec[state], (i, 1, DIM.extent))
        self.Hc = canonical(Hc)
        self.cchain = ChainRule(self.Hc, self.cdefs, bar_name=lambda D: f"{D.name}bar")
        self.tex("Hcc", r"\mathcal{H}_{c}")
        eqs = []
        for state in self.states:
            self.tex(f"{state}dot", rf"\dot{{{state}}}")
            eqs.append(eq(sp.IndexedBase(f"{state}dot")[k], Limit0((sp.IndexedBase(f"{state}_next")[k] - self.S[state][k]) / h, h)))
            eqs.append(eq(sp.IndexedBase(f"{state}dot")[k], _show(self.cfields_dec[state])))
        self.ccostate = {}
        for state in self.states:
            comp, idx = _leaf_component(self.S[state], ("dim",))
            self.ccostate[state] = canonical(-self.cchain.grad(comp))
            pname = self.P[state].label.name
            eqs.append(eq(sp.IndexedBase(f"{pname}dot")[k], -Partial(sp.Symbol("Hcc"), self.S[state][k])))
        self.d.results["continuous_field"] = dict(self.cfields)
        self.d.results["continuous_hamiltonian"] = self.Hc
        reason = r"$(s_{k+1} - s_k)/h = F$: as $h \to 0$ with $\theta_k = \theta(kh)$ the steps follow $ds/dt = F_c$"
        reason += (r", $F_c = \lim F$ computed by SymPy ($F$ depends on the step)" if depends else r", $F_c = F$ ($F$ does not depend on $h$)")
        reason += r"; $(p_k - p_{k+1})/h = \partial_s \mathcal{H}$ gives the costate ODE $dp/dt = -\partial_s \mathcal{H}_c$"
        self.add("continuous-limit", r"Continuous limit $h \to 0$", eqs, reason, ("step-map", "discrete-costate"))

    # ------------------------------------------------------------------ value function
    def value_function(self):
        V = sp.Symbol("V")
        i, l, k = bound_index(DIM, 0), bound_index(DIM, 1), self.k
        single = len(self.states) == 1
        st = self.states[0]
        F = self.cfields_dec[st] if single else None
        sigma = self.sigma if self.sigma is not None else sp.Symbol("sigma", nonnegative=True)
        nu = sp.Symbol("nu", nonnegative=True)
        self.tex("nu", r"\nu")
        lap = sp.Sum(Dss(V, i, i), (i, 1, DIM.extent))
        # generator of one noisy step, by a second-order Taylor expansion with E xi = 0, E xi xi^T = I
        if single:
            Fk, Fl = instantiate(F, {self.i: i}), instantiate(F, {self.i: l})
            taylor = (sp.Sum(self.h * Fk * Ds(V, i), (i, 1, DIM.extent))
                      + sp.Rational(1, 2) * sp.Sum(sp.Sum((self.h ** 2 * Fk * Fl + sigma ** 2 * self.h * sp.KroneckerDelta(i, l))
                                                          * Dss(V, i, l), (l, 1, DIM.extent)), (i, 1, DIM.extent)))
            gen_terms = canonical(canonical(canonical(taylor) / self.h).subs(self.h, 0))
            nu_val = _coefficient(gen_terms, canonical(lap))
        else:
            nu_val, gen_terms = sigma ** 2 / 2, None
        self.d.results["noise_viscosity"] = nu_val
        Hc_grad = canonical(substitute_indexed(self.Hc, self.P[st], Ds(V, k), (k,))) if single else sp.Symbol("Hcc")
        theta = sp.Symbol("theta")
        eqs = []
        if single:
            eqs.append(eq(Tex(r"\lim_{h \to 0} \frac{1}{h}\,\mathbb{E}\left[V(s + h F + \sigma \sqrt{h}\,\xi) - V(s)\right]"), gen_terms))
        eqs.append(eq(nu, nu_val))
        hjb = eq(Dtau(V) + MinOver(Hc_grad, theta), -nu * lap)
        kolm = eq(Dtau(V) + Hc_grad + nu * lap, sp.S.Zero)
        # shown: the minimum is over the controls theta of H_c(s, grad V, theta), which depends on theta through the gates
        h_of_theta = Tex(r"\mathcal{H}_{c}(s, \nabla_{s} V, \theta)")
        eqs += [eq(Dtau(V) + MinOver(h_of_theta, theta), -nu * lap), eq(h_of_theta, Hc_grad), kolm]
        self.d.results["hjb"] = hjb
        self.d.results["kolmogorov"] = kolm
        why = (r"noise $\sigma \sqrt{h}\, \xi$ per step ($\mathbb{E}\xi = 0$, $\mathbb{E}\xi\xi^\top = I$): a second-order Taylor expansion of $V$ gives the generator "
               r"$F\cdot\nabla V + (\sigma^2/2) \Delta V$, so $\nu = \sigma^2/2$ ($\nu = 0$ without noise); the value function (cost-to-go of a terminal "
               "loss) solves the HJB equation, and for fixed weights the backward Kolmogorov equation")
        if self.sigma is None:
            why += r"; this spec injects no noise ($\nu = 0$), $\sigma$ is shown for the noisy variant"
        self.add("value-function", "Value function: HJB and backward Kolmogorov equations", eqs, why, ("continuous-limit",),
                 "derived" if single else "stated")
        self.add("characteristics", "Characteristics: the costate is the gradient of the value",
                 eq(sp.IndexedBase(self.P[st].label.name)[k], Ds(V, k)),
                 r"differentiating $V_\tau + F\cdot\nabla V = 0$ in $s$ and following $ds/d\tau = F$ gives $d(\nabla V)/d\tau = -\partial_s \mathcal{H}(s, \nabla V)$: "
                 r"the costate equation, so $p = \nabla V$ along the trajectory (for $\nu = 0$; discrete: $p_k = \partial\Phi/\partial s_k$)",
                 ("value-function",), "stated")

    # ------------------------------------------------------------------ gates as Gibbs weights
    def gibbs_gates(self):
        present = set()
        for D in self.defs:
            for g in (Tanh, Sigmoid, Softplus):
                if D.expr.atoms(g):
                    present.add(g)
        for F in self.fields.values():
            for g in (Tanh, Sigmoid, Softplus):
                if F.atoms(g):
                    present.add(g)
        if not present:
            return
        z = sp.Symbol("z", real=True)
        lse2 = lambda a, b: sp.log(sp.exp(a) + sp.exp(b))  # noqa: E731
        eqs, ok = [], True
        if Sigmoid in present or Softplus in present:
            d_ = sp.diff(lse2(z, 0), z)
            ok = ok and sp.simplify(d_ - 1 / (1 + sp.exp(-z))) == 0
            eqs.append(eq(Sigmoid(z), Tex(r"\partial_z \log(e^{z} + e^{0}) = \pi_1(z, 0)")))
        if Softplus in present:
            ok = ok and sp.simplify(lse2(z, 0) - sp.log(1 + sp.exp(z))) == 0
            eqs.append(eq(Softplus(z), Tex(r"\log(e^{z} + e^{0}) = \mathrm{LSE}(z, 0)")))
        if Tanh in present:
            d_ = sp.diff(lse2(z, -z), z)
            ok = ok and sp.simplify((d_ - sp.tanh(z)).rewrite(sp.exp)) == 0
            eqs.append(eq(Tanh(z), Tex(r"\partial_z \log(e^{z} + e^{-z}) = \pi_1(z, -z) - \pi_2(z, -z)")))
        self.add("gibbs-gates", "Gates are gradient-class Gibbs weights", eqs,
                 r"each gate is the derivative of a two-atom log-sum-exp (the exact family's Hamiltonian at $\varepsilon = 1$): sigmoid a Gibbs "
                 "weight, tanh a difference of two, softplus the log-sum-exp itself (SymPy: difference 0)",
                 ("step-map",), "verified" if ok else "failed")

    def claims(self):
        if not self.sym.claims:
            return
        for n, (claim, lhs, rhs) in enumerate(self.sym.claims, 1):
            lhs2, rhs2 = lhs, rhs
            for fname, state in self.sym.field_names.items():
                base = sp.IndexedBase(fname)
                F = self.expand(self.fields[state])
                lhs2 = substitute_indexed(lhs2, base, F, (self.i,)) if lhs2.has(base) else lhs2
                rhs2 = substitute_indexed(rhs2, base, F, (self.i,)) if rhs2.has(base) else rhs2
            diff = canonical(from_gates(self.expand(to_gates(lhs2))) - from_gates(self.expand(to_gates(rhs2))))
            ok = diff == 0
            self.add(f"claim-{n}", claim.title, (eq(lhs, rhs), eq(Tex(r"\mathrm{difference}"), diff)),
                     (claim.reason or "a structural identity of the spec") + "; the difference of the two sides reduces to "
                     + ("0" if ok else "a nonzero term"), ("step-map",), "verified" if ok else "failed")

    # ------------------------------------------------------------------ classification
    def classification(self):
        h, i, k = self.h, self.i, self.k
        exact = False
        if self.field_depends_on_h and len(self.states) == 1:
            st = self.states[0]
            tau = sp.Symbol("tau", positive=True)
            F = self.expand(self.fields[st]).subs(h, tau)
            phi = canonical(self.S[st][i] + tau * F)
            lhs = canonical(sp.diff(phi, tau))
            rhs = substitute_indexed(self.cfields[st], self.S[st], phi, (i,))
            res = canonical(from_gates(lhs) - from_gates(rhs))
            if res != 0:
                res = canonical(sp.simplify(res))
            exact = res == 0
            self.add("exact-flow", "The step is the exact flow of the continuous field", (
                eq(Tex(r"\varphi_{k}(\tau)"), _show(phi)), eq(Tex(r"\partial_\tau \varphi - F_c(\varphi)"), res)),
                r"$\varphi(\tau) = s + \tau F(s; \tau)$ starts at $s$ and solves $ds/d\tau = F_c$ (inputs and weights frozen over the step): "
                "the residual reduces to " + ("0" if exact else "a nonzero term"), ("continuous-limit",), "verified" if exact else "failed")
        Fb = sp.IndexedBase("F")
        sb = self.S[self.states[0]] if len(self.states) == 1 else sp.IndexedBase("s")
        j = bound_index(DIM, 1)
        gap_display = -h ** 2 / 2 * sp.Sum(Fb[j] * Partial(Fb[k], sb[j]), (j, 1, DIM.extent))
        if exact:
            gap = sp.S.Zero
            kind = "exact"
            statement = ("the step is the exact flow of the continuous field over one step (verified), and the costate recursion is "
                         "exactly backprop (verified): network, costate and gradients are exact discrete Pontryagin objects")
        else:
            gap = gap_display
            kind = "structural"
            hl = self.d.latex(h)
            statement = (r"an explicit Euler step of $ds/dt = F$: the costate recursion is exactly backprop (verified), while the step "
                         rf"departs from the exact flow of $F$ by the local gap $-({hl}^2/2)(\partial F/\partial s)F + O({hl}^3)$ (global $O({hl})$)")
            extra = self.dyn_structure_statement()
            if extra:
                statement += "; " + extra
        self.add("euler-gap", "Gap to the continuous flow", eq(Tex(r"s^{+} - \varphi_h(s)"), gap if exact else gap_display),
                 rf"Taylor expansion of the exact flow $\varphi_{{{self.d.latex(h)}}}(s) = s + {self.d.latex(h)} F + ({self.d.latex(h)}^2/2)(\partial F/\partial s)F + O({self.d.latex(h)}^3)$ "
                 rf"against the step $s + {self.d.latex(h)} F$"
                 + (": zero, the step is the flow" if exact else ""), ("continuous-limit",), "verified" if exact else "derived")
        self.d.classification = Classification(kind, statement, gap)
        self.d.results["euler_gap"] = gap

    def dyn_structure_statement(self) -> str:
        titles = [claim.title for claim, _, _ in self.sym.claims if claim.kind == "structure"]
        return "; ".join(t[0].lower() + t[1:] for t in titles)

    # ------------------------------------------------------------------ LQR
    def lqr(self):
        """For a field linear in state and input: the Riccati equation from the HJB equation."""
        if len(self.states) != 1 or len(self.inputs) != 1:
            return
        st, xin = self.states[0], self.inputs[0]
        s, x = self.S[st], self.sym.tensors[xin]
        F = self.cfields[st]
        k, l = self.k, self.l
        beta = free_index(INPUT, 0)
        if not _is_linear(F, [s, x], self.i, k, l, beta):
            return
        d = self.d
        P, Q, u = sp.IndexedBase("P"), sp.IndexedBase("Q"), sp.IndexedBase("u")
        Pdot = sp.IndexedBase("Pdot")
        r = sp.Symbol("r", positive=True)
        d.symbol_names[sp.Symbol("Pdot")] = r"\dot{P}"
        i, i1 = bound_index(DIM, 0), bound_index(DIM, 1)
        V = canonical(sp.Sum(sp.Sum(P[i, i1] * s[i] * s[i1], (i1, 1, DIM.extent)), (i, 1, DIM.extent)))
        Vt = canonical(sp.Sum(sp.Sum(Pdot[i, i1] * s[i] * s[i1], (i1, 1, DIM.extent)), (i, 1, DIM.extent)))
        gradV = _symmetrize(pdiff(V, s[k]), (P,))
        a = bound_index(INPUT, 0)
        L = canonical(sp.Sum(sp.Sum(Q[i, i1] * s[i] * s[i1], (i1, 1, DIM.extent)), (i, 1, DIM.extent)) + r * sp.Sum(u[a] ** 2, (a, 1, INPUT.extent)))
        Fu = instantiate(canonical(substitute_indexed(F, x, u[placeholder("input")], (placeholder("input"),))), {self.i: k})
        Hu = canonical(L + sp.Sum(gradV * Fu, (k, 1, DIM.extent)))
        stationary = pdiff(Hu, u[beta])
        sol = _solve_linear(stationary, u[beta])
        if len(sol) != 1:
            self.add("lqr", "LQR: Riccati equation", (), "the stationarity condition in u could not be solved", ("value-function",), "failed")
            return
        ustar = canonical(sol[0])
        Hmin = _symmetrize(substitute_indexed(Hu, u, ustar, (beta,)), (P, Q))
        R = canonical(Vt + Hmin)
        m, n = k, l
        hess = canonical(pdiff(pdiff(R, s[m]), s[n]) / 2)
        quad = canonical(sp.Sum(sp.Sum(s[i] * s[i1] * instantiate(hess, {m: i, n: i1}), (i1, 1, DIM.extent)), (i, 1, DIM.extent)))
        residual = flatten_sums(R - quad)  # R is a quadratic form: equal to its Hessian's (an identity, no symmetry used)
        ric = _symmetrize(hess, (P, Q, Pdot))
        pdot_sol = _solve_linear(ric, Pdot[m, n])
        if len(pdot_sol) != 1:
            self.add("lqr", "LQR: Riccati equation", (), "the Riccati equation could not be solved for dP/dtau", ("value-function",), "failed")
            return
        rhs = flatten_sums(_symmetrize(canonical(pdot_sol[0]), (P, Q)))
        d.results["riccati_rhs"] = rhs
        d.results["lqr_control"] = ustar
        self.lqr_symbols = (P, Q, r, u)
        Vs = sp.Symbol("V")
        self.add("lqr-hjb", "LQR: the HJB equation with a quadratic cost", (
            eq(Dtau(Vs) + MinOver(Tex(r"\left\{s^{T} Q s + r |u|^{2} + \nabla V \cdot F_c(s, u)\right\}"), sp.Symbol("u")), sp.S.Zero),
            eq(Vs, V), eq(Ds(Vs, k), gradV), eq(u[beta], ustar)),
            r"the input $x$ is the control $u$; running cost $s^\top Q s + r|u|^2$ ($Q$ symmetric, $r > 0$); quadratic ansatz $V = s^\top P(\tau) s$ "
            r"with $P$ symmetric; the minimising $u$ solves $\partial/\partial u = 0$ (SymPy solve)", ("value-function",))
        self.add("riccati", "LQR: the Riccati equation", (
            eq(Pdot[m, n], rhs), eq(Tex(r"\mathcal{R}(s) - s^{T}\,\mathrm{Ric}\,s"), residual)),
            "substitute u* into the HJB equation: the residual is a quadratic form in s whose coefficient matrix (half its "
            "Hessian in s, SymPy) must vanish: the Riccati ODE, integrated backwards from P(T) = terminal weight; the HJB "
            "residual minus that quadratic form is " + ("0 (no linear or constant term)" if residual == 0 else "nonzero"),
            ("lqr-hjb",), "verified" if residual == 0 else "failed")
        self.lqr_fns = (rhs, ustar, (m, n), beta)

    # ------------------------------------------------------------------ linear-Gaussian Kolmogorov
    def kolmogorov_linear(self):
        """With noise: the linear-Gaussian case of the backward Kolmogorov equation, by the quadratic ansatz."""
        if self.sigma is None or len(self.states) != 1:
            return
        st = self.states[0]
        s = self.S[st]
        Flin = self.expand(self.fields[st])
        Flin = canonical(Flin.replace(lambda e: isinstance(e, (Tanh, Sigmoid)), lambda e: e.args[0]))
        k, l = self.k, self.l
        if not _is_linear(Flin, [s], self.i, k, l, None, affine=True):
            return
        P, q, c0 = sp.IndexedBase("P"), sp.IndexedBase("q"), sp.Symbol("c0", real=True)
        Pd, qd, c0d = sp.IndexedBase("Pdot"), sp.IndexedBase("qdot"), sp.Symbol("c0dot", real=True)
        for name, tex in (("Pdot", r"\dot{P}"), ("qdot", r"\dot{q}"), ("c0", "c_{0}"), ("c0dot", r"\dot{c}_{0}")):
            self.d.symbol_names[sp.Symbol(name)] = tex
        i, i1 = bound_index(DIM, 0), bound_index(DIM, 1)

        def quadratic(Pb, qb, cb):
            return canonical(sp.Sum(sp.Sum(Pb[i, i1] * s[i] * s[i1], (i1, 1, DIM.extent)), (i, 1, DIM.extent))
                             + sp.Sum(qb[i] * s[i], (i, 1, DIM.extent)) + cb)

        V, Vt = quadratic(P, q, c0), quadratic(Pd, qd, c0d)
        nu = self.d.results.get("noise_viscosity", self.sigma ** 2 / 2)
        from ..symbolic.calculus import laplacian

        Fk = instantiate(Flin, {self.i: k})
        R = canonical(Vt + sp.Sum(Fk * pdiff(V, s[k]), (k, 1, DIM.extent)) + nu * laplacian(V, s))
        zero_s = lambda e: substitute_indexed(e, s, sp.S.Zero, (self.i,))  # noqa: E731
        hess = canonical(pdiff(pdiff(R, s[k]), s[l]) / 2)
        lin = canonical(zero_s(pdiff(R, s[k])))
        const = canonical(zero_s(R))
        # R is a quadratic polynomial in s: equal to its Taylor expansion (an identity, no symmetry used)
        check = flatten_sums(R - (sp.Sum(sp.Sum(s[i] * s[i1] * instantiate(hess, {k: i, l: i1}), (i1, 1, DIM.extent)), (i, 1, DIM.extent))
                                  + sp.Sum(s[i] * instantiate(lin, {k: i}), (i, 1, DIM.extent)) + const))
        dP = _symmetrize(_solve_linear(_symmetrize(hess, (P, Pd)), Pd[k, l])[0], (P,))
        dq = _symmetrize(flatten_sums(_solve_linear(lin, qd[k])[0]), (P,))
        dc = flatten_sums(_solve_linear(const, c0d)[0])
        dP = flatten_sums(dP)
        self.d.results["kolmogorov_linear_field"] = Flin
        self.d.results["kolmogorov_rhs"] = (dP, dq, dc)
        self.kolm = (P, q, c0, dP, dq, dc, Flin)
        self.add("kolmogorov-linear", "Viscous network, linear-Gaussian case: backward Kolmogorov by a quadratic ansatz", (
            eq(sp.IndexedBase("F_lin")[k], _show(Flin)), eq(sp.Symbol("V"), V), eq(Pd[k, l], dP), eq(qd[k], dq), eq(c0d, dc),
            eq(Tex(r"\mathcal{R}(s) - \mathrm{(quadratic + linear + constant\ parts)}"), check)),
            r"gates replaced by the identity make $F$ affine; $V_\tau + F\cdot\nabla V + \nu \Delta V = 0$ with $V = s^\top P s + q\cdot s + c_0$ splits "
            r"into its quadratic, linear and constant parts (second and first derivatives in $s$ at $s = 0$, SymPy), each an ODE "
            "integrated backwards from the terminal loss; the closed form is the Gaussian law of the final state",
            ("value-function",), "verified" if check == 0 else "failed")

    # ------------------------------------------------------------------ generated functions
    def functions(self):
        h = self.h
        state_args = [self.arg(s) for s in self.states]
        costate_args = [ArgSpec(self.P[s].label.name, self.P[s], ("dim",), batched=True, doc=f"costate of {s} at step k+1")
                        for s in self.states]
        input_args = [self.arg(x) for x in self.inputs]
        control_args = [self.arg(c) for c in self.controls if c != self.dyn.step_size]
        h_arg = self.arg(self.dyn.step_size)
        base_args = state_args + input_args + control_args + [h_arg]
        fwd_lets = [Let(D.base, D.index, D.expr) for D in self.defs]
        i = self.i

        def prog(name, doc, args, lets, outputs):
            used = set()
            for e in [let.expr for let in lets] + [o.expr for o in outputs]:
                used |= e.free_symbols | set(e.atoms(sp.IndexedBase))
            args = [a for a in args if a.symbol in used]
            self.d.fns[name] = ProgramSpec(name, tuple(args), tuple(lets), tuple(outputs), doc)

        nexts = [Output(f"{s}_next", canonical(self.S[s][i] + h * self.fields[s]), (i,), doc=f"{s}_(k+1)") for s in self.states]
        prog("step", "One step s_(k+1) = s_k + h F(s_k, x_k, theta) of the network", base_args, fwd_lets, nexts)
        prog("field", "The field F(s, x, theta)", base_args, fwd_lets,
             [Output(f"F_{s}", self.fields[s], (i,)) for s in self.states])
        prog("hamiltonian", "The control Hamiltonian H = p . F per sample", base_args + costate_args, fwd_lets,
             [Output("H", self.H, ())])
        adj_lets = self.chain.lets()
        cost_outs = [Output(f"{self.P[s].label.name}_k", self.chain.substitute_zero_adjoints(self.costate_exprs[s]), (self.k,),
                            doc=f"costate of {s} at step k") for s in self.states]
        grads = []
        for name, (g, idx) in self.param_exprs.items():
            grads.append(Output(f"d_{name}", self.chain.substitute_zero_adjoints(g), idx, batch_sum=True, doc=f"dPhi/d{name} of this step"))
        in_grads = [Output(f"d_{name}", self.chain.substitute_zero_adjoints(g), idx, doc=f"dPhi/d{name}_k")
                    for name, (g, idx) in self.input_exprs.items()]
        all_args = base_args + costate_args
        prog("costate_step", "Costate step p_k = p_(k+1) + d_s(h H)(s_k, p_(k+1), theta): exactly backprop through one step",
             all_args, fwd_lets + adj_lets, cost_outs)
        prog("parameter_gradient", "Parameter gradients d_theta(h H)(s_k, p_(k+1), theta) of one step, summed over the batch",
             all_args, fwd_lets + adj_lets, grads)
        adj_exprs = [let.expr for let in adj_lets] + [o.expr for o in cost_outs + grads + in_grads]
        needed = [D for D in self.defs if any(e.has(D.base) for e in adj_exprs)]
        saved_args = [self.def_arg(D) for D in needed]
        # the adjoints the parameter gradients need, returned per step so that shared weights get their
        # gradient from one contraction over all steps and samples (parameter_gradient_saved)
        bars = [D for D in self.defs if self.chain.adjoints[D.name][2] != 0 and any(o.expr.has(self.chain.bars[D.name]) for o in grads)]
        bar_outs = [Output(self.chain.bars[D.name].name if not D.axes else self.chain.bars[D.name].label.name,
                           self.chain.adjoints[D.name][0], self.chain.adjoints[D.name][1], doc="adjoint, for parameter_gradient_saved")
                    for D in bars]
        prog("adjoint_step", "Costate and parameter gradients of one step from the intermediates saved by forward_step",
             all_args + saved_args, adj_lets, cost_outs + grads)
        if in_grads:
            prog("adjoint_step_inputs", "adjoint_step that also returns the input gradients (the seed of the layer below)",
                 all_args + saved_args, adj_lets, cost_outs + grads + in_grads)
        prog("costate_step_saved", "Costates of one step and the adjoints the parameter gradients need, from saved intermediates",
             all_args + saved_args, adj_lets, cost_outs + bar_outs)
        if in_grads:
            prog("costate_step_saved_inputs", "costate_step_saved that also returns the input gradients",
                 all_args + saved_args, adj_lets, cost_outs + bar_outs + in_grads)
        bar_args = [ArgSpec(o.name, self.chain.bars[D.name], D.axes, batched=True, doc="adjoint returned by costate_step_saved")
                    for o, D in zip(bar_outs, bars)]
        prog("parameter_gradient_saved", "Parameter gradients summed over every leading (step, sample) axis, from saved adjoints",
             all_args + saved_args + bar_args, [], grads)
        kinks = self.kink_arguments()
        if kinks:  # the distance of every relu / abs argument to its kink, per step (measured by the checks)
            outs = []
            for n, (_, arg) in enumerate(kinks):
                free = sorted(free_indices(arg), key=lambda ix: (AXES[axis_of(ix).name].order, str(ix)))
                outs.append(Output(f"kink_{n}", arg, tuple(free), doc="argument of a relu / abs node (its kink is at 0)"))
            prog("kinks", "The arguments of every relu / abs node of the step (max and min are relu): zero on the kink set",
                 base_args, fwd_lets, outs)
        saved = [Output(D.name, D.template, D.index, doc="saved for adjoint_step") for D in needed]
        prog("forward_step", "One step and the intermediates adjoint_step needs (saved, as autograd saves tensors)",
             base_args, fwd_lets, nexts + saved)
        # continuous time
        c_lets = [Let(D.base, D.index, D.expr) for D in self.cdefs]
        c_args = [a for a in base_args if a.name != self.dyn.step_size or any(D.expr.has(h) for D in self.cdefs)]
        prog("continuous_field", "The continuous field F_c = lim_(h->0) F", c_args, c_lets,
             [Output(f"F_{s}", self.cfields_dec[s], (i,)) for s in self.states])
        cadj = self.cchain.lets()
        prog("continuous_costate_rhs", "dp/dt = -d_s H_c(s, p, theta): the continuous costate equation",
             c_args + costate_args, c_lets + cadj,
             [Output(f"dp_{s}", self.cchain.substitute_zero_adjoints(self.ccostate[s]), (self.k,)) for s in self.states])
        if hasattr(self, "lqr_fns"):
            rhs, ustar, (m, n), beta = self.lqr_fns
            P, Q, r, u = self.lqr_symbols
            A_args = [a for a in control_args if canonical(rhs).has(a.symbol) or ustar.has(a.symbol)]
            Parg = ArgSpec("P", P, ("dim", "dim"), doc="value matrix P(tau) (symmetric)")
            Qarg = ArgSpec("Q", Q, ("dim", "dim"), doc="state cost weight (symmetric)")
            rarg = ArgSpec("r", r, (), positive=True, doc="control cost weight")
            rhs_args = [Parg] + A_args + [Qarg, rarg] + ([h_arg] if rhs.has(h) else [])
            prog("riccati_rhs", "dP/dtau of the LQR Riccati equation derived from the HJB equation", rhs_args, [],
                 [Output("dP", rhs, (m, n))])
            u_args = [self.arg(self.states[0]), Parg] + A_args + [rarg] + ([h_arg] if ustar.has(h) else [])
            prog("lqr_control", "The optimal control u* = argmin of the HJB Hamiltonian", u_args, [], [Output("u", ustar, (beta,))])
        if hasattr(self, "kolm"):
            P, q, c0, dP, dq, dc, Flin = self.kolm
            k, l = self.k, self.l
            args = [ArgSpec("P", P, ("dim", "dim"), doc="quadratic coefficient"), ArgSpec("q", q, ("dim",), doc="linear coefficient"),
                    ArgSpec("c0", c0, (), doc="constant")] + control_args + [self.arg(self.dyn.noise)]
            prog("kolmogorov_rhs", "Coefficient ODEs (dP, dq, dc0)/dtau of the linear-Gaussian backward Kolmogorov equation",
                 args, [], [Output("dP", dP, (k, l)), Output("dq", dq, (k,)), Output("dc0", dc, ())])


# ----------------------------------------------------------------------------- helpers
def _substitute_raw(expr, D: Definition):
    """Every occurrence of the definition ``D`` replaced by its expression (capture-free, not canonicalised)."""
    if not expr.has(D.base):
        return expr
    if not D.axes:
        return expr.xreplace({D.base: D.expr})
    expr = fresh_binders(sp.sympify(expr))
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == D.base,
                        lambda e: instantiate(D.expr, dict(zip(D.index, e.indices))))


def _show(expr):
    """For display: every placeholder index (``i``, ``mu``, ``alpha``) left free renamed to its axis's first free
    index (``k``, ``nu``, ``beta``), so that it cannot be confused with a summation index of the same letter."""
    expr = sp.sympify(expr)
    mapping = {}
    for ix in free_indices(expr):
        ax = axis_of(ix)
        if ix == placeholder(ax.name):
            mapping[ix] = free_index(ax, 0)
    return canonical(instantiate(expr, mapping)) if mapping else expr


def _solve_linear(expr, x) -> list:
    """The solution of ``expr = 0`` for ``x`` when ``expr`` is affine in ``x`` (else no solution: ``[]``)."""
    a = pdiff(expr, x)
    if a == 0 or a.has(x):
        return []
    b = canonical(expr.xreplace({x: sp.S.Zero}))
    return [canonical(-b / a)]


def _coefficient(expr, term):
    """Coefficient of ``term`` (an expression) in the sum ``expr``."""
    out = sp.S.Zero
    for t in sp.Add.make_args(expr):
        c = canonical(t / term)
        if not c.has(Dss) and not c.has(Ds):
            out += c
    return canonical(out)


def _limit(F, h):
    """``lim_{h -> 0} F`` with every subexpression free of ``h`` held as a dummy."""
    held_of: dict = {}

    def hold(e):
        if not e.has(h):
            if e.is_Atom and not isinstance(e, sp.Indexed):
                return e
            if e not in held_of:
                held_of[e] = sp.Dummy("c", real=True)
            return held_of[e]
        if e.is_Atom:
            return e
        return e.func(*[hold(a) for a in e.args])

    out = sp.limit(hold(F), h, 0, "+")
    return canonical(out.xreplace({dm: e for e, dm in held_of.items()}))


def _is_linear(F, bases, ph, k, l, beta, affine=False) -> bool:
    """Is ``F`` (free index ``ph``) linear (or affine) in the given vector bases?"""
    comps = []
    for b in bases:
        ax = "input" if (beta is not None and b is bases[-1] and len(bases) > 1) else "dim"
        comps.append((b, ax))
    idx = {"dim": [k, l], "input": [beta, free_index(INPUT, 1)] if beta is not None else []}
    F = canonical(F)
    for (b1, a1) in comps:
        for (b2, a2) in comps:
            v1, v2 = b1[idx[a1][0]], b2[idx[a2][1]]
            if pdiff(pdiff(F, v1), v2) != 0:
                return False
    if affine:
        return True
    zero = F
    for b, a in comps:
        zero = substitute_indexed(zero, b, sp.S.Zero, (placeholder(a),))
    return canonical(zero) == 0


def flatten_sums(expr, rounds: int = 20):
    """Nested sums of products rewritten as one sum over all their indices, canonicalised.

    ``sum_i a_i sum_j b_ij`` and ``sum_j sum_i b_ij a_i`` are the same number written in two
    nestings; as one sum over ``(i, j)`` the canonical form (which tries every naming of a
    multi-index sum) makes them equal. Used to compare derivatives reached by different routes.
    """
    terms = []
    for term in sp.Add.make_args(canonical(expr)):  # term by term: like terms then merge in one Add
        for _ in range(rounds):
            new = _rename_many(canonical(_flatten(term)))
            if new == term:
                break
            term = new
        terms.append(term)
    out = canonical(sp.Add(*terms))
    return out if out == 0 else _rename_many(out)


def _flatten(e):
    if e.is_Atom or isinstance(e, (sp.Indexed, sp.Idx, sp.IndexedBase)):
        return e
    args = tuple(_flatten(a) for a in e.args)
    if args != e.args:
        e = e.func(*args)
    if e.is_Pow and isinstance(e.base, sp.Sum) and e.exp.is_Integer and 2 <= e.exp <= 4:
        return sp.Mul(*[fresh_binders(e.base) for _ in range(int(e.exp))], evaluate=False)
    if isinstance(e, sp.Sum) or (e.is_Mul and any(isinstance(f, sp.Sum) for f in e.args)):
        limits = list(e.limits) if isinstance(e, sp.Sum) else []
        body = e.function if isinstance(e, sp.Sum) else e
        factors = []
        for f in sp.Mul.make_args(body):
            if isinstance(f, sp.Sum):
                f = fresh_binders(f)
                factors.append(f.function)
                limits += list(f.limits)
            else:
                factors.append(f)
        if limits:
            return sp.Sum(sp.Mul(*factors), *limits)
    return e


def _rename_many(e):
    """Canonical names for the bound indices of a sum over more than four of them.

    :func:`canonical` tries every naming of a multi-index sum up to four indices; here each
    axis's indices are permuted separately (at most 5! namings per axis) and the smallest
    printed form is kept, so equal terms of larger contractions coincide too.
    """
    import itertools

    if e.is_Atom or isinstance(e, (sp.Indexed, sp.Idx, sp.IndexedBase)):
        return e
    args = tuple(_rename_many(a) for a in e.args)
    if args != e.args:
        e = e.func(*args)
    if not isinstance(e, sp.Sum) or len(e.limits) <= 4:
        return e
    groups: dict = {}
    for lim in e.limits:
        groups.setdefault(axis_of(lim[0]).name, []).append(lim[0])
    if any(len(g) > 5 for g in groups.values()):
        return e
    best = None
    for combo in itertools.product(*[itertools.permutations(g) for g in groups.values()]):
        mapping = {}
        for g, perm in zip(groups.values(), combo):
            mapping.update(dict(zip(g, perm)))
        cand = sp.Sum(e.function.xreplace(mapping), *sorted(e.limits, key=lambda lim: str(lim[0])))
        key = sp.srepr(cand)
        if best is None or key < best[0]:
            best = (key, cand)
    return best[1]


def zero_for_symmetric(expr, bases) -> bool:
    """Is ``expr`` zero for every symmetric value of the (d, d) matrices ``bases``?

    Each ``B[a, b]`` becomes ``(S[a, b] + S[b, a])/2`` with ``S`` unconstrained, so the question is
    a plain identity, decided by :func:`flatten_sums`.
    """
    for B in bases:
        S = sp.IndexedBase(f"_sym_{B.label}")
        expr = expr.replace(lambda e, B=B: isinstance(e, sp.Indexed) and e.base == B,
                            lambda e, S=S: (S[e.indices[0], e.indices[1]] + S[e.indices[1], e.indices[0]]) / 2)
    return flatten_sums(expr) == 0


def _symmetrize(expr, bases, rounds: int = 8):
    """Write every ``B[a, b]`` of a symmetric matrix ``B`` with its indices in sorted order."""
    expr = canonical(expr)
    for _ in range(rounds):
        new = expr.replace(
            lambda e: isinstance(e, sp.Indexed) and e.base in bases and len(e.indices) == 2 and str(e.indices[0]) > str(e.indices[1]),
            lambda e: e.base[e.indices[1], e.indices[0]],
        )
        new = canonical(new)
        if new == expr:
            return new
        expr = new
    return expr
