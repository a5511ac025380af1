"""The variational family: a two-layer network in the mean-field scaling as a functional of its neuron measure (seed 004).

Passes (run when the spec has a :class:`~hjsym.MeanField`), for every activation of the spec:

* ``measure-network``: ``f[rho](x) = int phi(theta; x) drho(theta)``, ``phi = a sigma(w . x + b)``; for the
  empirical measure of ``m`` neurons, ``(1/m) sum_i phi(theta_i; x)`` (the network with the 1/m scaling);
* ``measure-first-variation``: the loss ``R[rho] = E l(f[rho](x), y)`` and its first variation
  ``dR/drho(theta) = E[d_f l(f(x), y) phi(theta; x)]``, computed as ``d/ds l(f + s phi)`` at ``s = 0``;
* ``mean-field-velocity``: ``v(theta) = -grad_theta dR/drho`` for each parameter, and the continuity
  equation ``d_t rho = div_theta(rho grad_theta dR/drho)`` (Mei, Montanari & Nguyen 2018; Chizat & Bach 2018);
* ``finite-width-gradient``: with ``f = (1/N) sum_j phi(theta_j)``,
  ``N dl/dtheta_m = grad_theta (d_f l phi)(theta_m)`` for every parameter (verified: the index calculus
  contracts the Kronecker deltas), so that gradient descent with step ``N eta`` moves every neuron
  with the velocity field: the time scaling of the mean-field limit.
"""

from __future__ import annotations

import sympy as sp

from ..ir import ArgSpec
from ..symbolic.axes import ATOM, DIM, bound_index, free_index
from ..symbolic.calculus import canonical, pdiff
from ..symbolic.latex import Tex, eq
from .derivation import Classification
from .passes import register

__all__ = ["neuron_indexed", "Expect"]


class Expect(sp.Function):
    """Display: the average over the data ``E[expr]``."""

    nargs = 1

    def _latex(self, printer, exp=None):
        out = rf"\mathbb{{E}}\left[{printer._print(self.args[0])}\right]"
        return rf"\left({out}\right)^{{{exp}}}" if exp else out


def _mean_field(d) -> bool:
    return d.sym.variational.get("kind") == "mean_field" and bool(d.sym.variational.get("activations"))


def neuron_indexed(expr, d, atom):
    """``expr`` with one neuron's parameters replaced by the entries of neuron ``atom`` (``a -> a[atom]``, ``w_i -> w[atom, i]``)."""
    spec = d.sym.spec.mean_field
    out = expr
    for name in spec.parameters:
        if name in d.sym.scalars:
            out = out.xreplace({d.sym.scalars[name]: sp.IndexedBase(name)[atom]})
        else:
            base = d.sym.tensors[name]
            out = out.replace(lambda e, base=base: isinstance(e, sp.Indexed) and e.base == base,
                              lambda e, name=name: sp.IndexedBase(name)[(atom,) + tuple(e.indices)])
    return out


def _neuron_args(d):
    """Code-generation arguments of the neuron-indexed parameters: ``(N,)`` or ``(N, d)`` tensors."""
    spec = d.sym.spec.mean_field
    out = []
    for name in spec.parameters:
        axes = ("atom",) if name in d.sym.scalars else ("atom", "dim")
        out.append(ArgSpec(name, sp.IndexedBase(name), axes, doc=f"parameter {name} of every neuron"))
    return tuple(out)


class _Unit:
    """One neuron of one activation: phi = readout * sigma(preactivation), and the loss."""

    def __init__(self, d, act_name):
        spec, sym = d.sym.spec.mean_field, d.sym
        self.spec = spec
        act = next(a for a in spec.activations if a.name == act_name)
        self.z = sym.scalars[act.variable]
        self.pre, self.readout = sym.variational["preactivation"], sym.variational["readout"]
        self.sigma = sym.variational["activations"][act_name]
        self.phi = self.readout * self.sigma.subs(self.z, self.pre)
        self.f, self.y = sym.scalars[spec.output], sym.scalars[spec.target]
        self.loss = sym.variational["loss"]
        self.dloss = sp.diff(self.loss, self.f)
        self.params = []  # (name, component, display)
        k = free_index(DIM)
        for name in spec.parameters:
            if name in sym.scalars:
                self.params.append((name, sym.scalars[name], ()))
            else:
                self.params.append((name, sym.tensors[name][k], (k,)))


