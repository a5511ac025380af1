"""What a check records: both routes, the errors, the scale of the terms, the tolerance, the margin, the verdict."""

from __future__ import annotations

import math
import textwrap
from dataclasses import asdict, dataclass, field

import torch

from ..symbolic.prose import to_text

__all__ = ["CheckResult", "CheckReport", "jsonable"]


@dataclass
class CheckResult:
    """One check: what was compared, both routes, the errors, the tolerance and the verdict.

    ``error``, ``tolerance`` and ``scale`` are those of the element that came closest to failing
    (largest ``|A - B| / tolerance``); ``margin`` is that element's ``tolerance / error`` (above 1: it
    passes with that much room; ``inf``: the routes agree exactly). ``max_abs_err`` is the largest
    error anywhere, which may sit where the terms are larger and so is the tolerance. For an identity or a bound the
    tolerance is ``k * unit_roundoff * scale`` (see :mod:`hjsym.checks.criteria`); a statistic states
    its own (a multiple of a standard error).
    """

    name: str
    title: str
    route_a: str
    route_b: str
    max_abs_err: float
    max_rel_err: float
    tolerance: float
    passed: bool
    kind: str = "identity"
    criterion: str = ""
    details: dict = field(default_factory=dict)
    example: dict = field(default_factory=dict)
    scale: float = math.nan
    margin: float = math.nan
    k: float = math.nan
    unit_roundoff: float = math.nan
    step: str = ""
    error: float = math.nan

    def to_dict(self) -> dict:
        return jsonable(asdict(self))

    def __repr__(self) -> str:
        return (f"<CheckResult {self.name}: {'pass' if self.passed else 'FAIL'}, error {_fmt(self.error)} <= tolerance "
                f"{_fmt(self.tolerance)} (margin {_margin(self.margin)})>")

    def _repr_markdown_(self) -> str:
        return (f"**{self.name}** {'pass' if self.passed else '**FAIL**'}: {self.title}  \n"
                f"route A: {self.route_a}; route B: {self.route_b}  \n"
                f"error {_fmt(self.error)} ≤ tolerance {_fmt(self.tolerance)} (margin {_margin(self.margin)}); "
                f"max abs err {_fmt(self.max_abs_err)}; equation `{self.step or '-'}`")

    def _repr_html_(self) -> str:
        return _html_table([self], f"check {self.name}")

    def _repr_latex_(self) -> str:
        return rf"$$\text{{{self.name}}}:\ {_tex_num(self.error)} \le {_tex_num(self.tolerance)}\ ({'pass' if self.passed else 'FAIL'})$$"


