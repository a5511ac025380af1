"""Reports: HTML (formulas rendered offline by a bundled KaTeX) and LaTeX (compiled by pdflatex).

``report(["lse"], out="reports")`` derives, checks (with negative controls) and draws each
architecture, then writes ``out/NAME/index.html``, ``out/NAME/NAME.tex``, the figures (PNG
and PDF), ``derivation.json``, ``checks.json`` and ``summary.json``, and the index
``out/index.html``. Every file is written through a temporary file and a rename, and two runs
on one machine give identical bytes (no timestamps; seeded networks).
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import tempfile
from importlib import metadata, resources
from pathlib import Path

from ._cache import atomic_write
from ._errors import InputError
from ._references import REFERENCES, bibtex

__all__ = ["report", "latex_fragment", "display_tex", "compile_pdf", "FORMATS"]

FORMATS = ("html", "tex", "pdf")
MAX_LINE = 170  # characters of TeX source per displayed line before a long right-hand side is broken
STATUS_TEXT = {
    "derived": "derived by SymPy",
    "verified": "verified: the difference reduces to zero",
    "stated": "stated (inequality or definition; reason given)",
    "failed": "could not be completed",
}

_TEX_SPECIALS = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "<": r"\textless{}",
                 ">": r"\textgreater{}"}


def tex_escape(text) -> str:
    """Escape plain text for LaTeX."""
    return "".join(_TEX_SPECIALS.get(ch, ch) for ch in str(text))


def _envs():
    import jinja2

    loader = jinja2.PackageLoader("hjsym", "templates")
    html = jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(["html", "j2"]), keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    tex = jinja2.Environment(
        loader=loader,
        autoescape=False,
        block_start_string="((*",
        block_end_string="*))",
        variable_start_string="(((",
        variable_end_string=")))",
        comment_start_string="((=",
        comment_end_string="=))",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    tex.filters["e"] = tex_escape
    for env in (html, tex):
        env.filters["sci"] = _sci
    return html, tex


def _sci(value) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    return f"{value:.1e}" if value != 0 else "0"


# ----------------------------------------------------------------------------- equations
def display_tex(derivation, expr, max_line: int = MAX_LINE) -> str:
    """LaTeX of a displayed relation; a long right-hand sum is broken into aligned lines."""
    import sympy as sp

    from ._latex import HJLatexPrinter

    printer = HJLatexPrinter({"symbol_names": derivation.symbol_names}, gibbs=dict(derivation.gibbs_labels))
    full = printer.doprint(expr)
    if len(full) <= max_line or not isinstance(expr, sp.core.relational.Relational) or not expr.rhs.is_Add:
        return full
    rel = {"==": "=", "<=": r"\leq", ">=": r"\geq", "<": "<", ">": ">"}.get(expr.rel_op, "=")
    lines, current = [], ""
    for n, term in enumerate(printer._as_ordered_terms(expr.rhs)):
        tex = printer._print(term)
        if n == 0:
            piece = tex
        elif tex.startswith("-"):
            piece = " - " + tex[1:].lstrip()
        else:
            piece = " + " + tex
        if current and len(current) + len(piece) > max_line:
            lines.append(current)
            current = piece.strip()  # keeps its sign: "+ term" or "- term"
        else:
            current += piece
    lines.append(current)
    body = rf" \\ &\quad ".join(lines)
    return rf"\begin{{aligned}} {printer._print(expr.lhs)} &{rel} {body} \end{{aligned}}"


def _steps(derivation) -> list[dict]:
    numbers = {s.id: n for n, s in enumerate(derivation.steps, 1)}
    out = []
    for n, s in enumerate(derivation.steps, 1):
        eqs = [
            {"tex": display_tex(derivation, e), "tag": f"{n}.{k}", "label": f"eq:{derivation.name}:{s.id}:{k}"}
            for k, e in enumerate(s.equations, 1)
        ]
        out.append({
            "number": n,
            "id": s.id,
            "title": s.title,
            "status": s.status,
            "status_text": STATUS_TEXT[s.status],
            "reason": s.reason,
            "uses": [{"number": numbers[u], "id": u, "title": derivation.step(u).title} for u in s.uses],
            "equations": eqs,
        })
    return out


def latex_fragment(derivation) -> str:
    """The derivation as a LaTeX fragment with labelled equations (``hjsym derive --format latex``)."""
    _, tex = _envs()
    return tex.get_template("fragment.tex.j2").render(name=derivation.name, title=derivation.spec.title, steps=_steps(derivation))


# ----------------------------------------------------------------------------- pages
def _versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("hjsym", "torch", "sympy", "numpy", "matplotlib", "jinja2", "networkx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _spec_rows(derivation) -> dict:
    spec = derivation.spec
    res = derivation.results
    fields = []
    if spec.hamiltonian is not None:
        fields.append(("Hamiltonian H(x, p)", spec.hamiltonian, derivation.latex_of(res["hamiltonian"]) if "hamiltonian" in res else ""))
    fields.append(("viscosity", spec.viscosity, derivation.latex_of(res["viscosity"]) if "viscosity" in res else ""))
    if spec.diffusion:
        fields.append(("diffusion matrix", spec.diffusion, ""))
    if spec.network is not None:
        fields.append(("network", spec.network.output, derivation.latex_of(res["f"]) if "f" in res else ""))
    if spec.initial_data is not None:
        fields.append(("initial data", f"atoms {spec.initial_data.points}, values {spec.initial_data.values}", ""))
    if spec.dynamics is not None:
        fields.append(("dynamics F", spec.dynamics.field, ""))
    symbols = [(spec.state, "(*batch, d)", "query point / state"), (spec.costate, "(d,)", "costate"), (spec.time, "scalar > 0", "PDE time")]
    for s in spec.symbols:
        axes = getattr(s, "axes", None)
        shape = "scalar" + (" > 0" if getattr(s, "positive", False) else "") if axes is None else "(" + ", ".join(
            {"atom": "N", "dim": "d"}.get(a, a) for a in axes) + ("," if len(axes) == 1 else "") + ")"
        symbols.append((s.name, shape, s.doc))
    return {"fields": fields, "symbols": symbols}


def _check_rows(arch, check_report, seed) -> list[dict]:
    rows = []
    for c in check_report.checks:
        neg = c.details.get("negative_control")
        rows.append({
            "name": c.name,
            "title": c.title,
            "route_a": c.route_a,
            "route_b": c.route_b,
            "max_abs_err": c.max_abs_err,
            "max_rel_err": c.max_rel_err,
            "tolerance": c.tolerance,
            "passed": c.passed,
            "kind": c.kind,
            "criterion": c.criterion,
            "example": c.example,
            "negative": neg,
            "command": f"hjsym check {arch.name} --only {c.name} --seed {seed} --negative-controls",
        })
    return rows


def _page(arch, derivation, check_report, figures, seed) -> dict:
    c = derivation.classification
    checks = None
    if check_report is not None:
        rows = _check_rows(arch, check_report, seed)
        worst = max((r["max_abs_err"] / r["tolerance"] for r in rows if isinstance(r["max_abs_err"], float)), default=0.0)
        checks = {
            "rows": rows,
            "passed": check_report.passed,
            "n_passed": sum(r["passed"] for r in rows),
            "n": len(rows),
            "network": check_report.network,
            "dtype": check_report.dtype,
            "notes": check_report.notes,
            "worst_ratio": worst,
            "negatives_fail": all(r["negative"] is None or not r["negative"]["passed"] for r in rows),
        }
    refs = [k for k in derivation.spec.references if k in REFERENCES]
    return {
        "name": arch.name,
        "title": derivation.spec.title,
        "summary": derivation.spec.summary,
        "family": derivation.spec.family,
        "classification": {"kind": c.kind, "statement": c.statement, "gap_tex": derivation.latex_of(c.gap)},
        "spec": _spec_rows(derivation),
        "steps": _steps(derivation),
        "functions": [
            {"name": f.name, "signature": ", ".join(f"{s['name']}: {s['shape']}" for s in f.signature), "returns": f.returns,
             "doc": f.doc, "tex": f.latex, "source": f.source}
            for f in sorted(derivation.functions.values(), key=lambda f: f.name)
        ],
        "checks": checks,
        "figures": figures,
        "seed": seed,
        "commands": {
            "derive": f"hjsym derive {arch.name}",
            "check": f"hjsym check {arch.name} --seed {seed} --negative-controls",
            "report": f"hjsym report {arch.name} --seed {seed}",
        },
        "versions": _versions(),
        "references": [{"key": k, "text": REFERENCES[k]["short"]} for k in refs],
    }


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


def _copy_static(out: Path) -> None:
    static = out / "_static"
    root = resources.files("hjsym")
    katex = root / "_vendor" / "katex"
    for item in ("katex.min.js", "katex.min.css", "LICENSE"):
        _copy_if_changed(katex / item, static / "katex" / item)
    for font in (katex / "fonts").iterdir():
        _copy_if_changed(font, static / "katex" / "fonts" / font.name)
    _copy_if_changed(root / "templates" / "hjsym.css", static / "hjsym.css")
    _copy_if_changed(root / "templates" / "render-math.js", static / "render-math.js")


def _copy_if_changed(src, dst: Path) -> None:
    data = src.read_bytes()
    if not dst.exists() or dst.read_bytes() != data:
        atomic_write(dst, data)


def compile_pdf(tex_path: Path) -> Path:
    """Compile ``tex_path`` with pdflatex (twice, for references) and return the PDF's path."""
    exe = shutil.which("pdflatex")
    if exe is None:
        raise InputError(
            "no TeX engine: pdflatex is not on PATH",
            "install one (Debian/Ubuntu: apt-get install texlive-latex-recommended texlive-latex-extra) or drop 'pdf' from --format",
        )
    tex_path = Path(tex_path).resolve()
    with tempfile.TemporaryDirectory(prefix="hjsym-tex-") as tmp:
        for _ in range(2):
            proc = subprocess.run(
                [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", f"-output-directory={tmp}", tex_path.name],
                cwd=tex_path.parent, capture_output=True, text=True, errors="replace", timeout=300,
            )
            if proc.returncode != 0:
                tail = "\n".join(proc.stdout.splitlines()[-25:])
                raise RuntimeError(f"pdflatex failed on {tex_path.name}:\n{tail}")
        pdf = Path(tmp) / (tex_path.stem + ".pdf")
        log = (Path(tmp) / (tex_path.stem + ".log")).read_text(errors="replace")
        target = tex_path.with_suffix(".pdf")
        atomic_write(target, pdf.read_bytes())
        atomic_write(tex_path.with_suffix(".log"), log.encode())
    return target


def overfull_boxes(log_text: str) -> list[str]:
    """The 'Overfull \\hbox' warnings of a pdflatex log."""
    return re.findall(r"Overfull \\hbox \([^)]*\)[^\n]*", log_text)


def _resolve_archs(archs):
    from ._registry import all_architectures, get

    if isinstance(archs, str):
        archs = [archs]
    archs = list(archs) or ["all"]
    if "all" in archs:
        return all_architectures()
    return [get(a) for a in archs]


def report(archs=("all",), out="reports", formats=("html", "tex"), *, seed: int = 0, progress: bool = False) -> list[Path]:
    """Derive, check and write the report of each architecture; returns the files written.

    Args:
        archs: architecture names, or ``"all"``.
        out: output folder (created if needed).
        formats: any of ``"html"``, ``"tex"``, ``"pdf"`` (``pdf`` compiles the ``.tex`` with pdflatex).
        seed: seeds the reference networks of the checks.
    """
    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise InputError(f"unknown report format(s) {', '.join(bad) or '(none)'}", f"use a comma-separated subset of {','.join(FORMATS)}")
    if "pdf" in formats and shutil.which("pdflatex") is None:
        compile_pdf(Path("missing.tex"))  # raises the how-to-install error before any work
    from tqdm.auto import tqdm

    from ._api import check
    from ._derivation import derive

    out = Path(out)
    html_env, tex_env = _envs()
    written: list[Path] = []
    arch_list = _resolve_archs(archs)
    if "html" in formats:
        _copy_static(out)
    for arch in tqdm(arch_list, desc="reports", disable=not progress):
        folder = out / arch.name
        derivation = derive(arch.spec)
        check_report = check(arch, seed=seed, negative_controls=True) if arch.suite else None
        figures = []
        fig_fn = arch.figures_function()
        if fig_fn is not None and check_report is not None:
            folder.mkdir(parents=True, exist_ok=True)
            figures = fig_fn(arch, check_report, folder, seed=seed)
        page = _page(arch, derivation, check_report, figures, seed)
        files = {
            "derivation.json": json.dumps(derivation.to_dict(), indent=2, sort_keys=True) + "\n",
            "summary.json": json.dumps(_summary(page), indent=2, sort_keys=True) + "\n",
        }
        if check_report is not None:
            files["checks.json"] = json.dumps(check_report.to_dict(), indent=2, sort_keys=True) + "\n"
        if "html" in formats:
            files["index.html"] = html_env.get_template("report.html.j2").render(page=page, static="../_static")
        if "tex" in formats or "pdf" in formats:
            files[f"{arch.name}.tex"] = tex_env.get_template("report.tex.j2").render(page=page)
            files["references.bib"] = bibtex([r["key"] for r in page["references"]])
        for name, text in files.items():
            _write_text(folder / name, text)
            written.append(folder / name)
        written += [folder / f[k] for f in figures for k in ("png", "pdf")]
        if "pdf" in formats:
            written.append(compile_pdf(folder / f"{arch.name}.tex"))
    if "html" in formats:
        index = out / "index.html"
        _write_text(index, html_env.get_template("index.html.j2").render(rows=_index_rows(out), static="_static"))
        written.append(index)
    return written


def _summary(page) -> dict:
    checks = page["checks"]
    return {
        "name": page["name"],
        "title": page["title"],
        "family": page["family"],
        "classification": page["classification"]["kind"],
        "statement": page["classification"]["statement"],
        "checks_passed": None if checks is None else checks["n_passed"],
        "checks_total": None if checks is None else checks["n"],
        "worst_error_over_tolerance": None if checks is None else checks["worst_ratio"],
        "negative_controls_fail": None if checks is None else checks["negatives_fail"],
    }


def _index_rows(out: Path) -> list[dict]:
    """Every report found under ``out`` (so reporting one architecture keeps the others listed)."""
    from ._registry import names

    order = {n: k for k, n in enumerate(names())}
    rows = []
    for path in sorted(out.glob("*/summary.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        data["has_pdf"] = (path.parent / f"{data['name']}.pdf").exists()
        data["has_tex"] = (path.parent / f"{data['name']}.tex").exists()
        rows.append(data)
    return sorted(rows, key=lambda r: (order.get(r["name"], 10**6), r["name"]))
