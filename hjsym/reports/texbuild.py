"""Compiling LaTeX with a real TeX engine, reproducibly, and reading what it said.

:func:`compile_pdf` runs ``pdflatex`` in a private temporary folder until the cross-references
settle (at most four passes; what latexmk would do, without needing it), with
``SOURCE_DATE_EPOCH``/``FORCE_SOURCE_DATE`` set so that the PDF and the log have the same bytes
on every run; it then moves ``NAME.pdf``, ``NAME.log`` and ``NAME.aux`` beside the source.
:func:`latex_problems` reads a log: errors, overfull display equations (the ones that are cut
off at the margin), other overfull boxes, undefined or multiply defined references.
:func:`label_pages` reads the page of every ``\\label`` from an ``.aux`` file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .._cache import atomic_write
from .._errors import InputError

__all__ = ["compile_pdf", "compile_many", "tex_engine", "require_tex_engine", "latex_problems", "LatexProblems",
           "overfull_boxes", "label_pages", "INSTALL_TEX"]

INSTALL_TEX = ("install one (Debian/Ubuntu: apt-get install texlive-latex-recommended texlive-latex-extra "
               "texlive-fonts-recommended lmodern; elsewhere TeX Live or MiKTeX) or drop 'pdf' from --format")
MAX_PASSES = 4
#: Fixed date for the engine (the PDFs omit dates; the log banner shows this one).
SOURCE_DATE_EPOCH = "0"


def tex_engine() -> str | None:
    """Path of ``pdflatex``, or None."""
    return shutil.which("pdflatex")


def require_tex_engine() -> str:
    """Path of ``pdflatex``; an :class:`InputError` saying how to install one when there is none."""
    exe = tex_engine()
    if exe is None:
        raise InputError("no TeX engine: pdflatex is not on PATH", INSTALL_TEX)
    return exe


def compile_pdf(tex_path: Path, dest: Path | None = None) -> Path:
    """Compile ``tex_path`` with pdflatex (rerun until references settle) and return the PDF's path.

    Writes ``NAME.pdf``, ``NAME.log`` and ``NAME.aux`` beside the source, or into ``dest``
    (atomically). Relative paths in the source (figures, included PDFs) are read from the
    source's folder. Raises ``RuntimeError`` with the end of the log when pdflatex stops on an error.
    """
    tex_path = Path(tex_path).resolve()
    if _includes_own_pdf(tex_path):  # pdflatex would read its half-written output as the figure
        raise InputError(f"{tex_path.name} includes a figure {tex_path.stem}.pdf, the name of its own compiled PDF: compiling "
                         "would overwrite the figure", f"give that figure another file name than {tex_path.stem}.pdf")
    exe = require_tex_engine()
    base = (Path(dest) if dest is not None else tex_path.parent) / tex_path.stem
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "FORCE_SOURCE_DATE": "1"}
    with tempfile.TemporaryDirectory(prefix="hjsym-tex-") as tmp:
        for _ in range(MAX_PASSES):
            proc = subprocess.run(
                [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "-file-line-error",
                 f"-output-directory={tmp}", tex_path.name],
                cwd=tex_path.parent, capture_output=True, text=True, errors="replace", timeout=600, env=env,
            )
            log_path = Path(tmp) / (tex_path.stem + ".log")
            log = log_path.read_text(errors="replace") if log_path.exists() else proc.stdout
            if proc.returncode != 0:
                tail = "\n".join(log.splitlines()[-30:])
                raise RuntimeError(f"pdflatex failed on {tex_path}:\n{tail}")
            if "Rerun to get" not in log and "Label(s) may have changed" not in log:
                break
        log = log.replace(tmp, ".")  # the private folder's name would make the log differ run to run
        target = base.with_suffix(".pdf")
        atomic_write(target, (Path(tmp) / (tex_path.stem + ".pdf")).read_bytes())
        atomic_write(base.with_suffix(".log"), log.encode())
        aux = Path(tmp) / (tex_path.stem + ".aux")
        if aux.exists():
            atomic_write(base.with_suffix(".aux"), aux.read_bytes())
    return target


def _includes_own_pdf(tex_path: Path) -> bool:
    """Whether the document includes a graphic with its own name (``\\includegraphics{NAME.pdf}`` in ``NAME.tex``)."""
    text = tex_path.read_text(errors="replace")
    own = re.escape(tex_path.stem)
    return re.search(r"\\includegraphics\s*(?:\[[^\]]*\])?\s*\{\s*(?:\./)?" + own + r"(?:\.pdf)?\s*\}", text) is not None


def compile_many(paths, jobs: int | None = None, dests=None) -> list[Path]:
    """Compile several ``.tex`` files, ``jobs`` at a time (default: the CPU count); returns their PDFs in order.

    ``dests`` optionally gives each one's output folder (see :func:`compile_pdf`).
    """
    paths = [Path(p) for p in paths]
    dests = list(dests) if dests is not None else [None] * len(paths)
    if not paths:
        return []
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    if jobs == 1:
        return [compile_pdf(p, d) for p, d in zip(paths, dests)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(compile_pdf, paths, dests))


@dataclass
class LatexProblems:
    """What a pdflatex log reports; :attr:`failures` are the ones a report must not have."""

    errors: list = field(default_factory=list)
    overfull_display: list = field(default_factory=list)
    overfull_other: list = field(default_factory=list)
    undefined_references: list = field(default_factory=list)
    multiply_defined: list = field(default_factory=list)
    warnings: int = 0
    warning_texts: list = field(default_factory=list)  # each warning in full (its continuation lines joined)

    @property
    def failures(self) -> list[str]:
        return ([f"LaTeX error: {e}" for e in self.errors]
                + [f"overfull display equation (cut off at the margin): {o}" for o in self.overfull_display]
                + [f"undefined reference: {u}" for u in self.undefined_references]
                + [f"multiply defined label: {m}" for m in self.multiply_defined])


def overfull_boxes(log_text: str) -> list[str]:
    """The 'Overfull \\hbox' warnings of a pdflatex log."""
    return re.findall(r"Overfull \\hbox \([^)]*\)[^\n]*", log_text)


def latex_problems(log_text: str, min_overfull_pt: float = 1.0) -> LatexProblems:
    """Read a pdflatex log.

    A box that is overfull by more than ``min_overfull_pt`` *detected at a line* (rather than in
    a paragraph or an alignment) is a display: in hjsym's documents, an equation running into the
    margin. Errors are ``! ...`` lines and ``file:line: ...`` lines of ``-file-line-error``.
    """
    p = LatexProblems()
    for line in log_text.splitlines():
        if line.startswith("! ") or re.match(r"^[^\s:]+\.tex:\d+: ", line):
            p.errors.append(line.strip())
    for box in overfull_boxes(log_text):
        size = float(re.search(r"\(([\d.]+)pt", box).group(1))
        if size <= min_overfull_pt:
            continue
        (p.overfull_display if "detected at line" in box else p.overfull_other).append(box)
    p.undefined_references = re.findall(r"LaTeX Warning: (?:Reference|Citation) `([^']+)' on page \S+ undefined", log_text)
    p.multiply_defined = re.findall(r"LaTeX Warning: Label `([^']+)' multiply defined", log_text)
    p.warning_texts = _warning_texts(log_text)
    p.warnings = len(p.warning_texts)
    return p


def _warning_texts(log_text: str) -> list[str]:
    """Every ``LaTeX Warning`` / ``Package X Warning`` of a log, with the lines that continue it (``(pkg)`` prefixes dropped)."""
    out, current = [], None
    for line in log_text.splitlines():
        m = re.match(r"^((?:LaTeX|Package \w+|Class \w+) Warning: .*)", line)
        if m:
            current = m.group(1).strip()
            out.append(current)
        elif current is not None and re.match(r"^\(\w+\)\s+", line):
            out[-1] += " " + re.sub(r"^\(\w+\)\s+", "", line).strip()
        else:
            current = None
    return [re.sub(r"\s+", " ", w) for w in out]


def label_pages(aux_text: str) -> dict[str, int]:
    """``{label: page}`` from an ``.aux`` file (hyperref's five-field ``\\newlabel`` or plain LaTeX's two)."""
    out = {}
    for label, page in re.findall(r"\\newlabel\{([^}]*)\}\{\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}\{(\d+)\}", aux_text):
        out[label] = int(page)
    return out
