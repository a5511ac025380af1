"""The check engine: checks declared as data, run on real networks, each with its negative control.

A :class:`Check` declares what it tests and how:

* ``step``: the equation of the derivation it tests (``"identity:1"``: step ``identity``, its first equation);
* route A, an :class:`Operator` on the real module (its forward pass, autograd gradients,
  Hessians and time derivatives of a re-parametrised module, parameter gradients, hooks on
  submodules);
* route B, a :class:`RouteB`, usually :class:`Generated`: functions generated from the
  derivation, evaluated on the weights read out of that module (the readout's arguments) and on
  the check's inputs (a :class:`Case`);
* ``kind``: an identity, a bound (``lower <= A <= B``) or a statistic;
* ``negative``: the perturbation (from :mod:`hjsym.networks.perturb`) that moves route A and must
  make the check fail.

The engine evaluates both routes on every network the check applies to, scales the tolerance by
the magnitude of the terms on both routes (:mod:`hjsym.checks.criteria`), and with negative
controls runs route A again on a perturbed copy while route B keeps the original weights. A
:class:`Suite` is the checks of a kind of spec with the readout that reads its networks; the
suites are chosen from the spec (:mod:`hjsym.checks.suites`). Checks whose science does not fit
one operator and one generated function (quadratures, a Newton solve on the simplex, Monte
Carlo, fitted orders) declare ``evaluate`` or ``standalone`` instead, with the same metadata.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch

from ..networks.perturb import perturb
from ..networks.readout import Readout
from .criteria import bound, compare, flat_like
from .results import CheckReport, CheckResult

__all__ = [
    "Network", "Case", "Values", "Negative", "Operator", "RouteB", "Generated", "Check", "Suite", "Context", "run_suite",
    "run_check", "torch_threads", "RESOLUTION",
]

#: The relative size of the perturbation every negative control applies (relative to the size of
#: what the check compares): a check must resolve a change of one part in a million in float64.
#: In float32 the unit roundoff is 6e-8, and ill-conditioned terms lose several digits, so the
#: stated resolution is one part in a hundred.
RESOLUTION = {torch.float64: 1e-6, torch.float32: 1e-2}


@dataclass
class Network:
    """One real network a suite checks.

    ``readout`` holds the weights route B is evaluated on: always those of the network as passed.
    ``a`` is what route A runs: the same readout, or for a negative control the readout of a
    perturbed copy (same structure and parameters, a different forward pass).
    """

    label: str
    readout: Readout
    a: Readout | None = None

    def __post_init__(self):
        if self.a is None:
            self.a = self.readout

    @property
    def module(self):
        """The module route A runs (a copy of the network in the working dtype)."""
        return self.a.module


@dataclass
class Case:
    """The inputs of one evaluation: named values (``x``, ``t``, ``eps``, atoms ``y``, ``g``, ...) both routes read."""

    values: dict
    point: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    def __getitem__(self, name):
        return self.values[name]


@dataclass
class Values:
    """Both routes on one case: ``a`` and ``b`` (for a bound, ``lower <= a <= b``) and the scale of their terms."""

    a: torch.Tensor
    b: torch.Tensor
    scale: torch.Tensor | float = 0.0
    lower: torch.Tensor | float | None = None
    point: torch.Tensor | None = None
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Negative:
    """The negative control of a check: a perturbation of route A from :mod:`hjsym.networks.perturb`.

    ``size`` is relative to the size of what the check compares (default :data:`RESOLUTION`);
    ``"bound"`` moves a bound check's value past twice its bound. ``target`` names the submodule
    perturbed (default: the whole module).
    """

    kind: str
    size: float | str | None = None
    target: str | None = None

    def delta(self, ctx: "Context", values: list[Values]) -> float:
        if self.size == "bound":
            return 2 * max(float(torch.as_tensor(v.b).abs().max()) for v in values)
        rel = RESOLUTION[ctx.dtype] if self.size is None else float(self.size)
        top = max((float(torch.as_tensor(v.a).abs().max()) for v in values if torch.as_tensor(v.a).numel()), default=1.0)
        return rel * max(1.0, top)

    def describe(self, delta: float) -> str:
        where = f" of {self.target}" if self.target else ""
        return f"{self.kind}{where} ({delta:.3g})"


class Operator(abc.ABC):
    """Route A: an operator applied to the real module (``net.module``, through ``net.a``)."""

    description: str = ""

    @abc.abstractmethod
    def __call__(self, ctx: "Context", net: Network, case: Case) -> torch.Tensor:
        """The values route A computes on one case."""

    def scale(self, ctx: "Context", net: Network, case: Case):
        """The magnitude of the terms route A computes (0: only the values themselves)."""
        return 0.0


class RouteB(abc.ABC):
    """Route B: computed from the derivation, on the weights read out of the network."""

    description: str = ""
    functions: tuple[str, ...] = ()

    @abc.abstractmethod
    def __call__(self, ctx: "Context", net: Network, case: Case) -> torch.Tensor:
        """The values route B computes on one case."""

    def scale(self, ctx: "Context", net: Network, case: Case):
        return 0.0


class Generated(RouteB):
    """Generated functions, added: ``Generated("identity_rhs", "-u")`` is ``identity_rhs - u``.

    Every function is called with the arguments it names, taken from the case's values and the
    readout's weights; the scale is the sum of their generated magnitudes.
    """

    def __init__(self, *terms: str, description: str = ""):
        self.terms = tuple((-1.0, t[1:]) if t.startswith("-") else (1.0, t) for t in terms)
        self.functions = tuple(name for _, name in self.terms)
        self.description = description or " + ".join(("-" if s < 0 else "") + n for s, n in self.terms) + " (generated)"

    def __call__(self, ctx, net, case):
        args = ctx.arguments(net, case)
        out = None
        for sign, name in self.terms:
            v = ctx.call(name, args)
            out = sign * v if out is None else out + sign * v
        return out

    def scale(self, ctx, net, case):
        args = ctx.arguments(net, case)
        return sum(ctx.magnitude(name, args) for _, name in self.terms)


@dataclass(frozen=True)
class Check:
    """A declared check (see the module docstring).

    Exactly one way of computing is given: ``route_a`` (an :class:`Operator`) with ``route_b`` and
    ``cases`` (``(ctx, net) -> Cases``); or ``evaluate`` (``(ctx, nets) -> Values``), whose
    ``route_a``/``route_b`` are then descriptions (a bound's ``lower`` is then per value); or ``standalone`` (``(ctx, negative_controls)
    -> CheckResult``) for checks that build their own networks and controls. ``applies_to(net)``
    selects the networks it reads; ``requires`` names generated functions it needs besides route
    B's, and ``when(ctx)`` any other condition on the derivation.
    """

    name: str
    title: str
    step: str | None
    route_a: Operator | str
    route_b: RouteB | str
    cases: Callable | None = None
    evaluate: Callable | None = None
    standalone: Callable | None = None
    kind: str = "identity"
    lower: float | None = None
    rounding: str = "forward"
    negative: Negative | None = Negative("bump")
    applies_to: Callable | None = None
    requires: tuple[str, ...] = ()
    when: Callable | None = None
    details: Callable | None = None

    @property
    def route_a_text(self) -> str:
        return self.route_a if isinstance(self.route_a, str) else self.route_a.description

    @property
    def route_b_text(self) -> str:
        return self.route_b if isinstance(self.route_b, str) else self.route_b.description

    @property
    def needs(self) -> tuple[str, ...]:
        """Generated functions the derivation must provide for this check to apply."""
        own = () if isinstance(self.route_b, str) else self.route_b.functions
        return tuple(dict.fromkeys(own + self.requires))

    def networks(self, nets: list[Network]) -> list[Network]:
        return [n for n in nets if self.applies_to is None or self.applies_to(n)]

    def values(self, ctx: "Context", nets: list[Network]) -> list[Values]:
        if self.evaluate is not None:
            return list(self.evaluate(ctx, nets))
        out = []
        for net in nets:
            for case in self.cases(ctx, net):
                a = self.route_a(ctx, net, case)
                b = self.route_b(ctx, net, case)
                a, b = torch.as_tensor(a), torch.as_tensor(b)
                if b.shape != a.shape:
                    b = torch.broadcast_to(b, a.shape)
                s = flat_like(self.route_a.scale(ctx, net, case), a) + flat_like(self.route_b.scale(ctx, net, case), a)
                out.append(Values(a, b, s, lower=self.lower, point=case.point, info=case.info))
        return out


@dataclass(frozen=True)
class Suite:
    """The checks of one kind of spec, the readout of its networks, and a line describing them.

    ``applies(spec)`` says whether the suite is the one for a spec (:mod:`hjsym.checks.suites`);
    ``read(ctx, module)`` reads a module into a :class:`~hjsym.networks.readout.Readout`;
    ``notes(ctx, nets)`` adds lines to the report.
    """

    name: str
    checks: tuple[Check, ...]
    applies: Callable
    read: Callable
    notes: Callable | None = None

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def applicable(self, ctx: "Context") -> list[Check]:
        """The checks whose generated functions the derivation provides (and whose ``when`` holds)."""
        return [c for c in self.checks if all(f in ctx.fns for f in c.needs) and (c.when is None or c.when(ctx))]


@dataclass
class Context:
    """What checks read: the spec, the generated functions and their magnitudes, the dtype, the seed.

    Test inputs come from generators seeded by the seed and a salt per use (:meth:`gen`), apart
    from any data a network was trained on. ``forward_kwargs`` are passed to every call of a
    user's module (``--forward-kwargs``).
    """

    spec: object
    fns: dict
    magnitudes: dict
    dtype: torch.dtype
    seed: int
    suite: Suite | None = None
    memo: dict = field(default_factory=dict)
    forward_kwargs: dict = field(default_factory=dict)

    def gen(self, salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(10_000 + 97 * self.seed + salt)

    def arguments(self, net: Network, case: Case) -> dict:
        return {**net.readout.arguments(), **case.values}

    def _pick(self, fn, args: dict, name: str) -> dict:
        missing = [a for a in fn.arg_names if a not in args]
        if missing:
            raise KeyError(f"generated function {name} needs {', '.join(missing)}; the check gave {', '.join(sorted(args))}")
        return {a: args[a] for a in fn.arg_names}

    def call(self, name: str, args: dict | None = None, **kwargs) -> torch.Tensor:
        """The generated function ``name`` with the arguments it names, from ``args`` and ``kwargs``."""
        values = {**(args or {}), **kwargs}
        fn = self.fns[name]
        sizes = {k: values[k] for k in fn.size_keywords if k in values}
        return fn(**self._pick(fn, values, name), **sizes, dtype=self.dtype)

    def magnitude(self, name: str, args: dict | None = None, **kwargs) -> torch.Tensor:
        """The generated magnitude of the terms of ``name`` (0 when the derivation made none, e.g. for a program)."""
        fn = self.magnitudes.get(name)
        if fn is None:
            return torch.zeros((), dtype=torch.float64)
        values = {**(args or {}), **kwargs}
        sizes = {k: values[k] for k in fn.size_keywords if k in values}
        return fn(**self._pick(fn, values, name + "_magnitude"), **sizes, dtype=self.dtype).abs().double()

    def cached(self, key, make):
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]


# ----------------------------------------------------------------------------- running checks
def _cat(parts) -> torch.Tensor:
    parts = [torch.as_tensor(p).reshape(-1) for p in parts]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def assemble(check: Check, ctx: Context, values: list[Values], nets: list[Network]) -> CheckResult:
    """The verdict on a check's values: an identity or a bound, tolerance ``k u S`` elementwise."""
    a = _cat([v.a for v in values])
    b = _cat([torch.broadcast_to(torch.as_tensor(v.b), torch.as_tensor(v.a).shape) for v in values])
    s = _cat([flat_like(v.scale, torch.as_tensor(v.a)) for v in values])
    # every value is itself rounded once: the scale is at least |A| + |B|
    s = s + a.detach().abs().double() + b.detach().abs().double()
    details = {"networks": [n.label for n in nets]} if nets else {}
    infos = [v.info for v in values if v.info]
    if infos:
        details["cases"] = infos
    if check.details is not None:
        details.update(check.details(ctx, nets, values))
        details = {k: v for k, v in details.items() if v is not None}  # a check may drop what the engine recorded
    point = next((v.point for v in values if v.point is not None), None)
    common = dict(dtype=ctx.dtype, rounding=check.rounding, route_a=check.route_a_text, route_b=check.route_b_text, details=details,
                  point=point, step=check.step or "")
    if check.kind == "bound":
        lower = _cat([torch.broadcast_to(torch.as_tensor(-math.inf if v.lower is None else v.lower, dtype=torch.as_tensor(v.a).dtype),
                                         torch.as_tensor(v.a).shape) for v in values])
        return bound(check.name, check.title, a, b, s, lower=lower, **common)
    return compare(check.name, check.title, a, b, s, **common)


