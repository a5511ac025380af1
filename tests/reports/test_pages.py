"""Reports as a product: every page written, labelled, cross-referenced, compiled and opened in a browser.

One session fixture reports every registered architecture (HTML, LaTeX and, when pdflatex is
installed, PDF and the combined document); the tests read what it wrote. The LaTeX and browser
checks run :func:`hjsym.verify.reports.verify_reports` on it, which keeps a screenshot of every page
(and every compiled PDF and log) under ``test-artifacts/reports/`` as the test artefact.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import require

import hjsym
from hjsym.checks.api import suite_of
from hjsym.spec.registry import all_architectures

ARTIFACTS = Path(os.environ.get("HJSYM_ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "test-artifacts"))
HAVE_TEX = shutil.which("pdflatex") is not None


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    formats = ("html", "tex", "pdf") if HAVE_TEX else ("html", "tex")
    hjsym.report("all", out=out, formats=formats)
    return out


@pytest.fixture(scope="session")
def lse_page(report_dir):
    return (report_dir / "lse" / "index.html").read_text()


def _summary(report_dir, name):
    return json.loads((report_dir / name / "summary.json").read_text())


# ----------------------------------------------------------------------------- files and the index
def test_every_page_has_its_files(report_dir):
    for arch in all_architectures():
        folder = report_dir / arch.name
        for name in ("index.html", f"{arch.name}.tex", "derivation.json", "summary.json", "references.bib", "derivation.tex",
                     "derivation.md", f"{arch.name}-graph.png", f"{arch.name}-graph.pdf"):
            assert (folder / name).is_file(), f"{arch.name}: {name}"
        summary = _summary(report_dir, arch.name)
        assert summary["kind"] == "architecture" and summary["name"] == arch.name
        for fig in summary["figures"]:  # every figure as PNG and PDF
            assert (folder / fig["png"]).is_file() and (folder / fig["pdf"]).is_file(), fig
            assert fig["png"].endswith(".png") and fig["pdf"].endswith(".pdf")
        if suite_of(arch) is not None:
            assert (folder / "checks.json").is_file()
    assert (report_dir / "_static" / "katex" / "katex.min.js").is_file()
    assert not list(report_dir.rglob("*.tmp"))


def test_index_lists_everything_the_library_can_derive_and_check(report_dir):
    html = (report_dir / "index.html").read_text()
    for arch in all_architectures():
        row = re.search(rf'<tr id="arch-{re.escape(arch.name)}"[^>]*>(.*?)</tr>', html, re.S)
        assert row, arch.name
        assert "not reported" not in row.group(1)
        assert f'href="{arch.name}/index.html"' in row.group(1)
        summary = _summary(report_dir, arch.name)
        if suite_of(arch) is not None:
            assert f"{summary['checks_passed']}/{summary['checks_total']}" in row.group(1)
            assert summary["worst_check"] in row.group(1)
        assert f'id="graph-{arch.name}"' in html and f'href="{arch.name}/index.html#fig-graph"' in html  # a link to its graph
        if summary["main_result"]["tex"]:
            assert f'href="{arch.name}/index.html#{summary["main_result"]["anchor"]}"' in row.group(1)  # its main result
    comparison = (report_dir / "comparison.html").read_text()
    assert all(f'id="compare-{a.name}"' in comparison for a in all_architectures())


def test_index_is_generic_over_experiments_and_the_diagram(tmp_path):
    """Experiment pages (``"kind": "experiment"``) and the diagram's figure are picked up from summary.json alone."""
    from hjsym.reports.pages import write_index

    exp = tmp_path / "quadrature"
    exp.mkdir()
    (exp / "summary.json").write_text(json.dumps({"kind": "experiment", "name": "quadrature", "title": "Width rate",
                                                  "classification": "holds", "claim": "error ~ N^(-1/d)"}))
    (exp / "index.html").write_text("<!DOCTYPE html><title>q</title>")
    dia = tmp_path / "diagram"
    dia.mkdir()
    (dia / "summary.json").write_text(json.dumps({"kind": "architecture", "name": "diagram", "title": "The commutative diagram",
                                                  "classification": "exact", "figures": [
                                                      {"stem": "diagram", "caption": "The square.", "png": "diagram.png", "pdf": "diagram.pdf"}]}))
    for name in ("diagram.png", "diagram.pdf", "index.html"):
        (dia / name).write_bytes(b"x")
    write_index(tmp_path, ("html",))
    html = (tmp_path / "index.html").read_text()
    exp_row = re.search(r'<tr id="exp-quadrature">(.*?)</tr>', html, re.S).group(1)
    assert "holds" in exp_row and 'badge pass' in exp_row and "error ~ N^(-1/d)" in exp_row
    assert '<img src="diagram/diagram.png"' in html
    assert 'id="arch-lse" class="missing"' in html  # registered but not in this folder: listed, with the command


