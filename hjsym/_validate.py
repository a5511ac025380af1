"""Validation of a :class:`~hjsym.Spec`: parse every field safely and check it is consistent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp

from ._calculus import free_indices
from ._codegen import ArgSpec
from ._errors import SpecError
from ._index import AXES
from ._parse import FUNCTIONS, Namespace, parse
from ._spec import FAMILIES, PASSES, Activation, Scalar, Spec, Tensor

__all__ = ["validate_spec", "SymbolicSpec"]


def validate_spec(self: Spec) -> "SymbolicSpec":
    """Parse and check every field of ``self``; raise one :class:`SpecError` listing all problems."""
    problems: list[str] = []
    fixes: list[str] = []

    def problem(text, fix):
        problems.append(text)
        fixes.append(fix)

    if not re.fullmatch(r"[a-z][a-z0-9-]*", self.name or ""):
        problem(f"name {self.name!r} is not a lower-case slug", "use letters, digits and '-' (e.g. 'lse-aniso')")
    if self.family not in FAMILIES:
        problem(f"family {self.family!r} is unknown", f"use one of {', '.join(FAMILIES)}")

    declared = [self.state, self.costate, self.time] + [s.name for s in self.symbols]
    seen = set()
    for name in declared:
        if not (isinstance(name, str) and name.isidentifier()):
            problem(f"symbol name {name!r} is not an identifier", "use a plain name such as 'eps' or 'W'")
        elif name in seen:
            problem(f"symbol {name!r} is declared twice", "give every symbol one declaration")
        elif name in FUNCTIONS or name == "pi":
            problem(f"symbol {name!r} shadows a function name", "rename the symbol")
        seen.add(name)
    for s in self.symbols:
        if isinstance(s, Tensor):
            bad = [a for a in s.axes if a not in AXES]
            if bad or not s.axes:
                problem(f"tensor {s.name!r} has axes {s.axes}", f"use axes from {', '.join(AXES)}")
            if (s.symmetric or s.positive_definite) and tuple(s.axes) != ("dim", "dim"):
                problem(f"tensor {s.name!r} is declared symmetric/positive definite but is not (d, d)",
                        "declare such assumptions only on (d, d) matrices")
        elif not isinstance(s, Scalar):
            problem(f"symbol {s!r} is neither Scalar nor Tensor", "declare symbols with hjsym.Scalar or hjsym.Tensor")
    if problems:
        raise SpecError(f"spec {self.name!r}: " + "; ".join(problems), "; ".join(dict.fromkeys(fixes)))

    sym = SymbolicSpec.build(self)
    used: set[str] = set()

    def parsed(text, where, scalar=True, needs=None):
        try:
            expr = parse(text, sym.namespace, f"spec {self.name!r} {where}")
        except SpecError as exc:
            problem(exc.problem, exc.fix)
            return None
        if scalar and free_indices(expr):
            problem(f"{where} {text!r} is not a scalar (free axes {sorted(map(str, free_indices(expr)))})",
                    "reduce it, e.g. with sum(...), norm2(...), dot(...) or lse(...)")
        used.update(sym.names_in(expr))
        if needs and not (needs & sym.names_in(expr)):
            problem(f"{where} {text!r} does not involve {' or '.join(sorted(needs))}",
                    f"write {where} in terms of {' or '.join(sorted(needs))}")
        return expr

    if self.hamiltonian is not None:
        sym.hamiltonian = parsed(self.hamiltonian, "hamiltonian", needs={self.costate})
    elif self.dynamics is None:
        problem("the spec has neither a hamiltonian nor dynamics", "give hamiltonian='...' (or dynamics for the control family)")
    sym.viscosity = parsed(self.viscosity, "viscosity")
    if sym.viscosity is not None:
        if sym.viscosity.is_negative:
            problem(f"viscosity {self.viscosity!r} is negative", "use a viscosity >= 0")
        stray = sym.names_in(sym.viscosity) - sym.scalar_names
        if stray:
            problem(f"viscosity depends on {sorted(stray)}", "make the viscosity a scalar expression")

    if self.diffusion is not None:
        t = sym.tensor_decl.get(self.diffusion)
        if t is None or tuple(t.axes) != ("dim", "dim"):
            problem(f"diffusion {self.diffusion!r} is not a declared (d, d) tensor", "declare Tensor(name, ('dim', 'dim'))")
        else:
            used.add(self.diffusion)

    if self.initial_data is not None:
        for role, name, axes in (("points", self.initial_data.points, ("atom", "dim")),
                                 ("values", self.initial_data.values, ("atom",))):
            t = sym.tensor_decl.get(name)
            if t is None or tuple(t.axes) != axes:
                problem(f"initial data {role} {name!r} is not a declared tensor with axes {axes}",
                        f"declare Tensor({name!r}, {axes})")
            else:
                used.add(name)

    if self.family == "exact" and self.network is None:
        problem("an exact-family spec needs a network", "give network=Network(output='...', weights=(...))")
    if self.network is not None:
        sym.network = parsed(self.network.output, "network output", needs={self.state})
        for w in self.network.weights:
            if w not in sym.tensor_decl:
                problem(f"network weight {w!r} is not a declared tensor", f"declare Tensor({w!r}, axes)")
            elif sym.network is not None and w not in sym.names_in(sym.network):
                problem(f"network weight {w!r} does not occur in the output", "remove it from weights")
    if self.family == "control" and self.dynamics is None:
        problem("a control-family spec needs dynamics", "give dynamics=Dynamics(field='...', controls=(...))")
    if self.dynamics is not None:
        sym.dynamics = parsed(self.dynamics.field, "dynamics field", scalar=False, needs={self.state})
        for cname in self.dynamics.controls:
            if cname not in sym.tensor_decl and cname not in sym.scalar_names:
                problem(f"control {cname!r} is not declared", f"declare {cname!r} as a Scalar or Tensor")
            else:
                used.add(cname)
        if self.dynamics.step_size in sym.scalar_names:
            used.add(self.dynamics.step_size)
        else:
            problem(f"step size {self.dynamics.step_size!r} is not a declared scalar", "declare it with Scalar(...)")

    if self.input_map is not None:
        t = sym.tensor_decl.get(self.input_map)
        if t is None or tuple(t.axes) != ("dim", "dim"):
            problem(f"input_map {self.input_map!r} is not a declared (d, d) tensor", "declare Tensor(name, ('dim', 'dim'))")
        else:
            used.add(self.input_map)
        if self.diffusion is None:
            problem("input_map is set but there is no diffusion matrix for it to induce", "set diffusion='A' with A a (d, d) tensor")
    if self.values is not None:
        t = sym.tensor_decl.get(self.values)
        if t is None or len(t.axes) != 2 or t.axes[0] != "atom" or t.axes[1] == "atom":
            problem(f"values {self.values!r} is not a declared tensor with axes ('atom', X)", "declare e.g. Tensor('V', ('atom', 'value'))")
        else:
            used.add(self.values)
    bad_passes = [p for p in self.passes if p not in PASSES]
    if bad_passes:
        problem(f"unknown derivation pass(es) {', '.join(map(repr, bad_passes))}", f"use some of {', '.join(PASSES)}")
    for act in self.activations:
        if not isinstance(act, Activation):
            problem(f"activation {act!r} is not an hjsym.Activation", "declare activations with Activation(name, output)")
            continue
        var = sym.scalar_decl.get(act.variable)
        if var is None or var.positive:
            problem(f"activation {act.name!r}: its variable {act.variable!r} is not a declared real scalar",
                    f"declare Scalar({act.variable!r}, positive=False)")
            continue
        if act.name in sym.activations:
            problem(f"activation {act.name!r} is declared twice", "give every activation one name")
        expr = parsed(act.output, f"activation {act.name!r}", needs={act.variable})
        if expr is not None:
            sym.activations[act.name] = expr

    unused = [s.name for s in self.symbols if s.name not in used]
    if unused:
        problem(f"declared but never used: {', '.join(unused)}", "remove them or use them in an expression")
    if problems:
        raise SpecError(f"spec {self.name!r}: " + "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    return sym




def _base(t: Tensor) -> sp.IndexedBase:
    """The SymPy base of a declared tensor; symmetric / positive definite matrices are marked."""
    from ._matrices import SPDBase, SymmetricBase

    if t.positive_definite:
        return SPDBase(t.name)
    if t.symmetric:
        return SymmetricBase(t.name)
    return sp.IndexedBase(t.name)


@dataclass
class SymbolicSpec:
    """The SymPy objects of a validated spec."""

    spec: Spec
    scalars: dict
    tensors: dict
    tensor_decl: dict
    scalar_decl: dict
    hamiltonian: sp.Expr | None = None
    viscosity: sp.Expr | None = None
    network: sp.Expr | None = None
    dynamics: sp.Expr | None = None
    activations: dict = field(default_factory=dict)  # name -> parsed sigma(z)

    @classmethod
    def build(cls, spec: Spec) -> "SymbolicSpec":
        scalar_decl = {spec.time: Scalar(spec.time, positive=True, doc="time of the Hamilton-Jacobi PDE")}
        tensor_decl = {
            spec.state: Tensor(spec.state, ("dim",), doc="query point / state"),
            spec.costate: Tensor(spec.costate, ("dim",), doc="costate (momentum)"),
        }
        for s in spec.symbols:
            (scalar_decl if isinstance(s, Scalar) else tensor_decl)[s.name] = s
        scalars = {n: sp.Symbol(n, positive=True) if s.positive else sp.Symbol(n, real=True) for n, s in scalar_decl.items()}
        tensors = {n: _base(t) for n, t in tensor_decl.items()}
        return cls(spec, scalars, tensors, tensor_decl, scalar_decl)

    @property
    def namespace(self) -> Namespace:
        return Namespace(self.scalars, {n: (self.tensors[n], tuple(t.axes)) for n, t in self.tensor_decl.items()})

    @property
    def scalar_names(self) -> set[str]:
        return set(self.scalars)

    def names_in(self, expr) -> set[str]:
        names = {s.name for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.name in self.scalars}
        names |= {b.label.name for b in expr.atoms(sp.IndexedBase) if b.label.name in self.tensors}
        return names

    # ---------------------------------------------------------------- convenient handles
    def __getitem__(self, name: str):
        if name in self.scalars:
            return self.scalars[name]
        if name in self.tensors:
            return self.tensors[name]
        raise KeyError(f"spec {self.spec.name!r} has no symbol {name!r}")

    @property
    def x(self):
        return self.tensors[self.spec.state]

    @property
    def p(self):
        return self.tensors[self.spec.costate]

    @property
    def t(self):
        return self.scalars[self.spec.time]

    def arg(self, name: str) -> ArgSpec:
        """The code-generation argument for a declared symbol (the state is batched)."""
        if name in self.scalar_decl:
            s = self.scalar_decl[name]
            return ArgSpec(name, self.scalars[name], (), positive=s.positive, doc=s.doc)
        t = self.tensor_decl[name]
        return ArgSpec(name, self.tensors[name], tuple(t.axes), batched=name == self.spec.state, doc=t.doc)

    def args_of(self, expr, order: tuple[str, ...] | None = None) -> tuple[ArgSpec, ...]:
        """Arguments of a generated function for ``expr``: the state first, then declaration order."""
        present = self.names_in(expr)
        if order is None:
            order = (self.spec.state, self.spec.costate) + tuple(s.name for s in self.spec.symbols) + (self.spec.time,)
        return tuple(self.arg(n) for n in order if n in present)

    def latex_names(self) -> dict:
        """``symbol_names`` for SymPy's LaTeX printer."""
        out = {}
        for n, s in {**self.scalar_decl, **self.tensor_decl}.items():
            if s.latex:
                target = self.scalars.get(n, None)
                out[target if target is not None else self.tensors[n].label] = s.latex
        return out