def run_check(check: Check, ctx: Context, nets: list[Network], negative_controls: bool = False) -> CheckResult:
    """Run one check on the networks it applies to; with ``negative_controls``, also on their perturbed copies."""
    if check.standalone is not None:
        return check.standalone(ctx, negative_controls)
    chosen = check.networks(nets)
    values = check.values(ctx, chosen)
    result = assemble(check, ctx, values, chosen)
    if negative_controls and check.negative is not None:
        neg = check.negative
        delta = neg.delta(ctx, values)
        perturbed = [replace(n, a=ctx.suite.read(ctx, perturb(n.readout.module, neg.kind, delta, target=neg.target, seed=ctx.seed)))
                     for n in chosen]
        bad = assemble(check, ctx, check.values(ctx, perturbed), perturbed)
        result.details["negative_control"] = {"perturbation": neg.describe(delta), "max_abs_err": bad.max_abs_err,
                                              "passed": bad.passed, "margin": bad.margin}
    return result


def run_suite(suite: Suite, ctx: Context, nets: list[Network], *, architecture: str, network: str, names=None,
              negative_controls: bool = False, progress: bool = False, notes=()) -> CheckReport:
    """Run ``names`` (default: every applicable check of ``suite``) into a :class:`~hjsym.CheckReport`.

    A check that reads networks none of ``nets`` is (an MLP check on an MLP without that
    activation) is not run, and the report's notes say so.
    """
    from tqdm.auto import tqdm

    ctx.suite = suite
    checks = [c for c in suite.applicable(ctx) if names is None or c.name in names]
    notes = list(notes)
    results = []
    for c in tqdm(checks, desc=f"checking {architecture}", disable=not progress, leave=False):
        if c.standalone is None and not c.networks(nets):
            notes.append(f"{c.name} not run: none of the networks is of the kind it reads")
            continue
        results.append(run_check(c, ctx, nets, negative_controls))
    if suite.notes is not None:
        notes += suite.notes(ctx, nets)
    return CheckReport(architecture, str(ctx.dtype).replace("torch.", ""), ctx.seed, network, results, list(dict.fromkeys(notes)))


@contextmanager
def torch_threads(n: int = 1):
    """Run the enclosed torch work on ``n`` intra-op threads, then restore the previous number.

    Checks run on one thread: their networks are small, so more threads only contend (on a
    shared 2-core machine ``check lse`` took 0.8-1.9 s on one thread and 7.7-8.4 s on two), and
    a fixed thread count keeps every reduction in the same order, so ``hjsym check`` reproduces
    the numbers a report shows to the last bit.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