@dataclass
class CheckReport:
    """All checks of one architecture on one set of networks."""

    architecture: str
    dtype: str
    seed: int
    network: str
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def formula_controls(self) -> list[dict]:
        """Every check's formula control (run with ``formula_controls=True``): ``{"check", "functions", "mutation",
        "max_abs_err", "error", "tolerance", "margin", "passed"}``; ``passed`` must be False (the wrong formula caught)."""
        return [{"check": c.name, **c.details["formula_control"]} for c in self.checks if "formula_control" in c.details]

    @property
    def uncaught_controls(self) -> list[str]:
        """Checks whose negative or formula control, where one was run, passed: they could not tell the difference."""
        out = []
        for c in self.checks:
            for key in ("negative_control", "formula_control"):
                control = c.details.get(key)
                if control is not None and control.get("passed", False):
                    out.append(f"{c.name} ({key.replace('_', ' ')})")
        return out

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; have {[c.name for c in self.checks]}")

    def to_dict(self) -> dict:
        return {
            "architecture": self.architecture,
            "dtype": self.dtype,
            "seed": self.seed,
            "network": self.network,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            **({"formula_controls": jsonable(self.formula_controls)} if self.formula_controls else {}),
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        failed = [c.name for c in self.checks if not c.passed]
        return (f"<CheckReport {self.architecture}: {len(self.checks) - len(failed)}/{len(self.checks)} pass"
                + (f", failed: {', '.join(failed)}" if failed else "") + f" ({self.dtype}, seed {self.seed})>")

    def _repr_html_(self) -> str:
        return _html_table(self.checks, f"{self.architecture}: {self.network} ({self.dtype}, seed {self.seed})")

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.architecture}**: {self.network} ({self.dtype}, seed {self.seed})", "",
                 "| check | error | tolerance | margin | result |", "|---|---|---|---|---|"]
        lines += [f"| {c.name} | {_fmt(c.error)} | {_fmt(c.tolerance)} | {_margin(c.margin)} | {'pass' if c.passed else '**FAIL**'} |"
                  for c in self.checks]
        return "\n".join(lines)

    def table(self, controls: bool | None = None, width: int = 100) -> str:
        """A plain-text table (what ``hjsym check`` prints without ``--json``).

        With ``controls`` (default: when any check recorded one) a column per kind of control: the
        perturbed network's error and whether the check failed on it (``negative``), and the mutated
        formula's (``formula``, when the checks recorded ``details["formula_control"]``).
        """
        neg = [c.details.get("negative_control") for c in self.checks]
        form = [c.details.get("formula_control") for c in self.checks]
        show_neg = any(neg) if controls is None else controls and any(neg)
        show_form = any(form) if controls is None else controls and any(form)
        head = ["check", "max abs err", "closest: error", "tolerance", "margin", "result"]
        head += ["negative control"] * show_neg + ["formula control"] * show_form
        rows = [tuple(head)]
        for c, n, f in zip(self.checks, neg, form):
            row = [c.name, _fmt(c.max_abs_err), _fmt(c.error), _fmt(c.tolerance), _margin(c.margin), "pass" if c.passed else "FAIL"]
            if show_neg:
                row.append(_control(n))
            if show_form:
                row.append(_control(f))
            rows.append(tuple(row))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        out = [f"{self.architecture}: {self.network} ({self.dtype}, seed {self.seed})"]
        for n, r in enumerate(rows):
            out.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        failed = [c.name for c in self.checks if not c.passed]
        out.append(f"{len(self.checks) - len(failed)}/{len(self.checks)} checks pass" + (f"; failed: {', '.join(failed)}" if failed else ""))
        prose = ["closest: the element nearest its tolerance k u S (S the magnitude of the terms on both routes); margin = tolerance / error"]
        if show_neg or show_form:
            prose.append("controls: the error on the perturbed network (negative) or the mutated formula (formula); "
                         "'fails' is what a sound check must do")
        formula = self.formula_controls
        if formula:
            caught = [f for f in formula if not f["passed"]]
            missed = [f["check"] for f in formula if f["passed"]]
            prose.append(f"formula controls: {len(caught)}/{len(formula)} checks fail on their mutated formula"
                         + (f"; not caught: {', '.join(missed)}" if missed else ""))
        prose += [f"note: {n}" for n in self.notes]
        for line in prose:
            out += textwrap.wrap(to_text(line), width, subsequent_indent="  ", break_long_words=False) or [""]
        return "\n".join(out)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.2e}"


def _control(control) -> str:
    """A control's outcome for the table: its error and whether the check failed on it."""
    if not control:
        return "-"
    err = control.get("max_abs_err")
    return f"{_fmt(err) if isinstance(err, (int, float)) else err}: " + ("fails" if not control.get("passed") else "DID NOT FAIL")


def _tex_num(v) -> str:
    text = _fmt(v)
    mant, _, exp = text.partition("e")
    return rf"{mant}\times 10^{{{int(exp)}}}" if exp else text


def _html_table(checks, caption: str) -> str:
    """Checks as an HTML table for a notebook (error, tolerance, margin, verdict, negative control)."""
    import html

    rows = []
    for c in checks:
        neg = c.details.get("negative_control")
        rows.append(f"<tr><td><b>{html.escape(c.name)}</b><br><small>{html.escape(c.title)}</small></td><td>{_fmt(c.max_abs_err)}</td>"
                    f"<td>{_fmt(c.error)}</td><td>{_fmt(c.tolerance)}</td><td>{_margin(c.margin)}</td>"
                    f"<td>{'pass' if c.passed else '<b>FAIL</b>'}</td><td>{html.escape(_control(neg))}</td></tr>")
    return (f"<table><caption>{html.escape(caption)}</caption><tr><th>check</th><th>max abs err</th><th>closest: error</th>"
            f"<th>tolerance</th><th>margin</th><th>result</th><th>negative control</th></tr>{''.join(rows)}</table>")


def _margin(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "exact"
    return f"{v:.3g}x"


def jsonable(obj):
    """``obj`` with non-finite floats as strings and tensors as lists (JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return jsonable(obj.tolist())
    return obj
