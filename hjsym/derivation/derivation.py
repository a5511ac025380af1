"""The derivation as data: numbered steps, named results, the classification and the function specs.

:func:`hjsym.derivation.engine.derive_symbolic` builds a :class:`Derivation`; :func:`hjsym.derive`
adds a generated torch function for every function spec (``functions``) and the magnitude of its
terms (``magnitudes``, the scale of a check's tolerance). Renderings for papers and notebooks
(LaTeX and Markdown fragments) live in :mod:`hjsym.reports.fragments`; :meth:`Derivation.text`
is the plain-text summary a terminal shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .._errors import InputError
from ..symbolic.latex import to_latex
from ..symbolic.prose import to_text
from ..symbolic.unicode import latex_to_unicode, wrap_math
from ..symbolic.reductions import LogSumExp
from .activations import table_text

__all__ = ["Derivation", "Step", "Classification", "STATUSES", "gibbs_labels"]

STATUSES = ("derived", "verified", "stated", "failed")


@dataclass
class Step:
    """One step of a derivation.

    ``status`` is ``derived`` (SymPy computed the right-hand side), ``verified`` (a claimed
    equality whose difference SymPy reduced to zero), ``stated`` (a definition, or an
    inequality justified by ``reason``) or ``failed`` (the pass could not complete; ``reason``
    says why and what is left).
    """

    id: str
    title: str
    equations: tuple
    reason: str
    uses: tuple[str, ...] = ()
    status: str = "derived"
    shown: tuple = ()  # the equations as a person writes them, each verified equal (hjsym.derivation.presentation)

    def display(self) -> tuple:
        """The equations to show: the readable ``shown`` forms when the presentation step made them."""
        return self.shown if len(self.shown) == len(self.equations) else self.equations

    def __repr__(self) -> str:
        return f"<Step {self.id!r}: {self.title!r}, {len(self.equations)} equations, {self.status}>"

    def _markdown(self, number=None, derivation=None) -> str:
        latex = derivation.latex_of if derivation is not None else to_latex
        head = f"**({number}) {self.title}**" if number else f"**{self.title}**"
        eqs = "\n".join(f"$${latex(e)}$$" for e in self.display())
        return f"{head} *[{self.status}]*\n\n{eqs}\n\n*Because* {self.reason}.\n"

    def _repr_markdown_(self) -> str:
        return self._markdown()

    def _repr_latex_(self) -> str:
        return "$$\\begin{aligned}" + r" \\ ".join(f"&{to_latex(e)}" for e in self.display()) + r"\end{aligned}$$"


@dataclass
class Classification:
    """Exact / structural / open, with the statement and the symbolic gap term."""

    kind: str
    statement: str
    gap: sp.Expr = sp.S.Zero


def gibbs_labels(results) -> dict:
    """Give the network's softmax the label pi and the solution's pi^u (shared across steps)."""
    labels = {}
    for name, label in (("f", r"\pi"), ("u", r"\pi^{u}")):
        expr = results.get(name)
        if expr is None:
            continue
        for node in expr.atoms(LogSumExp):
            labels.setdefault((node.logits, node.index), label)
    return labels


@dataclass
class Derivation:
    """Everything hjsym derived for one architecture.

    Attributes:
        spec: the declarative spec it was derived from.
        steps: numbered steps (:class:`Step`: id, title, equations, reason, uses, status).
        results: named SymPy results (``"u"``, ``"residual"``, ``"hessian_f"``, ...).
        classification: exact / structural / open, with the statement and the gap term.
        symbol_names: LaTeX names of the spec's symbols.
        function_specs: what code generation turns into torch functions (:mod:`hjsym.ir`).
        magnitude_specs: for every function spec, the spec of the magnitude of its terms (the scale of its
            rounding error, :mod:`hjsym.symbolic.magnitude`); for some results (a residual) the terms as
            route A computes them, before they cancel.
        functions: generated torch functions by name (see :meth:`function`), filled by :func:`hjsym.derive`.
        magnitudes: the generated magnitude functions, by the name of the function they scale.
    """

    spec: object
    steps: list
    results: dict
    classification: Classification
    symbol_names: dict
    function_specs: dict = field(default_factory=dict)
    magnitude_specs: dict = field(default_factory=dict)
    functions: dict = field(default_factory=dict)
    magnitudes: dict = field(default_factory=dict)
    gibbs_labels: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.gibbs_labels:
            self.gibbs_labels = gibbs_labels(self.results)

    @property
    def name(self) -> str:
        return self.spec.name

    def function(self, name: str):
        """The generated torch function for the result ``name`` (see ``functions`` for names)."""
        try:
            return self.functions[name]
        except KeyError:
            raise InputError(
                f"{self.name!r} has no generated function {name!r}",
                f"use one of: {', '.join(sorted(self.functions)) or '(none generated: call hjsym.derive)'}",
            ) from None

    def has_step(self, id: str) -> bool:
        return any(s.id == id for s in self.steps)

    def step(self, id: str) -> Step:
        for s in self.steps:
            if s.id == id:
                return s
        raise KeyError(f"{self.name!r} has no step {id!r}")

    def number(self, id: str) -> int:
        """1-based number of a step."""
        return [s.id for s in self.steps].index(id) + 1

    def latex_of(self, expr) -> str:
        """LaTeX of an expression with this derivation's symbol names and Gibbs labels."""
        return to_latex(expr, self.symbol_names, dict(self.gibbs_labels))

    def step_latex(self, step) -> list[str]:
        """LaTeX of a step's equations as shown (the readable forms)."""
        return [self.latex_of(e) for e in step.display()]

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
                    "text": [sp.sstr(e) for e in s.display()],
                    "derived_latex": [self.latex_of(e) for e in s.equations],
                }
                for n, s in enumerate(self.steps, 1)
            ],
            "functions": {
                name: {"signature": list(f.signature), "returns": f.returns, "expression": f.expression}
                for name, f in sorted(self.functions.items())
            },
        }

    def text(self, width: int = 100) -> str:
        """The derivation as Unicode mathematics wrapped to ``width`` columns (what ``hjsym derive NAME`` prints)."""
        import textwrap

        def para(text, indent="      "):
            return textwrap.wrap(to_text(text), width, initial_indent=indent, subsequent_indent=indent + "  ",
                                 break_long_words=False, break_on_hyphens=False) or [indent]

        lines = para(f"{to_text(self.spec.title)} ({self.name}, {self.spec.family} family)", "") + [""]
        for n, s in enumerate(self.steps, 1):
            lines += para(f"({n}) {to_text(s.title)}  [{s.status}]", "")
            for k, e in enumerate(s.display(), 1):
                lines += wrap_math(f"({n}.{k})  " + latex_to_unicode(self.latex_of(e)), width, "      ")
            lines += para("because: " + s.reason)
            if s.uses:
                lines += para(f"uses: {', '.join(f'({self.number(u)})' for u in s.uses)}")
            lines.append("")
        table = table_text(self)
        if table:
            lines += ["activation classes (from the activation steps):", table, ""]
        c = self.classification
        lines += para(f"classification: {c.kind} - {c.statement}; gap term: ${self.latex_of(c.gap)}$", "")
        lines += para("generated functions: " + ", ".join(sorted(self.functions)), "")
        return "\n".join(lines)

    def __repr__(self) -> str:
        c = self.classification
        return (f"<Derivation {self.name!r}: {len(self.steps)} steps, {c.kind}, "
                f"{len(self.functions)} generated functions>")

    # ------------------------------------------------------------------ notebooks (light: no templates here)
    def _repr_markdown_(self) -> str:
        """Markdown with ``$$`` equations (Jupyter renders it with MathJax): title, classification, every step."""
        c = self.classification
        out = [f"### {self.spec.title} (`{self.name}`, {self.spec.family} family)", "",
               f"**{c.kind}**: {c.statement}. Gap term ${self.latex_of(c.gap)}$.", ""]
        for n, s in enumerate(self.steps, 1):
            out.append(s._markdown(n, self))
        return "\n".join(out)

    def _repr_latex_(self) -> str:
        """The equations of every step as one ``aligned`` display (Jupyter's LaTeX output)."""
        rows = [rf"&{self.latex_of(e)} && \text{{({n}.{k})}}" for n, s in enumerate(self.steps, 1) for k, e in enumerate(s.display(), 1)]
        return "$$\\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$$"

    def _repr_html_(self) -> str:
        """HTML for a notebook: the steps as a table of titles and ``$$`` equations (typeset by the notebook's MathJax)."""
        import html

        c = self.classification
        rows = []
        for n, s in enumerate(self.steps, 1):
            eqs = "<br>".join(f"$${html.escape(self.latex_of(e))} \\tag{{{n}.{k}}}$$" for k, e in enumerate(s.display(), 1))
            rows.append(f"<tr><td>({n})</td><td>{html.escape(s.title)} <small>[{s.status}]</small></td><td>{eqs}</td></tr>")
        return (f"<div><b>{html.escape(self.spec.title)}</b> (<code>{self.name}</code>): <b>{c.kind}</b>, {html.escape(c.statement)}"
                f"<table>{''.join(rows)}</table></div>")
