"""Verify a report folder the way a reader meets it: every LaTeX file compiled, every page opened in a browser.

:func:`verify_reports` (``hjsym verify DIR``, and what the tests and CI run):

* compiles every ``.tex`` under the folder with pdflatex into a scratch folder (documents as
  they are; a fragment such as ``derivation.tex`` inside a minimal document loading amsmath and
  amssymb, as its header says) and fails on any LaTeX error, any display equation overfull by
  more than 1 pt (cut off at the margin), and any undefined or multiply defined reference;
* opens every ``.html`` page in headless Chromium (:mod:`hjsym.verify.browser`, no network) and fails
  on any console error, any request leaving the machine, any failed load or broken image, any
  formula left unrendered or wider than its column, and any link to a missing anchor;
* checks every relative link between the pages (file exists; ``#anchor`` exists in it);
* a missing pdflatex or Chromium skips its part, unless ``HJSYM_REQUIRE_TEX=1`` /
  ``HJSYM_REQUIRE_BROWSER=1`` make it a failure (as CI does);
* with ``artifacts=DIR``, keeps a full-page screenshot of every page, every compiled PDF and
  log, and ``verify-all.json`` (or ``-latex``/``-browser``) with all findings.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import InputError

__all__ = ["verify_reports", "VerifyResult", "check_links", "FRAGMENT_WRAPPER", "WIDTHS"]

#: A fragment (no \\documentclass) is compiled inside this document (``{path}``: the fragment).
FRAGMENT_WRAPPER = (
    "\\documentclass{article}\n\\usepackage[a4paper,margin=2cm]{geometry}\n\\usepackage[T1]{fontenc}\n\\usepackage{lmodern}\n"
    "\\usepackage{amsmath,amssymb}\n\\usepackage{hyperref}\n"
    "\\ifdefined\\pdfinfoomitdate \\pdfinfoomitdate=1 \\fi\n\\ifdefined\\pdftrailerid \\pdftrailerid{} \\fi\n"
    "\\begin{document}\n\\input{{{path}}}\n\\end{document}\n"
)


@dataclass
class VerifyResult:
    """Findings per file; :attr:`ok` when there are none that fail."""

    out: str
    tex: dict = field(default_factory=dict)
    pages: dict = field(default_factory=dict)
    links: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        out = [f"required but {why}" for why, env in self.skipped if os.environ.get(env) == "1"]
        out += [f"{name}: {p}" for name, info in sorted(self.tex.items()) for p in info["failures"]]
        out += [f"{name}: {p}" for name, info in sorted(self.pages.items()) for p in info["problems"]]
        out += [f"link: {p}" for p in self.links]
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"out": self.out, "ok": self.ok, "failures": self.failures, "tex": self.tex, "pages": self.pages,
                "links": self.links, "skipped": self.skipped, "summary": self.summary()}

    def summary(self) -> dict:
        return {
            "tex_files": len(self.tex),
            "latex_warnings": sum(i.get("warnings", 0) for i in self.tex.values()),
            "overfull_other": sum(len(i.get("overfull_other", [])) for i in self.tex.values()),
            "pdf_pages": sum(i.get("pdf_pages", 0) for i in self.tex.values()),
            "html_pages": len({k.split("@")[0] for k in self.pages}),
            "formulas": sum(i.get("formulas", 0) for i in self.pages.values()),
            "requests": sum(i.get("requests", 0) for i in self.pages.values()),
            "external_requests": sum(len(i.get("external_requests", [])) for i in self.pages.values()),
            "screenshots": sum(1 for i in self.pages.values() if i.get("screenshot")),
        }

    def text(self) -> str:
        s = self.summary()
        lines = [f"hjsym verify {self.out}: {s['tex_files']} LaTeX files ({s['pdf_pages']} PDF pages, {s['latex_warnings']} warnings, "
                 f"{s['overfull_other']} overfull boxes outside equations), {s['html_pages']} HTML pages ({s['formulas']} formulas, "
                 f"{s['requests']} requests, {s['external_requests']} leaving the machine, {s['screenshots']} screenshots)"]
        lines += [f"warning: {name}: {w}" for name, info in sorted(self.tex.items()) for w in info.get("warning_texts", [])]
        lines += [f"overfull box outside an equation: {name}: {o}" for name, info in sorted(self.tex.items())
                  for o in info.get("overfull_other", [])]
        lines += [f"skipped: {why}" for why, _ in self.skipped]
        fails = self.failures
        lines += [f"FAIL {f}" for f in fails] if fails else ["no problems"]
        return "\n".join(lines)


def _is_fragment(text: str) -> bool:
    return "\\documentclass" not in text


def _verify_tex(path: Path, root: Path, scratch: Path) -> dict:
    from ..reports.texbuild import compile_pdf, latex_problems

    rel = path.relative_to(root).as_posix()
    dest = scratch / "latex" / Path(rel).parent
    dest.mkdir(parents=True, exist_ok=True)
    source = path
    if _is_fragment(path.read_text(errors="replace")):
        source = dest / f"{path.stem}-in-document.tex"
        source.write_text(FRAGMENT_WRAPPER.replace("{path}", path.resolve().as_posix()))
    try:
        pdf = compile_pdf(source, dest)
    except (RuntimeError, InputError) as exc:
        lines = str(exc).splitlines()
        errors = [ln for ln in lines if ln.startswith("! ") or re.match(r"^[^\s:]+\.tex:\d+: ", ln)]
        detail = " | ".join(errors[:3]) or (lines[-1] if len(lines) > 1 else "")
        return {"failures": [f"{lines[0]} {detail}".strip()], "warnings": 0, "overfull_other": [], "pdf_pages": 0}
    log = pdf.with_suffix(".log").read_text(errors="replace")
    p = latex_problems(log)
    pages = re.search(r"Output written on .*?\((\d+) pages?", log)
    return {"failures": p.failures, "warnings": p.warnings, "warning_texts": p.warning_texts, "overfull_other": p.overfull_other,
            "pdf_pages": int(pages.group(1)) if pages else 0, "pdf": str(pdf)}


def check_links(root: Path) -> list[str]:
    """Relative links between HTML pages under ``root`` whose file or ``#anchor`` is missing."""
    root = Path(root)
    ids: dict[Path, set] = {}

    def ids_of(page: Path) -> set:
        if page not in ids:
            ids[page] = set(re.findall(r'\sid="([^"]+)"', page.read_text(errors="replace"))) if page.exists() else set()
        return ids[page]

    problems = []
    for page in sorted(p for p in root.rglob("*.html") if "_static" not in p.parts):
        for ref in re.findall(r'(?:src|href)="([^"]+)"', page.read_text(errors="replace")):
            if re.match(r"[a-z][a-z0-9+.-]*:", ref):
                problems.append(f"{page.relative_to(root)} refers outside the folder: {ref}")
                continue
            target_s, _, anchor = ref.partition("#")
            target = (page.parent / target_s).resolve() if target_s else page.resolve()
            if not target.exists():
                problems.append(f"{page.relative_to(root)}: missing file {ref}")
            elif anchor and target.suffix == ".html" and anchor not in ids_of(target):
                problems.append(f"{page.relative_to(root)}: no anchor #{anchor} in {target_s or page.name}")
    return problems


