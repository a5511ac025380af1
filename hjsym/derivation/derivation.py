"""The public derivation object and its entry points.

``hjsym.derive("lse")`` validates the spec, runs the derivation engine and generates a torch
function for every named result; the whole object is cached on disk. ``load_functions`` is the
light path used by checks: it reads the cached generated code and compiles it without
importing SymPy (deriving first on a cache miss).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import _cache
from ..codegen.generated import GeneratedFunction
from ..spec.spec import Spec

__all__ = ["Derivation", "derive", "load_functions", "cache_key"]


def cache_key(spec: Spec) -> str:
    return f"{spec.name}-{spec.key()}-{_cache.version_tag()}"


@dataclass
class Derivation:
    """Everything hjsym derived for one architecture.

    Attributes:
        spec: the declarative spec it was derived from.
        steps: numbered steps (``Step``: id, title, equations, reason, uses, status).
        results: named SymPy results (``"u"``, ``"residual"``, ``"hessian_f"``, ...).
        classification: exact / structural / open, with the statement and the gap term.
        functions: generated torch functions by name (see :meth:`function`).
    """

    spec: Spec
    steps: list
    results: dict
    classification: object
    symbol_names: dict
    functions: dict[str, GeneratedFunction] = field(default_factory=dict)
    gibbs_labels: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def function(self, name: str) -> GeneratedFunction:
        """The generated torch function for the result ``name`` (see ``functions`` for names)."""
        try:
            return self.functions[name]
        except KeyError:
            from .._errors import InputError

            raise InputError(
                f"{self.name!r} has no generated function {name!r}",
                f"use one of: {', '.join(sorted(self.functions))}",
            ) from None

    def step(self, id: str):
        for s in self.steps:
            if s.id == id:
                return s
        raise KeyError(f"{self.name!r} has no step {id!r}")

    def number(self, id: str) -> int:
        """1-based number of a step."""
        return [s.id for s in self.steps].index(id) + 1

    # ---------------------------------------------------------------- renderings
    def latex_of(self, expr) -> str:
        from ..symbolic.latex import to_latex

        return to_latex(expr, self.symbol_names, dict(self.gibbs_labels))

    def step_latex(self, step) -> list[str]:
        return [self.latex_of(e) for e in step.equations]

    def graph(self):
        """The derivation graph: a networkx ``DiGraph`` of step ids, edges from used to using step."""
        import networkx as nx

        g = nx.DiGraph()
        for n, s in enumerate(self.steps, 1):
            g.add_node(s.id, number=n, title=s.title, status=s.status)
        for s in self.steps:
            for u in s.uses:
                g.add_edge(u, s.id)
        return g

    def to_dict(self) -> dict:
        """A JSON-able summary: steps with LaTeX, classification and function signatures."""
        import sympy as sp

        c = self.classification
        return {
            "architecture": self.name,
            "title": self.spec.title,
            "family": self.spec.family,
            "classification": {"kind": c.kind, "statement": c.statement, "gap": sp.sstr(c.gap), "gap_latex": self.latex_of(c.gap)},
            "steps": [
                {
                    "number": n,
                    "id": s.id,
                    "title": s.title,
                    "status": s.status,
                    "reason": s.reason,
                    "uses": list(s.uses),
                    "latex": self.step_latex(s),
                    "text": [sp.sstr(e) for e in s.equations],
                }
                for n, s in enumerate(self.steps, 1)
            ],
            "functions": {
                name: {"signature": list(f.signature), "returns": f.returns, "expression": f.expression}
                for name, f in sorted(self.functions.items())
            },
        }

    def text(self) -> str:
        """A plain-text rendering (what ``hjsym derive NAME`` prints)."""
        import sympy as sp

        lines = [f"{self.spec.title} ({self.name}, {self.spec.family} family)", ""]
        for n, s in enumerate(self.steps, 1):
            lines.append(f"({n}) {s.title}  [{s.status}]")
            for e in s.equations:
                lines.append(f"      {sp.sstr(e)}")
            lines.append(f"      because: {s.reason}")
            if s.uses:
                lines.append(f"      uses: {', '.join(f'({self.number(u)})' for u in s.uses)}")
            lines.append("")
        from .activations import table_text

        table = table_text(self)
        if table:
            lines += ["activation classes (from the activation steps):", table, ""]
        c = self.classification
        lines.append(f"classification: {c.kind} - {c.statement}; gap term: {sp.sstr(c.gap)}")
        lines.append("generated functions: " + ", ".join(sorted(self.functions)))
        return "\n".join(lines)

    def latex(self) -> str:
        """A LaTeX fragment: one labelled, numbered equation per line of each step (needs amsmath, amssymb)."""
        from ..reports.pages import latex_fragment

        return latex_fragment(self)

    def markdown(self) -> str:
        """A Markdown fragment: a section per step, equations in ``$$`` blocks with tags and anchors."""
        from ..reports.pages import markdown_fragment

        return markdown_fragment(self)


def _resolve(arch) -> Spec:
    if isinstance(arch, Spec):
        return arch
    from ..spec.registry import get

    return get(arch).spec


def _gibbs_labels(results) -> dict:
    """Give the network's softmax the label pi and the solution's pi^u (shared across steps)."""
    from ..symbolic.reductions import LogSumExp

    labels = {}
    for name, label in (("f", r"\pi"), ("u", r"\pi^{u}")):
        expr = results.get(name)
        if expr is None:
            continue
        for node in expr.atoms(LogSumExp):
            labels.setdefault((node.logits, node.index), label)
    return labels


def derive(arch, *, cache: bool = True) -> Derivation:
    """Derive an architecture (a registered name or a :class:`~hjsym.Spec`).

    Validates the spec, runs every derivation pass, generates a torch function for each named
    result and caches the result on disk (keyed by the spec and the library versions).
    """
    spec = _resolve(arch)
    key = cache_key(spec)
    if cache:
        hit = _cache.load("derivation", key)
        if isinstance(hit, Derivation):
            return hit
    from ..codegen.printer import generate
    from .engine import derive_symbolic
    from ..symbolic.latex import to_latex

    sym = spec.validate()
    sd = derive_symbolic(sym)
    labels = _gibbs_labels(sd.results)
    from ..codegen.program import ProgramSpec, generate_program

    functions = {
        name: generate_program(fs) if isinstance(fs, ProgramSpec) else generate(fs, latex=to_latex(fs.expr, sd.symbol_names, dict(labels)))
        for name, fs in sd.functions.items()
    }
    out = Derivation(spec, sd.steps, sd.results, sd.classification, sd.symbol_names, functions, labels)
    if cache:
        _cache.store("derivation", key, out)
        _cache.store("functions-json", key, {n: f.to_dict() for n, f in functions.items()})
    return out


def load_functions(arch) -> dict[str, GeneratedFunction]:
    """Generated functions of an architecture, from the cache when possible (no SymPy import)."""
    spec = _resolve(arch)
    key = cache_key(spec)
    data = _cache.load("functions-json", key)
    if isinstance(data, dict) and data:
        try:
            return {n: GeneratedFunction.from_dict(d) for n, d in data.items()}
        except (KeyError, TypeError, SyntaxError):
            pass
    return dict(derive(spec).functions)