@register("measure-network", order=600, when=_mean_field)
def measure_network(d):
    """f[rho](x) = int phi(theta; x) drho; the empirical measure of m neurons gives the 1/m-scaled network."""
    j = bound_index(ATOM)
    rows = []
    for act in d.sym.spec.mean_field.activations:
        u = _Unit(d, act.name)
        f_N = sp.Sum(neuron_indexed(u.phi, d, j), (j, 1, ATOM.extent)) / ATOM.extent
        d.results[f"network_{act.name}"] = f_N
        d.fn(f"network_{act.name}", f_N, f"the two-layer network (1/N) sum_j a_j {act.name}(w_j . x + b_j)", extra=_neuron_args(d))
        rows.append(eq(Tex(rf"f_{{\mathrm{{{act.name}}}}}(x)"), f_N))
    u = _Unit(d, d.sym.spec.mean_field.activations[0].name)
    d.add(
        "measure-network",
        "The network as an integral over its neuron measure",
        (eq(Tex(r"f[\rho](x)"), Tex(r"\int \phi(\theta; x)\, d\rho(\theta)")), eq(Tex(r"\phi(\theta; x)"), u.readout * sp.Function("sigma")(u.pre)),
         eq(Tex(r"\rho_N"), Tex(r"\frac{1}{N} \sum_{j} \delta_{\theta_j}")), *rows),
        "a two-layer network whose output layer averages its neurons (the 1/m of the mean-field scaling) is the integral of "
        "one neuron's output against the empirical measure of its parameters theta = (a, w, b)",
    )


@register("measure-first-variation", order=610, when=_mean_field)
def measure_first_variation(d):
    """R[rho] = E l(f[rho], y); dR/drho(theta) = E[d_f l phi(theta)]."""
    s = sp.Symbol("s", real=True)
    m = free_index(ATOM)
    rows = []
    for act in d.sym.spec.mean_field.activations:
        u = _Unit(d, act.name)
        phi_s = sp.Symbol(r"phi", real=True)
        first = sp.diff(u.loss.subs(u.f, u.f + s * phi_s), s).subs(s, 0)  # d/ds l(f + s phi) at s = 0
        fv = sp.expand(first.subs(phi_s, u.phi))
        d.results[f"first_variation_{act.name}"] = fv
        d.fn(f"first_variation_{act.name}", neuron_indexed(fv, d, m), f"first variation d_f l(f(x), y) phi(theta_m; x) of the loss, "
             f"per sample and neuron ({act.name})", out=(m,), extra=_neuron_args(d))
        rows.append(eq(Tex(rf"\frac{{\delta R}}{{\delta \rho}}(\theta)\big|_{{\mathrm{{{act.name}}}}}"), Expect(fv)))
    u = _Unit(d, d.sym.spec.mean_field.activations[0].name)
    d.add(
        "measure-first-variation",
        "The loss as a functional of the measure, and its first variation",
        (eq(Tex(r"R[\rho]"), Tex(r"\mathbb{E}_{(x, y)}\, \ell(f[\rho](x), y)")), eq(Tex(r"\ell(f, y)"), u.loss),
         eq(Tex(r"\frac{d}{ds} R[\rho + s\chi]\big|_{s=0}"), Tex(r"\int \mathbb{E}\big[\partial_f \ell\; \phi(\theta; x)\big]\, d\chi(\theta)")),
         *rows),
        "f[rho + s chi] = f[rho] + s int phi dchi is linear in the measure, so d/ds l(f + s phi) at s = 0 = d_f l phi gives the "
        "first variation (Mei, Montanari & Nguyen 2018)",
        ("measure-network",),
    )


