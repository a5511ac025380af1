"""Validation of a :class:`~hjsym.Spec`: parse every field safely and check it is consistent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp

from .._errors import SpecError
from ..ir import ArgSpec
from ..symbolic.axes import AXES
from ..symbolic.calculus import free_indices
from .fields import FAMILIES, Activation, Claim, Functional, GradientFlow, MeanField, Scalar, Tensor, Training
from .parse import FUNCTIONS, Namespace, parse, placeholder

__all__ = ["validate_spec", "SymbolicSpec"]


def validate_spec(self) -> "SymbolicSpec":
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

    declared = ([self.state, self.costate] if _has_state(self) else []) + [self.time] + [s.name for s in self.symbols]
    if self.dynamics is not None and not isinstance(self.dynamics.field, str):
        try:
            parts = [n for n, _ in self.dynamics.state_fields(self.state)]
        except (TypeError, ValueError):
            parts = []
            problem("dynamics field is neither a string nor ((state, F), ...) pairs", "write field='...' or field=(('c', '...'), ('h', '...'))")
        declared += [n for n in parts if n != self.state] + [f"{self.costate}_{n}" for n in parts]
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
    elif self.dynamics is None and self.family != "variational":
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
        _validate_dynamics(self, sym, parsed, problem, used)

    _validate_variational(self, sym, parsed, problem, used)

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
    if not isinstance(self.passes, tuple) or not all(isinstance(p, str) for p in self.passes):
        problem(f"passes {self.passes!r} is not a tuple of names", "write passes=('entropy', ...); the derivation checks the names")
    for act in self.activations:
        if isinstance(act, Activation) and act.name in sym.activations:
            problem(f"activation {act.name!r} is declared twice", "give every activation one name")
        expr = _activation(act, sym, parsed, problem)
        if expr is not None:
            sym.activations[act.name] = expr

    unused = [s.name for s in self.symbols if s.name not in used]
    if self.dynamics is not None:
        unused += [n for n in sym.definitions if n not in used]
    if unused:
        problem(f"declared but never used: {', '.join(unused)}", "remove them or use them in an expression")
    if problems:
        raise SpecError(f"spec {self.name!r}: " + "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    return sym


def _validate_dynamics(self, sym: "SymbolicSpec", parsed, problem, used: set) -> None:
    """The control family's dynamics: states, inputs, definitions (gates), fields and claims."""
    dyn = self.dynamics
    for cname in dyn.controls:
        if cname not in sym.tensor_decl and cname not in sym.scalar_names:
            problem(f"control {cname!r} is not declared", f"declare {cname!r} as a Scalar or Tensor")
        elif cname in sym.states or cname in dyn.inputs:
            problem(f"control {cname!r} is also a state or an input", "controls are the parameters theta only")
        else:
            used.add(cname)
    for name in dyn.inputs:
        t = sym.tensor_decl.get(name)
        if t is None or tuple(t.axes) != ("input",):
            problem(f"input {name!r} is not a declared tensor over the 'input' axis", f"declare Tensor({name!r}, ('input',))")
        else:
            used.add(name)
    if dyn.step_size in sym.scalar_names:
        used.add(dyn.step_size)
    else:
        problem(f"step size {dyn.step_size!r} is not a declared scalar", "declare it with Scalar(...)")
    if dyn.noise is not None:
        if dyn.noise in sym.scalar_names:
            used.add(dyn.noise)
        else:
            problem(f"noise scale {dyn.noise!r} is not a declared scalar", "declare it with Scalar(..., positive=False)")
    if dyn.training is not None:
        _validate_training(dyn.training, sym, problem, used)
    if dyn.output is not None and dyn.output not in sym.states:
        problem(f"output {dyn.output!r} is not a state", f"use one of {', '.join(sym.states)}")
    names = set(sym.scalars) | set(sym.tensors)
    for entry in dyn.definitions:
        if not (isinstance(entry, tuple) and len(entry) in (2, 3) and all(isinstance(e, str) for e in entry)):
            problem(f"definition {entry!r} is not a (name, expression[, latex]) tuple", "write definitions=(('z', 'sigmoid(...)'), ...)")
            continue
        name, text = entry[:2]
        if not name.isidentifier() or name in FUNCTIONS or name == "pi":
            problem(f"definition name {name!r} is not a plain identifier", "use a name such as 'z' or 'gate_f'")
            continue
        if name in names or name in sym.definitions:
            problem(f"definition {name!r} reuses a declared name", "give every definition a name of its own")
            continue
        expr = parsed(text, f"definition {name!r}", scalar=False)
        if expr is None:
            continue
        axes = []
        for ix in sorted(free_indices(expr), key=lambda ix: (AXES[_axis_name(ix)].order, str(ix))):
            axis = _axis_name(ix)
            if ix != placeholder(axis) or axis in axes:
                problem(f"definition {name!r} has free index {ix}", "a definition is a scalar or a vector over one axis per index")
            axes.append(axis)
        sym.add_definition(name, tuple(axes), expr)
    for state, text in dyn.state_fields(self.state):
        expr = parsed(text, f"dynamics field of {state!r}", scalar=False)
        if expr is None:
            continue
        free = free_indices(expr)
        if free != {placeholder("dim")}:
            problem(f"the field of {state!r} {text!r} has free indices {sorted(map(str, free))}",
                    "write F as a vector over the state dimension (e.g. 'tanh(W @ s + b) - s')")
            continue
        sym.fields[state] = expr
    if not any(sym.names_in(f) & set(sym.states) for f in sym.fields.values()) and sym.fields:
        problem("no dynamics field involves the state", "write F in terms of the state")
    sym.dynamics = next(iter(sym.fields.values()), None)
    sym.add_field_names()
    for claim in dyn.claims:
        if not isinstance(claim, Claim):
            problem(f"claim {claim!r} is not a hjsym.Claim", "write claims=(Claim(title, lhs, rhs, reason),)")
            continue
        lhs = parsed(claim.lhs, f"claim {claim.title!r} lhs", scalar=False)
        rhs = parsed(claim.rhs, f"claim {claim.title!r} rhs", scalar=False)
        if lhs is not None and rhs is not None:
            if free_indices(lhs) != free_indices(rhs):
                problem(f"claim {claim.title!r}: the two sides have different free axes", "compare expressions of the same shape")
            else:
                sym.claims.append((claim, lhs, rhs))


