"""The main-result box every architecture page opens with, built from the derivation's data.

The box shows the equation an architecture is about (its :class:`~hjsym.spec.registry.KeyResult`,
declared on the ``Architecture`` or :func:`default_key_result`), its number, the check that tests it
with its worst error against its tolerance, and a paragraph that reads the result: the key step's
own title and reason, the spec's Hamiltonian and viscosity (or its step and control Hamiltonian),
the networks and numbers of the check, and the classification. Nothing in it is a fixed sentence
shared between pages: two architectures get different paragraphs exactly where their derivations
differ.
"""

from __future__ import annotations

from ..checks.api import suite_of
from ..derivation.presentation import readable
from ..spec.registry import KeyResult

__all__ = ["default_key_result", "main_result"]


def default_key_result(arch, derivation) -> KeyResult:
    """The identity of an exact-family network, the costate recursion of a control-family one, else the first check's equation."""
    checks = list(arch_checks(arch))
    if derivation.has_step("identity"):
        return KeyResult("identity:1", next((c.name for c in checks if (c.step or "").startswith("identity:")), None))
    if derivation.has_step("discrete-costate"):
        return KeyResult("discrete-costate:1", next((c.name for c in checks if (c.step or "").startswith("discrete-costate:")), None))
    first = next((c for c in checks if c.step), None)
    if first is not None:
        return KeyResult(first.step, first.name)
    return KeyResult(f"{derivation.steps[-1].id}:1" if derivation.steps else "", None)


def arch_checks(arch):
    suite = suite_of(arch)
    return () if suite is None else suite.checks


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", ":", "?")) else text + "."


def _context_sentence(derivation) -> str:
    """What the spec says the architecture is, in its own symbols (Hamiltonian and viscosity, or step and control Hamiltonian)."""
    res = derivation.results
    tex = derivation.latex_of
    if derivation.spec.family == "control":
        shown = lambda f: tex(readable(f, derivation.symbol_names))  # noqa: E731 - the field as a person writes it
        parts = []
        fields = res.get("fields") or {}
        if fields:
            parts.append("the network's field is " + ", ".join(f"$F^{{{s}}} = {shown(f)}$" if len(fields) > 1 else f"$F = {shown(f)}$"
                                                               for s, f in fields.items()))
        if "control_hamiltonian" in res:
            parts.append(rf"its control Hamiltonian $\mathcal{{H}} = p \cdot F$ pairs the costate with it")
        nu = res.get("noise_viscosity")
        if nu is not None:
            parts.append(f"injected noise gives the viscosity $\\nu = {tex(nu)}$")
        return _sentence("; ".join(parts)) if parts else ""
    parts = []
    if "hamiltonian" in res:
        parts.append(f"the Hamiltonian is $H(p) = {tex(res['hamiltonian'])}$")
    if "viscosity" in res:
        parts.append(f"the viscosity $\\nu = {tex(res['viscosity'])}$")
    if "hopf_cole_c" in res:
        parts.append(f"the Hopf-Cole constant solved for is $c = {tex(res['hopf_cole_c'])}$")
    if derivation.spec.values:
        parts.append(f"the values ${derivation.spec.values}$ are averaged by the Gibbs weights")
    return _sentence("Here " + ", ".join(parts)) if parts else ""


def _check_sentence(row, network: str | None) -> str:
    if row is None:
        return "No numerical check tests this equation; its evidence is the symbolic verification above."
    verdict = "passes" if row["passed"] else "FAILS"
    where = f" on {network}" if network else ""
    text = (f"The check {row['name']}{where} compares {row['route_a']} (route A) with {row['route_b']} (route B) and {verdict}: "
            f"at the point closest to its tolerance the error is {_num(row['error'])} against {_num(row['tolerance'])} "
            f"(margin {row['margin_text']}; largest error anywhere {_num(row['max_abs_err'])}).")
    neg = row.get("negative")
    if neg:
        text += (f" Its negative control ({neg['perturbation']}) " +
                 ("fails, as it must." if not neg["passed"] else "still passes: the check cannot see that perturbation."))
    return text


def _num(v) -> str:
    if not isinstance(v, (int, float)):
        return str(v)
    if v != v:
        return "n/a"
    return "0" if v == 0 else f"{v:.1e}"


def main_result(arch, derivation, steps: list[dict], checks_page: dict | None, resolve) -> dict:
    """The box's data (``resolve`` maps a ``"step-id:k"`` declaration to the page's step and equation)."""
    key = arch.key_result or default_key_result(arch, derivation)
    target = resolve(key.step, steps)
    rows = {r["name"]: r for r in (checks_page or {}).get("rows", [])}
    row = rows.get(key.check) if key.check else None
    step = next((s for s in derivation.steps if target and s.id == target["id"]), None)
    paragraphs = []
    if step is not None:
        paragraphs.append(f"{_sentence(step.title)} {_sentence(step.reason)}")
    paragraphs.append(_context_sentence(derivation))
    paragraphs.append(_check_sentence(row, (checks_page or {}).get("network")))
    c = derivation.classification
    paragraphs.append(_sentence(f"Classification: {c.kind}, {c.statement}"))
    return {
        "declared": arch.key_result is not None,
        "step": key.step,
        "check": key.check,
        "target": target,
        "row": row,
        "reading": " ".join(p for p in paragraphs if p),
        "classification": c.kind,
    }