# ----------------------------------------------------------------------------- equations a reader can follow
def test_equations_have_the_same_stable_labels_in_html_latex_and_markdown(report_dir, lse_page, lse_derivation):
    tex = (report_dir / "lse" / "lse.tex").read_text()
    frag_tex = (report_dir / "lse" / "derivation.tex").read_text()
    frag_md = (report_dir / "lse" / "derivation.md").read_text()
    assert lse_page.count('class="tex display"') >= sum(len(s.equations) for s in lse_derivation.steps)
    for n, step in enumerate(lse_derivation.steps, 1):
        assert f'id="step-{step.id}"' in lse_page
        for k in range(1, len(step.equations) + 1):
            label = f"eq:lse:{step.id}:{k}"
            anchor = label.replace(":", "-")
            assert f'id="{anchor}"' in lse_page and f"\\tag{{{n}.{k}}}" in lse_page
            assert f"\\label{{{label}}}" in tex and f"\\label{{{label}}}" in frag_tex
            assert f'<a id="{anchor}"></a>' in frag_md and f"\\tag{{{n}.{k}}}" in frag_md


def test_cross_references_point_at_equations(report_dir, lse_page, lse_derivation):
    tex = (report_dir / "lse" / "lse.tex").read_text()
    step = lse_derivation.step("identity")  # uses the parameter map
    used = lse_derivation.step(step.uses[0])
    assert f'href="#eq-lse-{used.id}-1">({lse_derivation.number(used.id)}.1)</a>' in lse_page
    assert f"\\eqref{{eq:lse:{used.id}:1}}" in tex


def test_each_check_shows_derived_expression_both_routes_difference_and_command(report_dir, lse_page):
    checks = json.loads((report_dir / "lse" / "checks.json").read_text())
    for c in checks["checks"]:
        card = re.search(rf'<div class="check-card" id="check-{c["name"]}-detail">(.*?)</div>', lse_page, re.S)
        assert card, c["name"]
        body = card.group(1)
        assert re.search(r'href="#eq-lse-[\w-]+-\d+"', body), c["name"]  # the derived equation, linked
        assert repr(float(c["example"]["route_b"])) in body and repr(float(c["example"]["route_a"])) in body
        assert "A − B" in body
        assert f"hjsym check lse --only {c['name']} --seed 0 --negative-controls --formula-controls --json" in body
        assert "Formula control:" in body and "the check fails, as it must" in body
    tex = (report_dir / "lse" / "lse.tex").read_text()
    assert tex.count("\\item \\emph{evaluated at the network's weights (route B)}") == len(checks["checks"])