def _validate_training(training, sym: "SymbolicSpec", problem, used: set) -> None:
    """Training as control: a positive scalar penalty and a target over the state dimension."""
    if not isinstance(training, Training):
        problem(f"training {training!r} is not an hjsym.Training", "write training=Training(penalty='rho', target='y')")
        return
    decl = sym.scalar_decl.get(training.penalty)
    if decl is None or not decl.positive:
        problem(f"training penalty {training.penalty!r} is not a declared positive scalar", f"declare Scalar({training.penalty!r})")
    else:
        used.add(training.penalty)
    t = sym.tensor_decl.get(training.target)
    if t is None or tuple(t.axes) != ("dim",):
        problem(f"training target {training.target!r} is not a declared tensor over the state dimension",
                f"declare Tensor({training.target!r}, ('dim',))")
    elif training.target in sym.states:
        problem(f"training target {training.target!r} is a state", "give the target a name of its own")
    else:
        used.add(training.target)


def _activation(act, sym: "SymbolicSpec", parsed, problem):
    """The parsed ``sigma(z)`` of an :class:`Activation` whose variable is a declared real scalar (None after a problem)."""
    if not isinstance(act, Activation):
        problem(f"activation {act!r} is not an hjsym.Activation", "declare activations with Activation(name, output)")
        return None
    var = sym.scalar_decl.get(act.variable)
    if var is None or var.positive:
        problem(f"activation {act.name!r}: its variable {act.variable!r} is not a declared real scalar",
                f"declare Scalar({act.variable!r}, positive=False)")
        return None
    return parsed(act.output, f"activation {act.name!r}", needs={act.variable})


def _has_state(spec) -> bool:
    """Whether the spec has the state (query point) ``x`` and the costate ``p``: every family but a variational spec
    of a curve or a density, whose variable and unknowns are scalars it declares itself."""
    return spec.family != "variational" or spec.mean_field is not None