#: Viewport widths every page is opened at: a desktop and a phone (the phone's findings are keyed ``PAGE@420px``).
WIDTHS = (1200, 420)


def verify_reports(out="reports", artifacts=None, *, tex: bool = True, browser: bool = True, jobs: int | None = None,
                   progress: bool = False, widths=WIDTHS, pages=None) -> VerifyResult:
    """Compile every ``.tex`` and open every ``.html`` under ``out`` at each of ``widths`` (see the module docstring).

    ``pages`` (paths relative to ``out``, e.g. ``["index.html", "lse/index.html"]``) opens only those in the
    browser; the links of every page are checked either way.
    """
    from tqdm.auto import tqdm

    from ..reports.texbuild import tex_engine
    from .browser import Chromium, find_chromium

    root = Path(out)
    if not root.is_dir():
        raise InputError(f"no report folder at {root}", "run 'hjsym report' first, or pass the folder that holds index.html")
    result = VerifyResult(out=str(root))
    art = Path(artifacts) if artifacts else None
    with tempfile.TemporaryDirectory(prefix="hjsym-verify-") as tmp:
        scratch = art if art is not None else Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        if tex:
            if tex_engine() is None:
                result.skipped.append(("LaTeX: pdflatex is not installed", "HJSYM_REQUIRE_TEX"))
            else:
                files = sorted(p for p in root.rglob("*.tex") if "_static" not in p.parts)
                # pages first, the combined document (which includes their PDFs as they are on disk) with them
                with ThreadPoolExecutor(max_workers=max(1, min(jobs or os.cpu_count() or 1, len(files) or 1))) as pool:
                    for path, info in zip(files, tqdm(pool.map(lambda p: _verify_tex(p, root, scratch), files), total=len(files),
                                                      desc="LaTeX", disable=not progress)):
                        result.tex[path.relative_to(root).as_posix()] = info
        result.links = check_links(root)
        if browser:
            exe = find_chromium()
            if exe is None:
                result.skipped.append(("browser: Chromium is not installed", "HJSYM_REQUIRE_BROWSER"))
            else:
                found = sorted(p for p in root.rglob("*.html") if "_static" not in p.parts)
                if pages is not None:
                    wanted = set(pages)
                    missing = wanted - {p.relative_to(root).as_posix() for p in found}
                    if missing:
                        raise InputError(f"no page {', '.join(sorted(missing))} under {root}", "name pages relative to the report folder")
                    found = [p for p in found if p.relative_to(root).as_posix() in wanted]
                with Chromium(exe, width=widths[0]) as chrome:
                    for page in tqdm(found, desc="pages", disable=not progress):
                        rel = page.relative_to(root).as_posix()
                        for n, width in enumerate(widths):
                            key = rel if n == 0 else f"{rel}@{width}px"
                            stem = rel.replace("/", "__").removesuffix(".html") + ("" if n == 0 else f"@{width}px")
                            shot = (scratch / "screenshots" / f"{stem}.png") if art else None
                            r = chrome.inspect_width(page.resolve().as_uri(), width, screenshot=shot)
                            info = r.to_dict()
                            info["requests"] = len(r.requests)
                            info["width"] = width
                            result.pages[key] = info
        if art is not None:
            what = "all" if tex and browser else ("latex" if tex else "browser")
            (art / f"verify-{what}.json").write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    return result