def test_steps_cite_the_work_they_rely_on(report_dir, lse_page):
    section = re.search(r'<section class="step" id="step-hopf-cole-ansatz">(.*?)</section>', lse_page, re.S).group(1)
    assert 'href="#ref-hopf1950"' in section and 'href="#ref-evans2010"' in section and "Sec. 4.4.1" in section
    bib = (report_dir / "lse" / "references.bib").read_text()
    for key in ("hjdl2026", "hopf1950", "cole1951", "evans2010", "litvinov2007"):
        assert f"{{{key}," in bib
    tex = (report_dir / "lse" / "lse.tex").read_text()
    assert "\\cite[Sec. 4.4.1]{evans2010}" in tex and "\\bibitem{hopf1950}" in tex


def test_derive_exports_latex_and_markdown_fragments(capsys):
    from hjsym._cli import main

    assert main(["derive", "lse", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("<!-- hjsym derivation: lse") and '<a id="eq-lse-identity-1"></a>' in md and "\\tag{18.1}" in md
    assert main(["derive", "lse", "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert "\\label{eq:lse:identity:1}" in tex and "\\begin{equation}" in tex


# ----------------------------------------------------------------------------- determinism and cache
def test_two_runs_give_identical_bytes(report_dir, tmp_path):
    """A second run by the command line, in another process, checking and drawing afresh, writes the same bytes."""
    import subprocess
    import sys

    formats = "html,tex,pdf" if HAVE_TEX else "html,tex"
    proc = subprocess.run([sys.executable, "-m", "hjsym", "report", "lse", "--out", str(tmp_path / "again"), "--format", formats,
                           "--no-cache"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    left, right = report_dir / "lse", tmp_path / "again" / "lse"
    names = sorted(p.name for p in left.iterdir() if p.suffix not in (".log", ".aux"))
    assert names == sorted(p.name for p in right.iterdir() if p.suffix not in (".log", ".aux"))
    match, mismatch, errors = filecmp.cmpfiles(left, right, names, shallow=False)
    assert not mismatch and not errors, mismatch


def test_a_second_report_comes_from_the_cache(report_dir, tmp_path, monkeypatch):
    import hjsym.reports.pages as rep

    def boom(*a, **k):
        raise AssertionError("recomputed a cached page")

    monkeypatch.setattr(rep, "_compute", boom)
    hjsym.report(["lse"], out=tmp_path, formats=("html",))
    assert (tmp_path / "lse" / "index.html").read_bytes() == (report_dir / "lse" / "index.html").read_bytes()


# ----------------------------------------------------------------------------- LaTeX and the browser
@pytest.mark.tex
def test_every_latex_file_compiles_without_errors_or_cut_off_equations(report_dir):
    require("pdflatex", "HJSYM_REQUIRE_TEX")
    from hjsym.verify.reports import verify_reports

    result = verify_reports(report_dir, ARTIFACTS / "reports", browser=False)
    assert result.ok, result.text()
    names = set(result.tex)
    for arch in all_architectures():
        assert {f"{arch.name}/{arch.name}.tex", f"{arch.name}/derivation.tex"} <= names
    assert "hjsym.tex" in names and (report_dir / "hjsym.pdf").read_bytes().startswith(b"%PDF")
    assert result.summary()["overfull_other"] == 0, result.text()


# One architecture of each family (and the attention page, which has the most formulas): the
# default run opens these; the slow run and `hjsym verify` in CI open every page.
SAMPLE = ("lse", "attention", "gru", "mean-field")


def _open_pages(report_dir, names):
    """Open the index, the comparison and the pages of ``names`` in headless Chromium; assert what a reader needs."""
    from hjsym.verify.reports import verify_reports

    every = names is None
    names = [a.name for a in all_architectures()] if every else names
    pages = {"index.html", "comparison.html"} | {f"{n}/index.html" for n in names}
    result = verify_reports(report_dir, ARTIFACTS / "reports", tex=False, pages=None if every else sorted(pages))
    assert result.ok, result.text()
    assert set(result.pages) == pages | {f"{p}@420px" for p in pages}  # every page at desktop width and on a phone
    for rel in pages:  # at 420 px nothing makes the page scroll sideways (tables and formulas scroll in their boxes)
        narrow = result.pages[f"{rel}@420px"]
        assert narrow["viewport"] == 420 and narrow["size"][0] <= 421, (rel, narrow["size"])
        desktop = Path(result.pages[rel]["screenshot"])
        assert desktop.stat().st_size > 0  # to the end of the page: tiles of 8,000 px stacked
    for rel, info in result.pages.items():
        assert info["requests"] > 0 and not info["external_requests"]
        assert Path(info["screenshot"]).is_file(), rel
    assert result.pages["lse/index.html"]["formulas"] > 50 and result.pages["lse/index.html"]["katex_fonts_loaded"] > 0


@pytest.mark.browser
def test_sampled_pages_render_in_headless_chromium_offline(report_dir):
    require("chromium", "HJSYM_REQUIRE_BROWSER")
    _open_pages(report_dir, SAMPLE)


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_renders_in_headless_chromium_offline(report_dir):
    require("chromium", "HJSYM_REQUIRE_BROWSER")
    _open_pages(report_dir, None)


@pytest.mark.browser
def test_the_browser_check_catches_what_it_must(tmp_path):
    """Negative control of the browser harness: a page with every kind of fault fails with each named."""
    require("chromium", "HJSYM_REQUIRE_BROWSER")
    from hjsym.reports.pages import _copy_static
    from hjsym.verify.browser import Chromium

    _copy_static(tmp_path)
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="_static/katex/katex.min.css"></head><body>'
        '<span class="tex display">\\frac{1}{</span><span class="tex">x^2</span>'
        '<img src="http://example.invalid/pixel.png"><img src="missing.png"><a href="#nowhere">x</a>'
        '<script>console.error("boom")</script>'
        '<script src="_static/katex/katex.min.js"></script><script src="_static/render-math.js"></script></body></html>')
    with Chromium() as chrome:
        r = chrome.inspect(page.as_uri())
    text = "\n".join(r.problems)
    assert any("example.invalid" in u for u in r.external_requests), text
    assert any("boom" in e for e in r.console_errors) and any("formula failed to render" in e for e in r.console_errors), text
    assert r.unrendered and r.broken_images and r.dangling_anchors == ["nowhere"], text


@pytest.mark.tex
def test_the_latex_check_catches_cut_off_equations_and_broken_references(tmp_path):
    require("pdflatex", "HJSYM_REQUIRE_TEX")
    from hjsym.reports.texbuild import compile_pdf, latex_problems

    wide = "+".join("abcdefghijklmnopqrstuvwxyz") * 2
    (tmp_path / "bad.tex").write_text("\\documentclass{article}\\usepackage{amsmath}\\begin{document}\n"
                                      f"\\begin{{equation}}\\label{{eq:a}} {wide} \\end{{equation}}\nSee \\eqref{{eq:missing}}.\n"
                                      "\\end{document}\n")
    p = latex_problems(compile_pdf(tmp_path / "bad.tex").with_suffix(".log").read_text())
    assert p.overfull_display and p.undefined_references == ["eq:missing"] and len(p.failures) == 2


def test_pdf_without_tex_engine_says_how_to_install(monkeypatch, tmp_path):
    import shutil as _shutil

    monkeypatch.setattr(_shutil, "which", lambda name: None)
    with pytest.raises(hjsym.InputError, match="apt-get install texlive"):
        hjsym.report(["lse"], out=tmp_path, formats=("pdf",))
    assert not any(Path(tmp_path).iterdir())


# ----------------------------------------------------------------------------- figures
def test_figures_refuse_unlabelled_axes(tmp_path):
    from hjsym.reports.figures.common import figure, save

    fig, ax = figure()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("$\\varepsilon$")
    with pytest.raises(ValueError, match="no y label"):
        save(fig, tmp_path, "bad")
    assert not list(tmp_path.iterdir())


def test_derivation_graph_boxes_are_inside_the_figure_and_apart(report_dir, lse_derivation):
    graph = _summary(report_dir, "lse")["graph"]
    boxes = {n["id"]: n["box"] for n in graph["nodes"]}
    assert set(boxes) == {s.id for s in lse_derivation.steps}
    for x0, y0, x1, y1 in boxes.values():
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    items = list(boxes.values())
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_a_page_without_checks_or_figures_renders_and_compiles(tmp_path, lse_derivation):
    """Pages are data-driven: an architecture with no suite and no figures still gets a full page."""
    import hjsym.reports.pages as rep
    from hjsym.reports.figures.common import derivation_graph_figure
    from hjsym.spec.registry import get

    graph = derivation_graph_figure(lse_derivation.graph(), tmp_path, "lse-graph")
    page = rep._page(get("lse"), lse_derivation, None, [], graph, 0)
    assert rep._summary(page)["checks_total"] is None
    html_env, tex_env = rep._envs()
    html = html_env.get_template("report.html.j2").render(page=page, static="../_static")
    assert 'id="checks"' not in html and 'id="fig-graph"' in html and html.count('class="node-link"') == len(lse_derivation.steps)
    (tmp_path / "lse.tex").write_text(tex_env.get_template("report.tex.j2").render(page=page, graph_scale=0.8))
    if HAVE_TEX:
        from hjsym.reports.texbuild import compile_pdf, latex_problems

        log = compile_pdf(tmp_path / "lse.tex").with_suffix(".log").read_text()
        assert not latex_problems(log).failures


@pytest.mark.slow
def test_pages_computed_in_worker_processes_match_the_in_process_ones(report_dir):
    """Uncached pages go to spawned workers (one torch thread each): same bytes as computed in-process."""
    import hjsym.reports.pages as rep
    from hjsym.spec.registry import get

    lse = get("lse")
    data = rep._collect([lse, lse], seed=0, cache=False, jobs=2, progress=False)["lse"]  # two tasks: the pool path
    for name, blob in data["files"].items():
        assert blob == (report_dir / "lse" / name).read_bytes(), name
    assert data["checks_json"] == (report_dir / "lse" / "checks.json").read_text()


def test_a_figure_named_like_the_report_is_renamed():
    """A figure 'diagram.pdf' on the 'diagram' page would be overwritten by the compiled report: it is renamed."""
    from hjsym.reports.pages import _rename_reserved

    figures = [{"stem": "diagram", "caption": "c", "png": "diagram.png", "pdf": "diagram.pdf"}]
    files = _rename_reserved("diagram", {"diagram.png": b"p", "diagram.pdf": b"d", "other.pdf": b"o"}, figures)
    assert files == {"diagram-figure.png": b"p", "diagram-figure.pdf": b"d", "other.pdf": b"o"}
    assert figures[0]["png"] == "diagram-figure.png" and figures[0]["pdf"] == "diagram-figure.pdf"


def test_a_document_that_includes_its_own_pdf_name_is_refused(tmp_path):
    """Compiling NAME.tex writes NAME.pdf: a figure of that name would be overwritten (and read half-written)."""
    from hjsym.reports.texbuild import compile_pdf

    (tmp_path / "page.tex").write_text("\\documentclass{article}\\usepackage{graphicx}\\begin{document}"
                                       "\\includegraphics[width=3cm]{page.pdf}\\end{document}\n")
    with pytest.raises(hjsym.InputError, match="its own compiled PDF"):
        compile_pdf(tmp_path / "page.tex")


@pytest.mark.browser
def test_verify_refuses_a_page_that_is_not_there(report_dir):
    require("chromium", "HJSYM_REQUIRE_BROWSER")
    from hjsym._errors import InputError
    from hjsym.verify.reports import verify_reports

    with pytest.raises(InputError, match="no page nowhere/index.html"):
        verify_reports(report_dir, tex=False, pages=["index.html", "nowhere/index.html"])
