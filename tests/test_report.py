"""Reports: files, offline assets, identical bytes on a second run, LaTeX compiles, HTML renders."""

import filecmp
import re
import subprocess
from pathlib import Path

import pytest
from conftest import require

import hjsym
from hjsym._report import display_tex, overfull_boxes


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    hjsym.report(["lse"], out=out, formats=("html", "tex"))
    return out


def test_files_are_written(report_dir):
    folder = report_dir / "lse"
    for name in ("index.html", "lse.tex", "checks.json", "derivation.json", "summary.json", "references.bib",
                 "lse-slice.png", "lse-slice.pdf", "lse-tropical.png", "lse-residual.png"):
        assert (folder / name).is_file(), name
    assert (report_dir / "index.html").is_file()
    assert (report_dir / "_static" / "katex" / "katex.min.js").is_file()
    assert not list(report_dir.rglob("*.tmp"))


def test_html_uses_only_local_assets(report_dir):
    for page in report_dir.rglob("*.html"):
        html = page.read_text()
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not re.match(r"[a-z]+://", ref), f"{page.name} refers to {ref}"
            if not ref.startswith("#"):
                assert (page.parent / ref).exists(), f"{page.name}: missing {ref}"


def test_html_contains_every_step_and_check(report_dir, lse_derivation):
    html = (report_dir / "lse" / "index.html").read_text()
    for s in lse_derivation.steps:
        assert f'id="step-{s.id}"' in html
    for name in ("identity", "pde_residual", "hessian", "attribution"):
        assert f'id="check-{name}"' in html
    assert html.count('class="tex display"') == sum(len(s.equations) for s in lse_derivation.steps)


def test_two_runs_give_identical_bytes(report_dir, tmp_path):
    hjsym.report(["lse"], out=tmp_path, formats=("html", "tex"))
    cmp = filecmp.dircmp(report_dir / "lse", tmp_path / "lse")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only, cmp.diff_files
    mismatch = filecmp.cmpfiles(report_dir / "lse", tmp_path / "lse", cmp.common_files, shallow=False)[1]
    assert not mismatch


def test_long_equations_are_broken_into_lines(lse_derivation):
    step = lse_derivation.step("derivatives")
    tex = display_tex(lse_derivation, step.equations[2], max_line=60)
    assert tex.startswith(r"\begin{aligned}") and r"\\" in tex


@pytest.mark.tex
def test_latex_compiles_with_pdflatex(report_dir):
    require("pdflatex", "HJSYM_REQUIRE_TEX")
    from hjsym._report import compile_pdf

    pdf = compile_pdf(report_dir / "lse" / "lse.tex")
    assert pdf.read_bytes().startswith(b"%PDF")
    log = pdf.with_suffix(".log").read_text(errors="replace")
    assert "! " not in log
    boxes = overfull_boxes(log)
    assert not [b for b in boxes if float(re.search(r"\(([\d.]+)pt", b).group(1)) > 30], boxes


@pytest.mark.browser
def test_html_renders_every_formula_in_headless_chromium(report_dir, tmp_path):
    exe = require("chromium", "HJSYM_REQUIRE_BROWSER")
    page = report_dir / "lse" / "index.html"
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    dom = proc.stdout
    assert 'data-math="done"' in dom, proc.stderr[-2000:]
    assert "tex-error" not in dom.split("</style>")[-1].replace(".tex-error", "")
    n_formulas = len(re.findall(r'class="tex[ "]', (report_dir / "lse" / "index.html").read_text()))
    assert dom.count('class="katex"') + dom.count('class="katex-display"') >= n_formulas


def test_pdf_without_tex_engine_says_how_to_install(monkeypatch, tmp_path):
    import shutil as _shutil

    monkeypatch.setattr(_shutil, "which", lambda name: None)
    with pytest.raises(hjsym.InputError, match="apt-get install texlive"):
        hjsym.report(["lse"], out=tmp_path, formats=("pdf",))
    assert not any(Path(tmp_path).iterdir())
