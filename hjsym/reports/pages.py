"""Reports: HTML (formulas rendered offline by a bundled KaTeX), LaTeX and PDF, an index, exports.

``report(["lse"], out="reports")`` derives, checks (with negative controls) and draws each
architecture, then writes into ``out/NAME/``: ``index.html``, ``NAME.tex`` (and ``NAME.pdf``
with ``--format pdf``), the figures (PNG and PDF) including the derivation graph,
``derivation.tex`` and ``derivation.md`` (the derivation as fragments to paste into a paper or a
notebook), ``derivation.json``, ``checks.json``, ``summary.json`` and ``references.bib``. Then
it writes the index of every page under ``out`` (architectures and experiments, from their
``summary.json``): ``out/index.html`` and, with ``pdf``, the combined ``out/hjsym.tex`` /
``out/hjsym.pdf``.

Speed: the derived, checked and drawn content of a page is cached on disk, keyed by the spec,
the seed and the versions of hjsym's sources, SymPy, torch, Python and matplotlib; pages not in
the cache are computed in parallel worker processes (one torch thread each, as ``hjsym check``:
the check networks are small, and threads only contend). Templates are rendered on every run. Every file is written
through a temporary file and a rename, and two runs give identical bytes (no timestamps; seeded
networks; PDFs compiled with a fixed source date and no trailer id).
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
import warnings
from contextlib import contextmanager
from importlib import metadata, resources
from pathlib import Path

import torch

from .. import _cache
from .._cache import atomic_write
from .._errors import InputError
from .._workers import process_pool
from ..checks.api import check, suite_of
from ..checks.engine import torch_threads
from ..codegen.pipeline import cache_key, derive
from ..networks.training import validate_seed
from ..spec.registry import all_architectures, get
from .equations import MAX_EM, break_tex
from .figures import derivation_graph_figure, figures_for
from .main_result import main_result
from .references import REFERENCES, bibtex, step_citations
from .texbuild import compile_many, compile_pdf, label_pages, overfull_boxes, require_tex_engine
from ..symbolic.prose import to_text
from .prose import prose_bookmark, prose_html, prose_tex
from .texescape import tex_breakable, tex_escape

__all__ = ["report", "latex_fragment", "markdown_fragment", "display_tex", "compile_pdf", "overfull_boxes", "FORMATS",
           "index_rows", "write_index", "tex_escape"]

FORMATS = ("html", "tex", "pdf")
STATUS_TEXT = {
    "derived": "derived by SymPy",
    "verified": "verified: the difference reduces to zero",
    "stated": "stated (inequality or definition; reason given)",
    "failed": "could not be completed",
}
#: Files every architecture folder gets (besides figures and the formats' documents).
FRAGMENT_TEX, FRAGMENT_MD = "derivation.tex", "derivation.md"

def _envs():
    """The two Jinja environments: HTML (autoescaped) and LaTeX (``((* *))`` / ``((( )))`` delimiters)."""
    import jinja2

    loader = jinja2.PackageLoader("hjsym.reports", "templates")
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
    tex.filters["ident"] = tex_breakable
    tex.filters["prose"] = prose_tex
    tex.filters["bookmark"] = prose_bookmark
    html.filters["prose"] = prose_html
    html.filters["plain"] = to_text
    tex.filters["comment"] = lambda text: " ".join(str(text).split())  # inside a % comment: one line, verbatim
    for env in (html, tex):
        env.filters["sci"] = _sci
        env.filters["full"] = _full
        env.filters["texsci"] = _texsci
    return html, tex


def _sci(value) -> str:
    """A number in short scientific notation ('4.4e-16'); strings and None pass through."""
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    return f"{value:.1e}" if value != 0 else "0"


def _texsci(value) -> str:
    """A number as LaTeX math: ``4.4\\times10^{-16}``."""
    text = _sci(value)
    m = re.fullmatch(r"(-?[\d.]+)e([+-]\d+)", text)
    if not m:
        return text.replace("inf", r"\infty")
    return rf"{m.group(1)}\times 10^{{{int(m.group(2))}}}"


def _full(value) -> str:
    """A float with every digit it has (Python's shortest round-trip form)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return str(value)


# ----------------------------------------------------------------------------- equations
def display_tex(derivation, expr, max_em: float = MAX_EM) -> str:
    """LaTeX of a displayed relation; wider than ``max_em`` it becomes ``aligned`` lines (see :mod:`hjsym.reports.equations`)."""
    return break_tex(derivation.latex_of(expr), max_em)


def _anchor(label: str) -> str:
    """HTML id of a LaTeX label: the same name with ``-`` for ``:`` (``eq:lse:identity:1`` -> ``eq-lse-identity-1``)."""
    return label.replace(":", "-")


def _steps(derivation) -> list[dict]:
    """Numbered steps with labelled equations, cross-references and citations (renderer-neutral)."""
    numbers = {s.id: n for n, s in enumerate(derivation.steps, 1)}
    out = []
    for n, s in enumerate(derivation.steps, 1):
        eqs = []
        for k, e in enumerate(s.display(), 1):
            label = f"eq:{derivation.name}:{s.id}:{k}"
            eqs.append({"tex": display_tex(derivation, e), "tag": f"{n}.{k}", "label": label, "anchor": _anchor(label)})
        out.append({
            "number": n,
            "id": s.id,
            "anchor": f"step-{s.id}",
            "label": f"step:{derivation.name}:{s.id}",
            "title": s.title,
            "status": s.status,
            "status_text": STATUS_TEXT.get(s.status, s.status),
            "reason": s.reason,
            "equations": eqs,
            "citations": [{"key": k, "where": w} for k, w in step_citations(s.id, s.title)],
        })
    by_id = {s["id"]: s for s in out}
    for s, step in zip(out, derivation.steps):
        s["uses"] = [_ref(by_id[u], numbers[u]) for u in step.uses if u in by_id]
    return out


def _ref(step: dict, number: int) -> dict:
    """A cross-reference to a step: its first equation when it has one, else the step itself."""
    first = step["equations"][0] if step["equations"] else None
    return {"id": step["id"], "number": number, "title": step["title"],
            "tag": first["tag"] if first else str(number), "label": first["label"] if first else step["label"],
            "anchor": first["anchor"] if first else step["anchor"], "is_equation": first is not None}


def _references(steps: list[dict], spec_refs) -> list[dict]:
    """The page's bibliography, numbered: the spec's references, then what the steps cite; fills each citation's number."""
    keys = [k for k in spec_refs if k in REFERENCES]
    for s in steps:
        keys += [c["key"] for c in s["citations"] if c["key"] not in keys]
    number = {k: n for n, k in enumerate(keys, 1)}
    for s in steps:
        for c in s["citations"]:
            c["number"] = number[c["key"]]
    return [{"key": k, "number": number[k], "text": REFERENCES[k]["short"]} for k in keys]


def latex_fragment(derivation) -> str:
    """The derivation as a LaTeX fragment with labelled equations (``hjsym derive --format latex``)."""
    steps = _steps(derivation)
    refs = _references(steps, derivation.spec.references)
    return _render_fragment("fragment.tex.j2", derivation.name, derivation.spec.title, steps, refs)


def markdown_fragment(derivation) -> str:
    """The derivation as Markdown with tagged, anchored equations (``hjsym derive --format markdown``)."""
    steps = _steps(derivation)
    refs = _references(steps, derivation.spec.references)
    return _render_fragment("fragment.md.j2", derivation.name, derivation.spec.title, steps, refs)


def _render_fragment(template: str, name: str, title: str, steps, refs) -> str:
    html, tex = _envs()
    env = tex if template.endswith(".tex.j2") else html.overlay(autoescape=False)
    return env.get_template(template).render(name=name, title=title, steps=steps, references=refs)


# ----------------------------------------------------------------------------- page content
def _versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("hjsym", "torch", "sympy", "numpy", "matplotlib", "jinja2", "networkx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _spec_rows(derivation) -> dict:
    """The spec as written beside what hjsym parsed it to (every field), and the symbols with shapes and meanings."""
    spec = derivation.spec
    res = derivation.results
    tex = derivation.latex_of
    fields = []
    if spec.hamiltonian is not None:
        fields.append(("Hamiltonian $H(x, p)$", spec.hamiltonian, "H(p) = " + tex(res["hamiltonian"]) if "hamiltonian" in res else ""))
    fields.append((r"viscosity $\nu$", spec.viscosity, r"\nu = " + tex(res["viscosity"]) if "viscosity" in res else ""))
    if spec.diffusion:
        fields.append(("diffusion matrix", spec.diffusion, rf"{spec.diffusion} = {spec.diffusion}^\top \succ 0 \in \mathbb{{R}}^{{d \times d}}"))
    if spec.input_map:
        fields.append(("input map", spec.input_map, rf"x \mapsto {spec.input_map}\, x"))
    if spec.network is not None:
        fields.append(("network", spec.network.output, r"f_{\varepsilon} = " + tex(res["f"]) if "f" in res else ""))
    if spec.values:
        fields.append(("values", spec.values, rf"\mathbb{{E}}_{{\pi}}[{spec.values}]"))
    if spec.initial_data is not None:
        y, g = spec.initial_data.points, spec.initial_data.values
        fields.append(("initial data", f"atoms {y}, values {g}", rf"g(y) = g_j \text{{ at the atoms }} y = {y}_j,\ j = 1, \ldots, N;\ +\infty \text{{ elsewhere}}"))
    if spec.dynamics is not None:
        dyn = spec.dynamics
        written = dict(dyn.field) if isinstance(dyn.field, tuple) else {spec.state: dyn.field}
        parsed = res.get("fields") or {}
        for state, code in written.items():
            shown = parsed.get(state)
            label = "dynamics $F$" if len(written) == 1 else f"dynamics $F^{{{state}}}$"
            fields.append((label, code, ("F = " if len(written) == 1 else f"F^{{{state}}} = ") + tex(shown) if shown is not None else ""))
        for gate, code, *shown_as in dyn.definitions:
            value = (res.get("definitions") or {}).get(gate)
            name = shown_as[0] if shown_as else gate
            fields.append((f"gate ${name}$", code, f"{name} = " + tex(value) if value is not None else ""))
    control = spec.family == "control"
    symbols = [
        (spec.state, "(*batch, d)", "hidden state $s_k$ after $k$ steps" if control else "query point (the PDE's space variable)"),
        (spec.costate, "(d,)", r"costate $p_k = \partial\Phi/\partial s_k$ (backprop's gradient)" if control else "momentum (the argument of $H$)"),
        (spec.time, "scalar > 0", "continuous time of the limit $h \\to 0$ (depth or sequence position)" if control else "PDE time"),
    ]
    for sy in spec.symbols:
        axes = getattr(sy, "axes", None)
        shape = "scalar" + (" > 0" if getattr(sy, "positive", False) else "") if axes is None else "(" + ", ".join(
            {"atom": "N", "dim": "d"}.get(a, a) for a in axes) + ("," if len(axes) == 1 else "") + ")"
        symbols.append((sy.name, shape, sy.doc))
    return {"fields": fields, "symbols": symbols}


def _check_step_map(arch) -> dict:
    """The equation each declared check of the architecture tests (check name -> "step-id:k")."""
    suite = suite_of(arch)
    return {} if suite is None else {c.name: c.step for c in suite.checks if c.step}


def resolve_step(target, steps: list[dict]):
    """The step and equation a declaration ``"step-id:k"`` names (``k`` from 1, or from the end when negative), or None.

    ``"step-id"`` alone names the step's first equation.
    """
    if not target:
        return None
    by_id = {s["id"]: s for s in steps}
    sid, _, k = str(target).partition(":")
    step = by_id.get(sid)
    if step is None:
        return None
    eqs = step["equations"]
    try:
        n = int(k) if k else 1
    except ValueError:
        return None
    index = n - 1 if n > 0 else len(eqs) + n
    if not 0 <= index < len(eqs):
        return None
    return {"id": step["id"], "number": step["number"], "title": step["title"], "anchor": step["anchor"], "label": step["label"],
            "equation": eqs[index], "k": index + 1}


def _check_rows(arch, check_report, steps, seed) -> list[dict]:
    mapping = _check_step_map(arch)
    rows = []
    for c in check_report.checks:
        neg = c.details.get("negative_control")
        formula = c.details.get("formula_control")
        tight = c.details.get("tightness")
        rows.append({
            "name": c.name,
            "anchor": f"check-{c.name}",
            "title": c.title,
            "route_a": c.route_a,
            "route_b": c.route_b,
            "max_abs_err": c.max_abs_err,
            "max_rel_err": c.max_rel_err,
            "tolerance": c.tolerance,
            "error": c.error,
            "scale": c.scale,
            "margin": c.margin,
            "margin_text": _margin_text(c.margin),
            "scale_text": _scale_text(c),
            "negative_margin_text": _margin_text(neg.get("margin")) if neg else "",
            "passed": c.passed,
            "kind": c.kind,
            "criterion": c.criterion,
            "example": _example(c.example),
            "negative": neg,
            "formula": formula,
            "formula_margin_text": _margin_text(formula.get("margin")) if formula else "",
            "tightness": tight if tight and "ratio_min" in tight else None,
            "tightness_margin_text": _margin_text(tight.get("margin")) if tight else "",
            "step": resolve_step(c.step or mapping.get(c.name), steps),
            "step_declared": c.step or mapping.get(c.name) or "",
            "command": f"hjsym check {arch.ref} --only {c.name} --seed {seed} --negative-controls --formula-controls --json",
        })
    return rows


def _example(example: dict | None) -> dict | None:
    """A check's first-point values (route A, route B, difference; the point when the suite gave it), or None."""
    if not example or "route_a" not in example or "route_b" not in example:
        return None
    diff = example.get("difference", example["route_a"] - example["route_b"])
    point = example.get("point")
    text = "(" + ", ".join(f"{v:.4g}" for v in point) + ")" if point else ""
    return {"route_a": example["route_a"], "route_b": example["route_b"], "difference": diff, "point": point, "point_text": text}


def _margin_text(margin) -> str:
    """A margin (tolerance over error) for reading: ``83x``, ``exact`` (no error), ``-`` (none recorded)."""
    if not isinstance(margin, (int, float)) or margin != margin:
        return "-"
    if margin == float("inf"):
        return "exact"
    return f"{margin:.3g}x"


def _scale_text(c) -> str:
    """``k (u S + tiny)`` with the check's numbers, as LaTeX (empty for a statistic with a stated tolerance)."""
    if c.kind not in ("identity", "bound") or not isinstance(c.scale, (int, float)) or c.scale != c.scale:
        return ""
    return rf"{c.k:g}\,({_texsci(c.unit_roundoff)} \cdot {_texsci(c.scale)} + \mathrm{{tiny}})"


def _ratio(row) -> float | None:
    """error / tolerance at the point closest to its tolerance."""
    margin = row.get("margin")
    if not isinstance(margin, (int, float)) or margin != margin:
        return None
    return 0.0 if margin == float("inf") else 1 / margin


def _checks_page(arch, check_report, steps, seed) -> dict | None:
    if check_report is None:
        return None
    rows = _check_rows(arch, check_report, steps, seed)
    ratios = [(r, _ratio(r)) for r in rows]
    worst_row, worst = max(((r, q) for r, q in ratios if q is not None), key=lambda rq: rq[1], default=(None, 0.0))
    return {
        "rows": rows,
        "passed": check_report.passed,
        "n_passed": sum(bool(r["passed"]) for r in rows),
        "n": len(rows),
        "network": check_report.network,
        "dtype": check_report.dtype,
        "notes": list(check_report.notes),
        "worst_ratio": worst,
        "worst": None if worst_row is None else {"name": worst_row["name"], "error": worst_row["error"],
                                                 "tolerance": worst_row["tolerance"], "anchor": worst_row["anchor"]},
        "negatives_fail": all(r["negative"] is None or not r["negative"]["passed"] for r in rows),
        "formulas_fail": all(r["formula"] is None or not r["formula"]["passed"] for r in rows),
        "formulas_run": any(r["formula"] is not None for r in rows),
    }


def _hamiltonian_tex(derivation) -> str:
    """``H(p) = ...`` of an exact-family spec, the control Hamiltonian ``p.F`` of a control-family one (as derived)."""
    res = derivation.results
    if "hamiltonian" in res:
        return "H(p) = " + derivation.latex_of(res["hamiltonian"])
    if "control_hamiltonian" in res:
        return r"\mathcal{H} = " + derivation.latex_of(res["control_hamiltonian"])
    return ""


def _graph_links(graph: dict, steps: list[dict]) -> dict:
    """Attach to every node of a drawn derivation graph the anchor and label of its step's first equation."""
    by_id = {s["id"]: s for s in steps}
    for node in graph["nodes"]:
        ref = _ref(by_id[node["id"]], by_id[node["id"]]["number"])
        node.update({"anchor": ref["anchor"], "label": ref["label"], "tag": ref["tag"]})
    return graph


def _page(arch, derivation, check_report, figures, graph, seed) -> dict:
    """Everything a page template needs, as plain data (cached, then rendered as HTML, LaTeX, Markdown)."""
    c = derivation.classification
    steps = _steps(derivation)
    refs = _references(steps, derivation.spec.references)
    name, ref = arch.name, arch.ref  # ref: what the commands name (a spec file's path for a user's architecture)
    figures = [dict(f, number=n, anchor=f"fig-{f['stem']}", label=f"fig:{name}:{f['stem']}") for n, f in enumerate(figures, 1)]
    checks_page = _checks_page(arch, check_report, steps, seed)
    return {
        "kind": "architecture",
        "name": name,
        "title": derivation.spec.title,
        "summary": derivation.spec.summary,
        "family": derivation.spec.family,
        "classification": {"kind": c.kind, "statement": c.statement, "gap_tex": derivation.latex_of(c.gap)},
        "hamiltonian_tex": _hamiltonian_tex(derivation),
        "viscosity_tex": derivation.latex_of(derivation.results["viscosity"]) if "viscosity" in derivation.results else "",
        "spec": _spec_rows(derivation),
        "steps": steps,
        "graph": _graph_links(graph, steps),
        "functions": [
            {"name": f.name, "signature": ", ".join(f"{s['name']}: {s['shape']}" for s in f.signature), "returns": f.returns,
             "doc": f.doc, "tex": f.latex, "source": f.source}
            for f in sorted(derivation.functions.values(), key=lambda f: f.name)
        ],
        "checks": checks_page,
        "main": main_result(arch, derivation, steps, checks_page, resolve_step),
        "figures": figures,
        "seed": seed,
        "commands": {
            "derive": f"hjsym derive {ref}",
            "derive_latex": f"hjsym derive {ref} --format latex",
            "derive_markdown": f"hjsym derive {ref} --format markdown",
            "check": f"hjsym check {ref} --seed {seed} --negative-controls",
            "report": f"hjsym report {ref} --seed {seed}",
            "report_pdf": f"hjsym report {ref} --seed {seed} --format html,tex,pdf",
        },
        "versions": _versions(),
        "references": refs,
        "files": {"html": "index.html", "tex": f"{name}.tex", "pdf": f"{name}.pdf", "fragment_tex": FRAGMENT_TEX,
                  "fragment_md": FRAGMENT_MD, "derivation_json": "derivation.json", "checks_json": "checks.json",
                  "summary_json": "summary.json", "bib": "references.bib"},
    }


# ----------------------------------------------------------------------------- computing a page
@contextmanager
def _pinned_torch():
    """One torch thread and torch's own default dtype while a page is computed, whatever the caller set.

    A page then has the same bytes whether it is computed here, in a worker process or by the
    command line (a generated function called with Python scalars only takes the default dtype).
    """
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch_threads(1):
            yield
    finally:
        torch.set_default_dtype(dtype)


def _data_key(arch, seed: int) -> str:
    try:
        mpl = metadata.version("matplotlib")
    except metadata.PackageNotFoundError:
        mpl = "none"
    return f"{cache_key(arch.spec)}-seed{seed}-mpl{mpl}{'-' + arch.source_key if arch.source_key else ''}"


def _compute(ref: str, seed: int) -> dict:
    """Derive, check (with negative controls) and draw one architecture: its page data and figure files.

    A top-level function of names and numbers, so that worker processes can run it (``ref``: a name or a spec file).
    An architecture without reference networks (a spec file defining only ``SPEC``) gets its derivation and no checks.
    """
    arch = get(ref)
    name = arch.name
    with _pinned_torch():
        derivation = derive(arch.spec)
        runs = suite_of(arch) is not None and arch.networks is not None
        check_report = check(arch, seed=seed, negative_controls=True, formula_controls=True) if runs else None
        with tempfile.TemporaryDirectory(prefix="hjsym-figures-") as tmp:
            figures = [dict(f) for f in figures_for(arch, check_report, Path(tmp), seed=seed)]
            graph = derivation_graph_figure(derivation.graph(), Path(tmp), f"{name}-graph")
            files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
    files = _rename_reserved(name, files, figures)
    page = _page(arch, derivation, check_report, figures, graph, seed)
    return {
        "page": page,
        "derivation_json": json.dumps(derivation.to_dict(), indent=2, sort_keys=True) + "\n",
        "checks_json": None if check_report is None else json.dumps(check_report.to_dict(), indent=2, sort_keys=True) + "\n",
        "files": files,
    }


def _reserved(name: str) -> set[str]:
    """File names a page folder keeps for the report itself (a figure must not overwrite them)."""
    return {"index.html", "summary.json", "checks.json", "derivation.json", "references.bib", FRAGMENT_TEX, FRAGMENT_MD,
            *(f"{name}.{ext}" for ext in ("tex", "pdf", "log", "aux", "out", "toc"))}


def _rename_reserved(name: str, files: dict, figures: list[dict]) -> dict:
    """Rename figure files that would collide with the report's own files (a figure ``diagram.pdf`` on the ``diagram`` page).

    ``X.ext`` becomes ``X-figure.ext``, in ``files`` and in the figure entries that name it.
    """
    reserved = _reserved(name)
    clash = {f for f in files if f in reserved}
    if not clash:
        return files
    renamed = {}
    for f in files:
        stem, dot, ext = f.rpartition(".")
        if any(c.rpartition(".")[0] == stem for c in clash):
            renamed[f] = f"{stem}-figure{dot}{ext}"
    for fig in figures:
        for key in ("png", "pdf"):
            if fig.get(key) in renamed:
                fig[key] = renamed[fig[key]]
    return {renamed.get(f, f): blob for f, blob in files.items()}


def _jobs(jobs: int | None) -> int:
    if jobs is None:
        env = os.environ.get("HJSYM_JOBS", "")
        jobs = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"jobs must be a positive integer, got {jobs!r}", "pass e.g. jobs=2 (or set HJSYM_JOBS)")
    return jobs


def _collect(arch_list, seed: int, cache: bool, jobs: int, progress: bool) -> dict:
    """Page data of every architecture: from the cache, else computed (in parallel processes when several)."""
    from tqdm.auto import tqdm

    data, todo = {}, []
    for arch in arch_list:
        hit = _cache.load("report", _data_key(arch, seed)) if cache else None
        if isinstance(hit, dict) and "page" in hit:
            data[arch.name] = hit
        else:
            if hit is not None:
                _cache.reject("report", _data_key(arch, seed), "not page data")
            todo.append(arch)
    bar = tqdm(total=len(arch_list), desc="reports", disable=not progress, initial=len(data))

    def done(arch, result):
        data[arch.name] = result
        if cache:
            _cache.store("report", _data_key(arch, seed), result)
        bar.update(1)

    if len(todo) > 1 and jobs > 1:
        with process_pool(min(jobs, len(todo)), "spawn") as pool:  # workers die with this process, even on kill -9
            futures = [(arch, pool.submit(_compute, arch.ref, seed)) for arch in todo]
            for arch, fut in futures:
                done(arch, fut.result())
    else:
        for arch in todo:
            done(arch, _compute(arch.ref, seed))
    bar.close()
    return data


# ----------------------------------------------------------------------------- writing
def _write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


def _copy_static(out: Path) -> None:
    """Copy the bundled KaTeX, the stylesheet and the math renderer into ``out/_static``."""
    static = Path(out) / "_static"
    root = resources.files("hjsym.reports")
    katex = root / "_vendor" / "katex"
    for item in ("katex.min.js", "katex.min.css", "LICENSE"):
        _copy_if_changed(katex / item, static / "katex" / item)
    for font in sorted((katex / "fonts").iterdir(), key=lambda f: f.name):
        _copy_if_changed(font, static / "katex" / "fonts" / font.name)
    _copy_if_changed(root / "templates" / "hjsym.css", static / "hjsym.css")
    _copy_if_changed(root / "templates" / "render-math.js", static / "render-math.js")


def _copy_if_changed(src, dst: Path) -> None:
    data = src.read_bytes()
    if not dst.exists() or dst.read_bytes() != data:
        atomic_write(dst, data)


def _write_page(out: Path, data: dict, formats, html_env, tex_env) -> list[Path]:
    page = data["page"]
    folder = out / page["name"]
    files = {name: blob for name, blob in data["files"].items()}
    texts = {
        "derivation.json": data["derivation_json"],
        "summary.json": json.dumps(_summary(page), indent=2, sort_keys=True) + "\n",
        FRAGMENT_TEX: tex_env.get_template("fragment.tex.j2").render(name=page["name"], title=page["title"], steps=page["steps"],
                                                                     references=page["references"]),
        FRAGMENT_MD: html_env.overlay(autoescape=False).get_template("fragment.md.j2").render(
            name=page["name"], title=page["title"], steps=page["steps"], references=page["references"]),
        "references.bib": bibtex([r["key"] for r in page["references"]]),
    }
    if data["checks_json"] is not None:
        texts["checks.json"] = data["checks_json"]
    if "html" in formats:
        texts["index.html"] = html_env.get_template("report.html.j2").render(page=page, static="../_static")
    if "tex" in formats or "pdf" in formats:
        texts[f"{page['name']}.tex"] = tex_env.get_template("report.tex.j2").render(page=page, graph_scale=_graph_scale(page["graph"]))
    written = []
    for name, blob in files.items():
        atomic_write(folder / name, blob)
        written.append(folder / name)
    for name, text in texts.items():
        _write_text(folder / name, text)
        written.append(folder / name)
    return written


def _graph_scale(graph: dict) -> float:
    """Width of a derivation-graph figure in the PDF, as a fraction of the text width (fits the page height)."""
    return round(min(0.9, 1.2 / max(graph.get("aspect", 1.0), 1e-3)), 3)


def _summary(page) -> dict:
    """The index row of an architecture page (``summary.json``)."""
    checks = page["checks"]
    worst = (checks or {}).get("worst") or {}
    return {
        "kind": "architecture",
        "name": page["name"],
        "title": page["title"],
        "family": page["family"],
        "classification": page["classification"]["kind"],
        "statement": page["classification"]["statement"],
        "checks_passed": None if checks is None else checks["n_passed"],
        "checks_total": None if checks is None else checks["n"],
        "worst_error_over_tolerance": None if checks is None else checks["worst_ratio"],
        "worst_check": worst.get("name"),
        "worst_error": worst.get("error"),
        "worst_tolerance": worst.get("tolerance"),
        "negative_controls_fail": None if checks is None else checks["negatives_fail"],
        "formula_controls_fail": None if checks is None or not checks.get("formulas_run") else checks["formulas_fail"],
        "seed": page["seed"],
        "summary": page["summary"],
        "hamiltonian_tex": page["hamiltonian_tex"],
        "viscosity_tex": page["viscosity_tex"],
        "gap_tex": page["classification"]["gap_tex"],
        "main_result": _main_summary(page["main"]),
        "figures": [{k: f[k] for k in ("stem", "caption", "png", "pdf")} for f in page["figures"]],
        "graph": {k: page["graph"][k] for k in ("png", "pdf", "aspect", "caption", "nodes", "width_px", "height_px")},
        "commands": page["commands"],
    }


def _main_summary(main: dict) -> dict:
    """The main result as the index and the comparison page show it (equation, its anchor and label, the check's numbers)."""
    target, row = main.get("target"), main.get("row")
    eq = (target or {}).get("equation") or {}
    return {"tex": eq.get("tex", ""), "tag": eq.get("tag", ""), "anchor": eq.get("anchor", ""), "label": eq.get("label", ""),
            "title": (target or {}).get("title", ""), "check": (row or {}).get("name"), "passed": (row or {}).get("passed"),
            "error": (row or {}).get("error"), "tolerance": (row or {}).get("tolerance"), "margin_text": (row or {}).get("margin_text", "")}


# ----------------------------------------------------------------------------- the index
_VERDICT_CLASS = (("fail", "fail"), ("refut", "fail"), ("not hold", "fail"), ("does not", "fail"), ("partial", "structural"),
                  ("inconclusive", "inconclusive"), ("hold", "pass"), ("confirm", "pass"), ("support", "pass"), ("reproduc", "pass"))


def _verdict_class(verdict) -> str:
    text = str(verdict or "").lower()
    return next((cls for key, cls in _VERDICT_CLASS if key in text), "inconclusive")


def index_rows(out) -> dict:
    """Every page under ``out`` (its ``*/summary.json``), and the registered architectures not reported yet.

    Returns ``{"architectures", "experiments", "missing"}``; each row carries the links that exist
    on disk (``has_html``, ``has_tex``, ``has_pdf``, ``has_fragments``).
    """

    out = Path(out)
    order = {a.name: k for k, a in enumerate(all_architectures())}
    archs, experiments = [], []
    for path in sorted(out.glob("*/summary.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        name = data.get("name") or path.parent.name
        folder = path.parent
        data.update({
            "name": name,
            "folder": folder.name,
            "has_html": (folder / "index.html").exists(),
            "has_tex": (folder / f"{name}.tex").exists(),
            "has_pdf": (folder / f"{name}.pdf").exists(),
            "has_fragments": (folder / FRAGMENT_TEX).exists() and (folder / FRAGMENT_MD).exists(),
        })
        for key, default in (("title", name), ("family", "-"), ("classification", "-"), ("statement", ""), ("figures", []),
                             ("graph", None), ("checks_passed", None), ("checks_total", None), ("worst_check", None),
                             ("worst_error", None), ("worst_tolerance", None), ("worst_error_over_tolerance", None),
                             ("negative_controls_fail", None), ("claim", ""), ("main_result", None), ("hamiltonian_tex", ""),
                             ("viscosity_tex", ""), ("gap_tex", ""), ("summary", ""), ("quick", False), ("claim_tex", "")):
            data.setdefault(key, default)  # a page may omit any field
        if data.get("kind") == "experiment":
            data["verdict"] = data.get("classification") or data.get("verdict") or "-"
            data["verdict_class"] = _verdict_class(data["verdict"])
            data["mode"] = data.get("mode") or ("quick" if data.get("quick") else "full")
            experiments.append(data)
        else:
            data.setdefault("kind", "architecture")
            archs.append(data)
    reported = {r["name"] for r in archs}
    missing = [{"name": a.name, "title": a.spec.title, "family": a.spec.family} for a in all_architectures() if a.name not in reported]
    archs.sort(key=lambda r: (order.get(r["name"], 10**6), r["name"]))
    experiments.sort(key=lambda r: r["name"])
    return {"architectures": archs, "experiments": experiments, "missing": missing}


def _diagram(rows: list[dict]) -> dict | None:
    """The commutative diagram to show on the index: the ``diagram`` page's figure named like it, if reported."""
    for r in sorted(rows, key=lambda r: r["name"] != "diagram"):
        for f in r.get("figures") or []:
            if r["name"] == "diagram" or "diagram" in f.get("stem", ""):
                return {"page": r["folder"], "title": r.get("title", r["name"]), **f}
    return None


def _index_context(out: Path) -> dict:
    rows = index_rows(out)
    archs = rows["architectures"]
    checked = [r for r in archs if r.get("checks_total")]
    return {
        **rows,
        "diagram": _diagram(archs),
        "diagram_registered": any(m["name"] == "diagram" for m in rows["missing"]) or any(r["name"] == "diagram" for r in archs),
        "graphs": [r for r in archs if r.get("graph")],
        "totals": {
            "architectures": len(archs),
            "experiments": len(rows["experiments"]),
            "checks_passed": sum(r.get("checks_passed") or 0 for r in checked),
            "checks_total": sum(r.get("checks_total") or 0 for r in checked),
            "quick": sum(1 for r in rows["experiments"] if r.get("mode") == "quick"),
        },
        "has_combined_pdf": (out / "hjsym.pdf").exists(),
    }


def write_index(out, formats=("html",)) -> list[Path]:
    """Write ``out/index.html`` and ``out/comparison.html`` (and with ``pdf`` the combined ``out/hjsym.tex`` and ``hjsym.pdf``) from the pages under ``out``."""
    out = Path(out)
    html_env, tex_env = _envs()
    written = []
    if "pdf" in formats:
        written += _write_combined(out, tex_env)
    if "html" in formats:
        _copy_static(out)
        context = _index_context(out)
        index = out / "index.html"
        _write_text(index, html_env.get_template("index.html.j2").render(static="_static", index=context))
        written.append(index)
        if context["architectures"]:
            comparison = out / "comparison.html"
            _write_text(comparison, html_env.get_template("comparison.html.j2").render(static="_static", index=context))
            written.append(comparison)
    return written


def _write_combined(out: Path, tex_env) -> list[Path]:
    """The combined document: overview, diagram, derivation graphs, then every page's PDF (compiled when missing or stale)."""
    context = _index_context(out)
    pages = context["architectures"] + context["experiments"]
    written = []
    for r in pages:  # pages whose PDF is missing or older than their source (an experiment's, say); a failure skips the page
        tex, pdf = out / r["folder"] / f"{r['name']}.tex", out / r["folder"] / f"{r['name']}.pdf"
        if tex.exists() and (not pdf.exists() or pdf.stat().st_mtime < tex.stat().st_mtime):
            try:
                written.append(compile_pdf(tex))
            except (RuntimeError, InputError) as exc:
                r["pdf_error"] = str(exc).splitlines()[0]
                warnings.warn(f"{tex}: not in the combined document: {r['pdf_error']}; 'hjsym verify {out}' shows the details",
                              stacklevel=2)
    for r in pages:
        pdf = out / r["folder"] / f"{r['name']}.pdf"
        r["has_pdf"] = pdf.exists() and "pdf_error" not in r
        aux = pdf.with_suffix(".aux")
        r["label_pages"] = label_pages(aux.read_text(errors="replace")) if aux.exists() else {}
        for node in (r.get("graph") or {}).get("nodes", []):
            node["page"] = r["label_pages"].get(node.get("label") or "", 1)
        if r.get("graph"):
            r["graph_scale"] = _graph_scale(r["graph"])
    tex_path = out / "hjsym.tex"
    _write_text(tex_path, tex_env.get_template("index.tex.j2").render(**context))
    written += [tex_path, compile_pdf(tex_path)]
    return written


# ----------------------------------------------------------------------------- entry point
def _resolve_archs(archs):
    if isinstance(archs, str):
        archs = [archs]
    archs = list(archs) or ["all"]
    if "all" in archs:
        return all_architectures()
    return [get(a) for a in archs]


def report(archs=("all",), out="reports", formats=("html", "tex"), *, seed: int = 0, progress: bool = False,
           jobs: int | None = None, cache: bool = True) -> list[Path]:
    """Derive, check and write the report of each architecture, then the index; returns the files written.

    Args:
        archs: architecture names, or ``"all"``.
        out: output folder (created if needed).
        formats: any of ``"html"``, ``"tex"``, ``"pdf"`` (``pdf`` compiles every page's ``.tex``
            and the combined ``hjsym.pdf`` with pdflatex).
        seed: seeds the reference networks of the checks.
        progress: show a progress bar.
        jobs: worker processes for pages not in the cache (default: ``$HJSYM_JOBS`` or the CPU count).
        cache: reuse (and store) derived, checked and drawn pages keyed by spec, seed and versions.
    """
    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise InputError(f"unknown report format(s) {', '.join(bad) or '(none)'}", f"use a comma-separated subset of {','.join(FORMATS)}")
    if "pdf" in formats:
        require_tex_engine()  # say how to install one before any work
    validate_seed(seed)
    out = Path(out)
    arch_list = _resolve_archs(archs)
    _cache.check_writable(out)  # a folder that cannot be written fails now, not after the pages are computed
    data = _collect(arch_list, seed, cache, _jobs(jobs), progress)
    html_env, tex_env = _envs()
    written: list[Path] = []
    for arch in arch_list:
        written += _write_page(out, data[arch.name], formats, html_env, tex_env)
    if "pdf" in formats:
        written += compile_many([out / a.name / f"{a.name}.tex" for a in arch_list], jobs=_jobs(jobs))
    written += write_index(out, formats)
    return written
