"""Training as optimal control: the dynamic-programming recursion of a network's training cost.

A control-family spec with ``Dynamics(training=Training(penalty="rho", target="y"))`` is trained on
the cost ``J = sum_n Phi(s_K^n) + h sum_k R(theta_k)`` of a batch of samples ``n``, with the terminal
loss ``Phi(s) = |s - y|^2 / 2`` and the L2 penalty ``R(theta) = (rho/2) sum_c |c|^2`` on every
control ``c`` of every step (the controls are per step, as a residual network's blocks). For a
field ``F`` affine in the state and linear in the controls (a linear residual network
``F = theta s + b``), :func:`training_pass` derives with SymPy:

* the **Pontryagin conditions** at an optimum: the augmented Hamiltonian
  ``sum_n p^n . F(s^n, theta) + R(theta)`` is a strictly convex quadratic in the controls (its
  Hessian is ``rho I``, verified), so the optimal controls are its unique minimiser,
  ``theta_k = -(1/rho) sum_n d_theta(p_{k+1}^n . F(s_k^n, theta))`` (the costate ``p`` is backprop's);
* the **Bellman recursion** ``V_k(S) = min_theta {h R(theta) + V_{k+1}(S + h F(S, theta))}`` of the
  batch ``S``, ``V_K = sum_n Phi``;
* that **in the weights the value function is not quadratic**: for one sample in one dimension the
  Bellman minimum over ``theta`` of a quadratic ``V_{k+1}`` is a rational function of the state
  (its third derivative is not zero), so dynamic programming in the weights has no Riccati
  recursion and the Pontryagin conditions are what characterise them;
* that the additive control (the **bias**) sees only the batch mean, and **in the bias the
  value function is quadratic**: with ``V_{k+1}(s) = s^T P s / 2 - q . s + c`` the minimiser is the
  affine feedback ``b_k = -(1/h)(I - rho M^{-1}) A s + M^{-1} q`` (``M = rho I + h P``, ``A = I + h
  d_s F``, solved by contracting with ``M^{-1}``), and ``V_k`` is again quadratic (verified: the
  residual is 0) with the **Riccati recursion** ``P_k = (rho/h) A^T (I - rho M^{-1}) A``,
  ``q_k = rho A^T M^{-1} q``, ``c_k = c - (h/2) q^T M^{-1} q``.

Generated functions: ``terminal_loss``, ``terminal_costate``, ``running_cost``, ``pmp_controls``,
``bellman_curvature`` (``M`` from ``P``), ``riccati_step``, ``riccati_linear``, ``riccati_constant``,
``optimal_bias`` and ``quadratic_value``.
"""

from __future__ import annotations

import sympy as sp

from ..ir import ArgSpec, BatchSum, FunctionSpec, Output, ProgramSpec
from ..spec.parse import placeholder
from ..symbolic.axes import AXES, DIM, bound_index, free_index
from ..symbolic.calculus import canonical, instantiate, pdiff, substitute_indexed
from ..symbolic.latex import Tex, eq
from ..symbolic.magnitude import magnitude
from ..symbolic.matrices import InverseBase, SPDBase, SymmetricBase
from .anisotropic import solve_indexed
from .passes import register
from .pontryagin import MinOver, _symmetrize, flatten_sums

__all__ = ["training_pass"]


@register("training-hjb", order=320, when=lambda d: d.sym.spec.dynamics is not None and d.sym.spec.dynamics.training is not None)
def training_pass(d) -> None:
    """Training as control: Pontryagin conditions, the Bellman recursion and, in the bias, the Riccati recursion."""
    TrainingPass(d).run()


def _leaf(base, axes, first: int = 0):
    """``base[k, l, ...]`` with one free index per slot (distinct within an axis, from the ``first``-th on), and those indices."""
    counts: dict = {}
    idx = []
    for a in axes:
        n = counts.get(a, first)
        counts[a] = n + 1
        idx.append(free_index(AXES[a], n))
    return (base[tuple(idx)], tuple(idx)) if idx else (base, ())


def _sum_squares(base, axes):
    """``sum over every index of base^2`` (``base^2`` for a scalar)."""
    comp, idx = _leaf(base, axes)
    out = comp ** 2
    for ix in idx:
        out = sp.Sum(out, (ix, 1, ix.upper))
    return out