def _validate_variational(self, sym: "SymbolicSpec", parsed, problem, used: set) -> None:
    """The variational family: exactly one functional (of a curve, of a density, or of a neuron measure), its names declared."""
    parts = [(n, v) for n, v in (("functional", self.functional), ("gradient_flow", self.gradient_flow), ("mean_field", self.mean_field))
             if v is not None]
    if self.family != "variational":
        if parts:
            problem(f"{parts[0][0]} is set but the family is {self.family!r}", "use family='variational'")
        return
    if len(parts) != 1:
        problem(f"a variational spec needs exactly one of functional, gradient_flow, mean_field (has {len(parts)})",
                "give one, e.g. functional=Functional('sqrt(1 + yp**2)', variable='x', unknowns=(('y', 'yp'),))")
        return
    kind, part = parts[0]
    expected = {"functional": Functional, "gradient_flow": GradientFlow, "mean_field": MeanField}[kind]
    if not isinstance(part, expected):
        problem(f"{kind} is not an hjsym.{expected.__name__}", f"declare it with hjsym.{expected.__name__}(...)")
        return

    def scalar(name, role, positive=None):
        decl = sym.scalar_decl.get(name)
        if decl is None or name == self.time and role != "variable":
            problem(f"{kind} {role} {name!r} is not a declared scalar", f"declare Scalar({name!r}, positive=...)")
            return False
        if positive is not None and decl.positive != positive:
            problem(f"{kind} {role} {name!r} must be declared with positive={positive}", f"declare Scalar({name!r}, positive={positive})")
            return False
        used.add(name)
        sym.pointwise.add(name)
        return True

    out = {"kind": kind}
    if kind == "functional":
        ok = scalar(part.variable, "variable", positive=False)
        pairs = part.unknowns if isinstance(part.unknowns, tuple) else ()
        if not pairs or not all(isinstance(u, tuple) and len(u) == 2 and all(isinstance(n, str) for n in u) for u in pairs):
            problem(f"functional unknowns {part.unknowns!r} are not (function, derivative) name pairs", "write unknowns=(('y', 'yp'),)")
            return
        for fn, der in pairs:
            ok = scalar(fn, "unknown") and ok
            ok = scalar(der, "derivative", positive=False) and ok
        if part.parametric is not None:
            if not (isinstance(part.parametric, tuple) and len(part.parametric) == 2):
                problem(f"functional parametric {part.parametric!r} is not a (parameter, constant) pair", "write parametric=('theta', 'a')")
                return
            ok = scalar(part.parametric[0], "parameter") and ok
            const = part.parametric[1]
            if const not in sym.scalar_decl or not sym.scalar_decl[const].positive:
                problem(f"functional constant {const!r} is not a declared positive scalar", f"declare Scalar({const!r})")
                return
            used.add(const)
        if not ok:
            return
        names = {fn for fn, _ in pairs} | {der for _, der in pairs}
        out["integrand"] = parsed(part.integrand, "functional integrand", needs=names)
    elif kind == "gradient_flow":
        ok = scalar(part.variable, "variable", positive=False)
        ok = scalar(part.density, "density", positive=True) and ok
        ok = scalar(part.potential, "potential", positive=False) and ok
        if not ok:
            return
        out["energy"] = parsed(part.energy, "free energy density", needs={part.density})
        if part.example is not None:
            out["example"] = parsed(part.example, "example potential", needs={part.variable})
            names = tuple(part.initial) + (part.step,) if isinstance(part.initial, tuple) and len(part.initial) == 2 else None
            if names is None:
                problem(f"gradient_flow initial {part.initial!r} is not a (mean, variance) pair of names", "write initial=('m0', 'v0')")
                return
            for role, name in zip(("initial mean", "initial variance", "step"), names):
                if name not in sym.scalar_decl or (role != "initial mean" and not sym.scalar_decl[name].positive):
                    problem(f"gradient_flow {role} {name!r} is not a declared{'' if role == 'initial mean' else ' positive'} scalar",
                            f"declare Scalar({name!r}{', positive=False' if role == 'initial mean' else ''})")
                    return
                used.add(name)
    else:
        for name in (part.output, part.target):
            if name not in sym.scalar_decl or sym.scalar_decl[name].positive:
                problem(f"mean_field {name!r} is not a declared real scalar", f"declare Scalar({name!r}, positive=False)")
                return
            used.add(name)
            sym.pointwise.add(name)
        for name in part.parameters:
            if name not in sym.scalar_decl and tuple(getattr(sym.tensor_decl.get(name), "axes", ())) != ("dim",):
                problem(f"mean_field parameter {name!r} is neither a declared scalar nor a vector over 'dim'",
                        f"declare Scalar({name!r}, positive=False) or Tensor({name!r}, ('dim',))")
                return
        out["preactivation"] = parsed(part.preactivation, "mean_field preactivation", needs={self.state})
        out["readout"] = parsed(part.readout, "mean_field readout")
        out["loss"] = parsed(part.loss, "mean_field loss", needs={part.output, part.target})
        acts = {act.name: expr for act in part.activations if (expr := _activation(act, sym, parsed, problem)) is not None}
        if not acts:
            problem("mean_field has no activations", "give activations=(Activation('tanh', 'tanh(z)'),)")
        out["activations"] = acts
        missing = [n for n in part.parameters if n not in sym.names_in(out["preactivation"] or 0) | sym.names_in(out["readout"] or 0)]
        if missing:
            problem(f"mean_field parameters {missing} occur in neither the preactivation nor the readout", "use every parameter")
    sym.variational = out