@register("mean-field-velocity", order=620, when=_mean_field)
def mean_field_velocity(d):
    """v(theta) = -grad_theta dR/drho, and the continuity equation."""
    m = free_index(ATOM)
    k = free_index(DIM)
    rows = []
    for act in d.sym.spec.mean_field.activations:
        u = _Unit(d, act.name)
        fv = d.results[f"first_variation_{act.name}"]
        for name, comp, idx in u.params:
            v = canonical(-pdiff(fv, comp))
            d.results[f"velocity_{name}_{act.name}"] = v
            out = (m,) + tuple(idx)
            d.fn(f"velocity_{name}_{act.name}", neuron_indexed(v, d, m), f"mean-field velocity -d/d{name} dR/drho at every neuron, "
                 f"per sample ({act.name})", out=out, extra=_neuron_args(d))
            rows.append(eq(Tex(rf"v_{{{name}}}\big|_{{\mathrm{{{act.name}}}}}"), Expect(v)))
    d.add(
        "mean-field-velocity",
        "The velocity field and the continuity equation of the neuron measure",
        (eq(Tex(r"v(\theta)"), Tex(r"-\nabla_{\theta} \frac{\delta R}{\delta \rho}(\theta)")),
         eq(Tex(r"\partial_t \rho"), Tex(r"\nabla_{\theta} \cdot \Big(\rho\, \nabla_{\theta} \frac{\delta R}{\delta \rho}\Big)")), *rows),
        "each neuron moves down the gradient of the first variation, and the measure is transported by that velocity: "
        "the Wasserstein gradient flow of R (Mei, Montanari & Nguyen 2018; Chizat & Bach 2018); the velocity of each "
        "parameter is the derivative of d_f l phi, averaged over the data",
        ("measure-first-variation",),
    )


@register("finite-width-gradient", order=630, when=_mean_field)
def finite_width_gradient(d):
    """N dl/dtheta_m of the 1/N-scaled network = -velocity at theta_m (per sample): verified for every parameter."""
    m = free_index(ATOM)
    rows, ok = [], True
    for act in d.sym.spec.mean_field.activations:
        u = _Unit(d, act.name)
        f_N = d.results[f"network_{act.name}"]
        loss_N = u.loss.subs(u.f, f_N)
        for name, comp, idx in u.params:
            entry = sp.IndexedBase(name)[(m,) + tuple(idx)]
            grad = canonical(ATOM.extent * pdiff(loss_N, entry))
            velocity = neuron_indexed(d.results[f"velocity_{name}_{act.name}"], d, m).subs(u.f, f_N)
            gap = canonical(grad + velocity)
            ok = ok and gap == 0
            d.fn(f"neuron_velocity_{name}_{act.name}", velocity, f"velocity -N dl/d{name}_m of every neuron of the network, per sample "
                 f"({act.name}; the network's own output inside)", out=(m,) + tuple(idx), extra=_neuron_args(d))
            rows.append(eq(Tex(rf"N \frac{{\partial \ell}}{{\partial {name}_m}} + v_{{{name}}}(\theta_m)\big|_{{\mathrm{{{act.name}}}}}"), gap))
    d.add(
        "finite-width-gradient",
        "A neuron's gradient in the finite network is 1/N times the velocity field",
        tuple(rows),
        "differentiating the loss of the 1/N-scaled network with respect to neuron m's parameters picks out that neuron "
        "(Kronecker deltas contracted by the index calculus): N dl/dtheta_m = d_f l grad_theta phi(theta_m) = -v(theta_m), "
        "so gradient descent with step N eta moves each neuron by eta v(theta_m): the particle discretisation of the "
        "continuity equation",
        ("mean-field-velocity", "measure-network"),
        "verified" if ok else "derived",
    )
    d.classification = Classification(
        "exact",
        "the gradient of every neuron of the 1/m-scaled network is exactly 1/m times the mean-field velocity field at that "
        "neuron: training is the particle discretisation of the continuity equation of the neuron measure",
        sp.S.Zero,
    )