class TrainingPass:
    def __init__(self, d):
        self.d = d
        sym = d.sym
        self.sym = sym
        self.dyn = sym.spec.dynamics
        self.training = self.dyn.training
        self.state = next(iter(sym.states))
        self.s = sym.states[self.state]
        self.p = sym.costates[self.state]
        self.y = sym.tensors[self.training.target]
        self.rho = sym.scalars[self.training.penalty]
        self.h = sym.scalars[self.dyn.step_size]
        self.i = placeholder("dim")
        self.k, self.l = free_index(DIM, 0), free_index(DIM, 1)
        self.j1, self.j2 = bound_index(DIM, 1), bound_index(DIM, 2)
        self.controls = [c for c in self.dyn.controls if c != self.dyn.step_size]
        self.F = d.results["field_expanded"][self.state]  # gates and pre-activations substituted

    # ------------------------------------------------------------------ helpers
    def add(self, *args, **kwargs):
        self.d.add(*args, **kwargs)

    def tex(self, name: str, latex: str):
        self.d.symbol_names[sp.Symbol(name)] = latex

    def control(self, name):
        return self.sym.tensors[name] if name in self.sym.tensors else self.sym.scalars[name]

    def control_axes(self, name):
        return tuple(self.sym.tensor_decl[name].axes) if name in self.sym.tensor_decl else ()

    def fn(self, name, expr, args, out=(), doc=""):
        """A generated function of ``expr`` (and its magnitude), with the arguments among ``args`` it uses."""
        expr = canonical(expr)
        used = expr.free_symbols | set(expr.atoms(sp.IndexedBase))
        inv = {b.of for b in expr.atoms(InverseBase)}
        present = [a for a in args if a.symbol in used or a.symbol in inv]
        self.d.fns[name] = FunctionSpec(name, expr, tuple(present), tuple(out), doc)
        scale = magnitude(expr)
        used = scale.free_symbols | set(scale.atoms(sp.IndexedBase))
        inv = {b.of for b in scale.atoms(InverseBase)}
        self.d.magnitudes[name] = FunctionSpec(f"{name}_magnitude", scale, tuple(a for a in args if a.symbol in used or a.symbol in inv),
                                               tuple(out), f"magnitude of the terms of {name} (the scale of its rounding error)")

    def quad(self, P, x):
        """``x^T P x / 2`` for a vector template ``x`` over the placeholder index."""
        j1, j2, D = self.j1, self.j2, DIM.extent
        xa, xb = instantiate(x, {self.i: j1}), instantiate(x, {self.i: j2})
        return sp.Sum(sp.Sum(P[j1, j2] * xa * xb, (j2, 1, D)), (j1, 1, D)) / 2

    def dot(self, v, x):
        return sp.Sum(v[self.j1] * instantiate(x, {self.i: self.j1}), (self.j1, 1, DIM.extent))

    # ------------------------------------------------------------------ main
    def run(self):
        self.cost()
        if not self.linear_in_controls():
            self.add("training-pmp", "Pontryagin conditions of training", (),
                     "the field is not linear in every control: the augmented Hamiltonian is not a quadratic in the controls, "
                     "and its minimiser has no closed form", ("training-cost",), "failed")
            return
        self.pontryagin()
        self.bellman()
        self.weights_not_quadratic()
        bias = self.additive_control()
        if bias is None or not self.affine_in_state():
            self.add("bias-riccati", "LQR in the bias: does not apply", (),
                     "no control enters the field additively (F = F_0(s, theta) + b) with F_0 linear in the state: "
                     "no part of the value function is known to be quadratic", ("training-bellman",), "failed")
            return
        self.bias = bias
        self.mean_decomposition()
        self.riccati()

    # ------------------------------------------------------------------ the cost
    def cost(self):
        i, s, y, rho, h = self.i, self.s, self.y, self.rho, self.h
        Phi = canonical(sp.Sum((s[i] - y[i]) ** 2, (i, 1, DIM.extent)) / 2)
        R = canonical(rho / 2 * sp.Add(*[_sum_squares(self.control(c), self.control_axes(c)) for c in self.controls]))
        self.Phi, self.R = Phi, R
        self.d.results["terminal_loss"] = Phi
        self.d.results["running_cost"] = R
        for name, latex in (("Phi", r"\Phi"), ("R", "R"), ("J", "J")):
            self.tex(name, latex)
        ctrl = ", ".join(self.controls)
        self.add("training-cost", "Training as a control problem: the cost", (
            eq(sp.Symbol("Phi"), Phi), eq(sp.Symbol("R"), R),
            eq(sp.Symbol("J"), Tex(r"\sum_{n} \Phi(s_K^{n}) + h \sum_{k=0}^{K-1} R(\theta_k)"))),
            f"the network's controls {ctrl} of every step k are trained on a batch of samples n (inputs s_0^n, targets y^n): "
            f"the terminal loss Phi = |s_K - y|^2/2 summed over the samples, plus the L2 penalty (rho/2)|theta_k|^2 on every control "
            "of every step, weighted by the step h", ("step-map",), "stated")
        state_arg = self.sym.arg(self.state)
        y_arg = self.sym.arg(self.training.target)
        self.fn("terminal_loss", Phi, [state_arg, y_arg], (), "The terminal loss Phi(s) = |s - y|^2 / 2 of one sample")
        self.fn("terminal_costate", canonical(pdiff(Phi, s[self.k])), [state_arg, y_arg], (self.k,),
                "The terminal costate p_K = grad Phi(s_K) = s_K - y (the seed of backprop)")
        self.fn("running_cost", canonical(h * R), [self.sym.arg(c) for c in self.controls] + [self.sym.arg(self.training.penalty),
                                                                                               self.sym.arg(self.dyn.step_size)],
                (), "The penalty h R(theta) of one step")

    def linear_in_controls(self) -> bool:
        """Every second derivative of F in the controls is 0."""
        for c in self.controls:
            comp, _ = _leaf(self.control(c), self.control_axes(c))
            for c2 in self.controls:
                comp2, _ = _leaf(self.control(c2), self.control_axes(c2), first=2)
                if pdiff(pdiff(self.F, comp), comp2) != 0:
                    return False
        return True

    # ------------------------------------------------------------------ Pontryagin
    def pontryagin(self):
        i, s, p, rho = self.i, self.s, self.p, self.rho
        pF = canonical(sp.Sum(p[i] * self.F, (i, 1, DIM.extent)))
        self.tex("Hrho", r"\mathcal{H}_{\rho}")
        eqs = [eq(sp.Symbol("Hrho"), sp.Add(BatchSum(pF), self.R, evaluate=False))]
        outputs, ok = [], True
        for c in self.controls:
            comp, idx = _leaf(self.control(c), self.control_axes(c))
            local = pdiff(pF, comp)
            # the augmented Hamiltonian is quadratic in the controls with Hessian rho I: its stationary point is its minimiser
            ok = ok and pdiff(pdiff(self.R, comp), comp) == rho and pdiff(local, comp) == 0
            star = canonical(-local / rho)
            outputs.append(Output(f"{c}_star", star, idx, batch_sum=True, doc=f"the control {c} minimising the augmented Hamiltonian"))
            self.tex(f"{c}_opt", (self.d.symbol_names.get(sp.Symbol(c)) or self.sym.latex_names().get(comp.base.label if idx else comp, c))
                     + "^{*}")
            target = sp.IndexedBase(f"{c}_opt")[idx] if idx else sp.Symbol(f"{c}_opt")
            eqs.append(eq(target, -BatchSum(local) / rho))
        self.d.results["pmp_controls"] = {o.name: o.expr for o in outputs}
        self.add("training-pmp", "Pontryagin: the optimal controls minimise the augmented Hamiltonian", eqs,
                 "dJ/dtheta_k = h (sum_n d_theta(p_{k+1}^n . F(s_k^n, theta_k)) + d_theta R) with p the costate of backprop: the "
                 "augmented Hamiltonian sum_n p.F + R is a quadratic in the controls with Hessian rho I (verified: F is linear in them), "
                 "so at an optimum every control is its unique minimiser (the discrete minimum principle holds for this network), "
                 "with p_{k+1} and s_k of the optimal trajectory", ("training-cost", "discrete-costate", "parameter-gradient"),
                 "verified" if ok else "failed")
        args = [ArgSpec(self.state, s, ("dim",), batched=True, doc="state s_k of every sample"),
                ArgSpec(p.label.name, p, ("dim",), batched=True, doc="costate p_(k+1) of every sample"),
                self.sym.arg(self.training.penalty)]
        used = set().union(*[o.expr.free_symbols | set(o.expr.atoms(sp.IndexedBase)) for o in outputs])
        args = [a for a in args if a.symbol in used]
        self.d.fns["pmp_controls"] = ProgramSpec("pmp_controls", tuple(args), (), tuple(outputs),
                                                 "The controls of step k that minimise the augmented Hamiltonian, from s_k and p_(k+1) "
                                                 "summed over the batch")

    def bellman(self):
        for name, latex in (("V_k", "V_{k}"), ("V_k1", "V_{k+1}"), ("V_K", "V_{K}")):
            self.tex(name, latex)
        ctrl = sp.Symbol(",".join(self.controls))
        self.add("training-bellman", "Dynamic programming: the Bellman recursion of training", (
            eq(Tex(r"V_{K}(S)"), Tex(r"\sum_{n} \Phi(s^{n})")),
            eq(Tex(r"V_{k}(S)"), MinOver(Tex(r"\left\{h R(\theta) + V_{k+1}\big(S + h F(S, \theta)\big)\right\}"), ctrl))),
            "Bellman's principle of optimality for the cost-to-go of the batch S = (s^n)_n (every sample shares the controls): the "
            "discrete form of the HJB equation of the value function, whose h -> 0 limit is V_tau + min_theta {R + grad V . F} = 0",
            ("training-cost", "value-function"), "stated")

    def weights_not_quadratic(self):
        """One sample, d = 1, bias held at 0: the Bellman minimum over the weight is rational in the state."""
        sv, th, P, q, c = sp.symbols("s theta P q c", real=True)
        rho, h = self.rho, self.h
        Q = rho * h / 2 * th ** 2 + P / 2 * (sv + h * th * sv) ** 2 - q * (sv + h * th * sv) + c
        sol = sp.solve(sp.diff(Q, th), th)
        ok = len(sol) == 1
        Vk = sp.factor(sp.simplify(Q.subs(th, sol[0]))) if ok else sp.nan
        third = sp.simplify(sp.diff(Vk, sv, 3)) if ok else sp.nan
        not_quadratic = ok and third != 0
        self.d.results["weights_value_d1"] = Vk
        self.add("training-weights-bellman", "In the weights the value function is not quadratic", (
            eq(Tex(r"V_{k+1}(s)"), P / 2 * sv ** 2 - q * sv + c), eq(Tex(r"\theta^{*}(s)"), sol[0] if ok else sp.nan),
            eq(Tex(r"V_{k}(s)"), Vk), eq(Tex(r"\partial_s^{3} V_{k}(s)"), third)),
            "one sample in one dimension, bias at 0: the minimiser of the Bellman minimand over the weight theta (SymPy solve) "
            "makes V_k a rational function of s with denominator rho + h P s^2" + (", whose third derivative is not 0: the "
            "quadratic ansatz does not close, so dynamic programming in the weights has no Riccati recursion; the Pontryagin "
            "conditions characterise the optimal weights" if not_quadratic else ""),
            ("training-bellman",), "derived" if not_quadratic else "failed")

    # ------------------------------------------------------------------ the bias
    def additive_control(self):
        """The control ``b`` over the state dimension with ``dF_i/db_k = delta_ik`` (None if there is none)."""
        for c in self.controls:
            if self.control_axes(c) == ("dim",) and pdiff(self.F, self.control(c)[self.k]) == sp.KroneckerDelta(self.i, self.k):
                return c
        return None

    def affine_in_state(self) -> bool:
        s, k, l = self.s, self.k, self.l
        return pdiff(pdiff(self.F, s[k]), s[l]) == 0

    def mean_decomposition(self):
        b = self.control(self.bias)
        F0 = canonical(substitute_indexed(self.F, b, sp.S.Zero, (self.k,)))
        at0 = canonical(substitute_indexed(F0, self.s, sp.S.Zero, (self.k,)))
        self.F0 = F0
        self.tex("F_0", "F_{0}")
        ok = at0 == 0 and self.affine_in_state()
        self.add("training-mean", "The bias sees the batch mean only", (
            eq(sp.IndexedBase("F")[self.i], sp.Add(sp.IndexedBase("F_0")[self.i], b[self.i], evaluate=False)),
            eq(sp.IndexedBase("F_0")[self.i], F0),
            eq(Tex(r"\sum_{n} \Phi(s^{n})"), Tex(r"N\,\Phi(\bar{s}; \bar{y}) + \sum_{n} \tfrac{1}{2}|\delta s^{n} - \delta y^{n}|^{2}"))),
            f"F = F_0(s, theta) + {self.bias} with F_0 linear in s (verified: F_0(0) = 0 and d^2F/ds^2 = 0), so the batch mean "
            f"s_bar follows s_bar' = s_bar + h (F_0(s_bar) + {self.bias}) and the deviations ds^n' = ds^n + h F_0(ds^n) do not see "
            f"{self.bias}; the loss splits into N Phi(s_bar; y_bar) and a part free of {self.bias} (the cross term is 0 as the "
            f"deviations sum to 0): in {self.bias} training is a linear-quadratic problem for s_bar with terminal weight N",
            ("training-bellman",), "derived" if ok else "failed")

    def riccati(self):
        i, k, l, s, h, rho = self.i, self.k, self.l, self.s, self.h, self.rho
        b = self.control(self.bias)
        P, q, c, M = SymmetricBase("P"), sp.IndexedBase("q"), sp.Symbol("c", real=True), SPDBase("Mb")
        Minv = InverseBase(M)
        self.tex("Mb", "M")
        splus = canonical(s[i] + h * self.F)
        Vnext = canonical(self.quad(P, splus) - self.dot(q, splus) + c)
        Q = canonical(rho * h / 2 * sp.Sum(b[self.j1] ** 2, (self.j1, 1, DIM.extent)) + Vnext)
        stationary = _symmetrize(pdiff(Q, b[k]), (P,))
        P_of_M = (M[k, l] - rho * sp.KroneckerDelta(k, l)) / h  # M = rho I + h P
        stationary_M = canonical(substitute_indexed(stationary, P, P_of_M, (k, l)) / h)
        bstar = solve_indexed(sp.Eq(stationary_M, 0), b[k])
        if bstar is None:
            self.add("bias-riccati", "LQR in the bias: the Bellman minimum", (), "the stationarity condition in the bias could not be solved",
                     ("training-mean",), "failed")
            return
        self.add("bias-feedback", "LQR in the bias: the optimal feedback", (
            eq(Tex(r"V_{k+1}(s)"), Vnext), eq(M[k, l], rho * sp.KroneckerDelta(k, l) + h * P[k, l]),
            eq(sp.Eq(stationary_M, 0, evaluate=False).lhs, sp.S.Zero), eq(b[k], bstar)),
            f"quadratic ansatz V_(k+1)(s) = s^T P s/2 - q.s + c (P symmetric) for the mean state; the Bellman minimand "
            f"h R + V_(k+1)(s + h F) is a quadratic in {self.bias} with Hessian h M, M = rho I + h P (positive definite as P is "
            f"positive semidefinite); its stationarity, written with P = (M - rho I)/h, is solved by contracting with M^-1: the "
            f"optimal {self.bias} is an affine feedback of the state", ("training-mean",))
        Q_M = canonical(substitute_indexed(Q, P, P_of_M, (k, l)))
        Vk = canonical(substitute_indexed(Q_M, b, bstar, (k,)))
        zero_s = lambda e: canonical(substitute_indexed(e, s, sp.S.Zero, (k,)))  # noqa: E731
        hess = _symmetrize(pdiff(pdiff(Vk, s[k]), s[l]), (M,))
        lin = zero_s(pdiff(Vk, s[k]))
        const = zero_s(Vk)
        j1, j2, D = self.j1, self.j2, DIM.extent
        Aof = lambda a, bb: sp.KroneckerDelta(a, bb) + h * instantiate(pdiff(self.F0, s[bb]), {i: a})  # noqa: E731
        P_new = canonical(rho / h * sp.Sum(sp.Sum(Aof(j1, k) * (sp.KroneckerDelta(j1, j2) - rho * Minv[j1, j2]) * Aof(j2, l), (j2, 1, D)),
                                           (j1, 1, D)))
        q_new = canonical(rho * sp.Sum(sp.Sum(Aof(j1, k) * Minv[j1, j2] * q[j2], (j2, 1, D)), (j1, 1, D)))
        c_new = canonical(c - h / 2 * sp.Sum(sp.Sum(q[j1] * Minv[j1, j2] * q[j2], (j2, 1, D)), (j1, 1, D)))
        same = [flatten_sums(_symmetrize(hess - P_new, (M,))) == 0, flatten_sums(-lin - q_new) == 0, flatten_sums(const - c_new) == 0]
        residual = flatten_sums(Vk - (sp.Sum(sp.Sum(s[j1] * s[j2] * instantiate(P_new, {k: j1, l: j2}), (j2, 1, D)), (j1, 1, D)) / 2
                                      - sp.Sum(s[j1] * instantiate(q_new, {k: j1}), (j1, 1, D)) + c_new))
        ok = all(same) and residual == 0
        self.d.results["riccati_step"] = P_new
        self.d.results["riccati_linear"] = q_new
        self.d.results["riccati_constant"] = c_new
        self.d.results["optimal_bias"] = bstar
        for name, latex in (("P_k", "P_{k}"), ("q_k", "q_{k}"), ("c_k", "c_{k}"), ("A", "A")):
            self.tex(name, latex)
        self.add("bias-riccati", "Riccati recursion: in the bias the value function stays quadratic", (
            eq(Tex("A_{kl}"), Aof(k, l)),
            eq(sp.IndexedBase("P_k")[k, l], P_new), eq(sp.IndexedBase("q_k")[k], q_new), eq(sp.Symbol("c_k"), c_new),
            eq(Tex(r"V_{k}(s) - \left(\tfrac{1}{2} s^{T} P_{k} s - q_{k} \cdot s + c_{k}\right)"), residual)),
            "substitute the feedback into the minimand: V_k(s) is a quadratic in s again, with P_k its Hessian, -q_k its gradient at 0 "
            "and c_k its value at 0 (SymPy; each equal to the compact form shown: P_k = (rho/h) A^T (I - rho M^-1) A); the residual "
            "is " + ("0: the recursion, run backwards from P_K = N I, q_K = N y_bar, c_K = N |y_bar|^2/2, gives the value function "
                     "and the optimal bias of training exactly" if ok else "not shown to be 0"),
            ("bias-feedback",), "verified" if ok else "failed")
        # generated functions
        args = {
            "s": ArgSpec(self.state, s, ("dim",), batched=True, doc="state (the batch mean)"),
            "P": ArgSpec("P", P, ("dim", "dim"), doc="quadratic coefficient of V_(k+1) (symmetric)"),
            "M": ArgSpec("Mb", M, ("dim", "dim"), doc="M = rho I + h P of V_(k+1) (from bellman_curvature)"),
            "q": ArgSpec("q", q, ("dim",), doc="linear coefficient of V_(k+1)"),
            "c": ArgSpec("c", c, (), doc="constant of V_(k+1)"),
        }
        weights = [self.sym.arg(cn) for cn in self.controls if cn != self.bias]
        scalars = [self.sym.arg(self.training.penalty), self.sym.arg(self.dyn.step_size)]
        self.fn("bellman_curvature", rho * sp.KroneckerDelta(k, l) + h * P[k, l], [args["P"]] + scalars, (k, l),
                "M = rho I + h P: the Hessian of the Bellman minimand in the bias, divided by h")
        self.fn("riccati_step", P_new, [args["M"]] + weights + scalars, (k, l), "P_k of the Riccati recursion, from M of V_(k+1)")
        self.fn("riccati_linear", q_new, [args["M"], args["q"]] + weights + scalars, (k,), "q_k of the Riccati recursion")
        self.fn("riccati_constant", c_new, [args["M"], args["q"], args["c"]] + scalars, (), "c_k of the Riccati recursion")
        self.fn("optimal_bias", bstar, [args["s"], args["M"], args["q"]] + weights + scalars, (k,),
                "The optimal bias of step k, an affine feedback of the (mean) state")
        self.fn("quadratic_value", canonical(self.quad(P, s[i]) - self.dot(q, s[i]) + c), [args["s"], args["P"], args["q"], args["c"]],
                (), "The quadratic value s^T P s/2 - q.s + c")