def _axis_name(ix) -> str:
    from ..symbolic.axes import axis_of

    return axis_of(ix).name


def _base(t: Tensor) -> sp.IndexedBase:
    """The SymPy base of a declared tensor; symmetric / positive definite matrices are marked."""
    from ..symbolic.matrices import SPDBase, SymmetricBase

    if t.positive_definite:
        return SPDBase(t.name)
    if t.symmetric:
        return SymmetricBase(t.name)
    return sp.IndexedBase(t.name)


@dataclass
class SymbolicSpec:
    """The SymPy objects of a validated spec."""

    spec: object  # the Spec it was built from (not imported: spec.py imports this module lazily)
    scalars: dict
    tensors: dict
    tensor_decl: dict
    scalar_decl: dict
    hamiltonian: sp.Expr | None = None
    viscosity: sp.Expr | None = None
    network: sp.Expr | None = None
    dynamics: sp.Expr | None = None
    states: dict = field(default_factory=dict)  # state name -> IndexedBase (control family)
    costates: dict = field(default_factory=dict)  # state name -> IndexedBase of its costate
    definitions: dict = field(default_factory=dict)  # name -> (placeholder, axes, expression)
    fields: dict = field(default_factory=dict)  # state name -> F_state
    field_names: dict = field(default_factory=dict)  # "F" / "F_c" -> state name (claims only)
    claims: list = field(default_factory=list)  # (Claim, lhs, rhs)
    activations: dict = field(default_factory=dict)  # name -> parsed sigma(z)
    variational: dict = field(default_factory=dict)  # the variational part, parsed ({"kind": ..., "integrand": ...})
    pointwise: set = field(default_factory=set)  # scalars with one value per point in generated code (a curve's x, y, y')

    @classmethod
    def build(cls, spec) -> "SymbolicSpec":
        # the time of a variational flow starts at 0 (the initial density), that of an HJ PDE is > 0
        variational = spec.family == "variational"
        scalar_decl = {spec.time: Scalar(spec.time, positive=not variational, doc="time of the flow" if variational else "time of the Hamilton-Jacobi PDE")}
        tensor_decl = {
            spec.state: Tensor(spec.state, ("dim",), doc="query point / state"),
            spec.costate: Tensor(spec.costate, ("dim",), doc="costate (momentum)"),
        } if _has_state(spec) else {}
        state_costate = {}
        if spec.dynamics is not None:
            parts = spec.dynamics.state_fields(spec.state)
            for name, _ in parts:
                costate = spec.costate if len(parts) == 1 else f"{spec.costate}_{name}"
                tensor_decl[name] = Tensor(name, ("dim",), doc="state" if len(parts) == 1 else f"state part {name}")
                tensor_decl[costate] = Tensor(costate, ("dim",), doc=f"costate of {name}")
                state_costate[name] = costate
        for s in spec.symbols:
            (scalar_decl if isinstance(s, Scalar) else tensor_decl)[s.name] = s
        scalars = {n: sp.Symbol(n, positive=True) if s.positive else sp.Symbol(n, real=True) for n, s in scalar_decl.items()}
        tensors = {n: _base(t) for n, t in tensor_decl.items()}
        out = cls(spec, scalars, tensors, tensor_decl, scalar_decl)
        out.states = {n: tensors[n] for n in state_costate}
        out.costates = {n: tensors[c] for n, c in state_costate.items()}
        return out

    def add_definition(self, name: str, axes: tuple, expr) -> None:
        """Register a definition (gate): later expressions refer to it by name."""
        base = sp.Symbol(name, real=True) if not axes else sp.IndexedBase(name)
        self.definitions[name] = (base, tuple(axes), expr)

    def add_field_names(self) -> None:
        """``F`` (or ``F_<state>``) as names for the claims."""
        single = len(self.fields) == 1
        for state in self.fields:
            self.field_names["F" if single else f"F_{state}"] = state

    @property
    def batched_names(self) -> set:
        """Names with one value per sample: the state, its parts, costates and per-step inputs."""
        out = {self.spec.state} | set(self.states) | {c.label.name for c in self.costates.values()}
        if self.spec.dynamics is not None:
            out |= set(self.spec.dynamics.inputs)
            if self.spec.dynamics.training is not None:
                out.add(self.spec.dynamics.training.target)  # one target per sample
        return out

    @property
    def namespace(self) -> Namespace:
        scalars = dict(self.scalars)
        tensors = {n: (self.tensors[n], tuple(t.axes)) for n, t in self.tensor_decl.items()}
        for n, (base, axes, _) in self.definitions.items():
            if axes:
                tensors[n] = (base, axes)
            else:
                scalars[n] = base
        for n in self.field_names:
            tensors[n] = (sp.IndexedBase(n), ("dim",))
        return Namespace(scalars, tensors)

    @property
    def scalar_names(self) -> set[str]:
        return set(self.scalars)

    def names_in(self, expr) -> set[str]:
        known = set(self.scalars) | {n for n, (_, axes, _) in self.definitions.items() if not axes}
        names = {s.name for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.name in known}
        names |= {b.label.name for b in expr.atoms(sp.IndexedBase) if b.label.name in self.tensors or b.label.name in self.definitions}
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
        """The state (query point) tensor; None for a variational spec of a curve or a density (no state)."""
        return self.tensors.get(self.spec.state)

    @property
    def p(self):
        return self.tensors.get(self.spec.costate)

    @property
    def t(self):
        return self.scalars[self.spec.time]

    def arg(self, name: str) -> ArgSpec:
        """The code-generation argument for a declared symbol (the state is batched)."""
        if name in self.scalar_decl:
            s = self.scalar_decl[name]
            return ArgSpec(name, self.scalars[name], (), positive=s.positive, per_point=name in self.pointwise, doc=s.doc)
        t = self.tensor_decl[name]
        return ArgSpec(name, self.tensors[name], tuple(t.axes), batched=name in self.batched_names, doc=t.doc)

    def args_of(self, expr, order: tuple[str, ...] | None = None) -> tuple[ArgSpec, ...]:
        """Arguments of a generated function for ``expr``: the state first, then declaration order."""
        present = self.names_in(expr)
        if order is None:
            order = (self.spec.state, self.spec.costate) + tuple(s.name for s in self.spec.symbols) + (self.spec.time,)
            order = tuple(dict.fromkeys(n for n in order if n in self.scalar_decl or n in self.tensor_decl))
        return tuple(self.arg(n) for n in order if n in present)

    def latex_names(self) -> dict:
        """``symbol_names`` for SymPy's LaTeX printer."""
        out = {}
        for n, s in {**self.scalar_decl, **self.tensor_decl}.items():
            if s.latex:
                target = self.scalars.get(n, None)
                out[target if target is not None else self.tensors[n].label] = s.latex
        return out
