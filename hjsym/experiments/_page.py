"""Experiment pages: ``result.json``, ``summary.json``, ``index.html``, ``NAME.tex`` and figures.

The page puts the paper's claim, the measurement (mean and 95 % interval over seeds) and the
verdict side by side, with what the verdict rests on and what would have refuted it, then the
figures, the numbers behind them, the configuration, timings, versions and the git revision.
Files are written atomically; the report index (``DIR/index.html``) is re-rendered so that it
lists the experiment next to the architectures.

The interface every experiment's ``run(ctx)`` result follows (checked by :func:`check_result`
before anything is written):

* ``"falsifiable"``: :func:`falsifiable` ``(statistic, refuted_if)``: the statistic the verdict
  rests on and the outcome that would have refuted the claim; shown beside the verdict.
* ``"rows"``: one dict per measured quantity (:func:`row` builds one), each with a ``"kind"`` of
  :data:`ROW_KINDS`: ``"evidence"`` (a measurement that could have refuted the claim; the default),
  ``"consistency"`` (a theorem checked: it can fail only through a bug, so it is labelled a
  consistency check and is not evidence for the claim), ``"choice"`` (a statistic fixed by a free
  choice, a threshold or a grid, reported as a function of that choice) or ``"context"`` (a
  baseline, a timing). The verdict is built from the evidence rows
  (:func:`~hjsym.experiments._stats.combine` of their verdicts, or a stated rule); an experiment
  with no evidence row at all is itself a consistency check and must say so
  (``falsifiable(..., consistency=True)``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["write_page", "provenance", "git_revision", "jsonable", "method_blocks", "falsifiable", "row", "check_result", "ROW_KINDS",
           "evidence_verdicts"]

#: The kinds of result row, with the label a page shows beside the quantity ("" for evidence).
ROW_KINDS = {
    "evidence": "",
    "consistency": "consistency check",
    "choice": "depends on a free choice",
    "context": "context, not a test of the claim",
}


def falsifiable(statistic: str, refuted_if: str, *, consistency: bool = False) -> dict:
    """What a verdict rests on: ``{"statistic", "refuted_if", "kind"}``.

    ``statistic``: the measured quantity the verdict is computed from (choice-free: not fixed by a
    threshold or grid the experiment picked); ``refuted_if``: the outcome that would have refuted the
    claim, in terms of that statistic. ``consistency=True`` when the verdict rests on a theorem checked
    numerically (it can fail only through a bug): the page then labels the experiment a consistency check.
    """
    return {"statistic": statistic, "refuted_if": refuted_if, "kind": "consistency check" if consistency else "evidence"}


def row(quantity: str, paper: str, value, verdict: str, rule: str, *, kind: str = "evidence", n: int | None = None) -> dict:
    """One result row. ``value``: a number (or None) or an interval dict ``{"mean", "lo", "hi", "n"}`` (from ``_stats``)."""
    if isinstance(value, dict):
        measured, lo, hi, n = value["mean"], value["lo"], value["hi"], value["n"] if n is None else n
    else:
        measured, lo, hi = value, None, None
    return {"quantity": quantity, "paper": paper, "measured": measured, "lo": lo, "hi": hi, "n": 1 if n is None else n,
            "verdict": verdict, "rule": rule, "kind": kind}


def evidence_verdicts(rows) -> list[str]:
    """The verdicts of the evidence rows (what an overall verdict is combined from)."""
    return [r["verdict"] for r in rows if r.get("kind", "evidence") == "evidence"]


def check_result(name: str, result: dict) -> None:
    """Raise :class:`~hjsym.InputError` if an experiment's result lacks what every page shows.

    Checked: a ``falsifiable`` entry with a statistic and a refuting outcome, a verdict of
    :data:`~hjsym.experiments._stats.VERDICTS` overall and per row, row kinds from :data:`ROW_KINDS`, and at
    least one evidence row unless the experiment declares itself a consistency check.
    """
    from .._errors import InputError
    from ._stats import VERDICTS

    fix = ("return falsifiable(statistic=..., refuted_if=...) from hjsym.experiments._page under 'falsifiable' in run()'s result, "
           "and give each row a kind (row(..., kind=...))")
    f = result.get("falsifiable")
    if not isinstance(f, dict) or not str(f.get("statistic", "")).strip() or not str(f.get("refuted_if", "")).strip():
        raise InputError(f"experiment {name!r} does not say what its verdict rests on (no 'falsifiable' statistic and refuting outcome)", fix)
    if f.get("kind", "evidence") not in ("evidence", "consistency check"):
        raise InputError(f"experiment {name!r}: falsifiable kind {f.get('kind')!r} is neither 'evidence' nor 'consistency check'", fix)
    if result.get("verdict") not in VERDICTS:
        raise InputError(f"experiment {name!r}: verdict {result.get('verdict')!r} is not one of {', '.join(VERDICTS)}", fix)
    for r in result.get("rows", []):
        if r.get("kind", "evidence") not in ROW_KINDS:
            raise InputError(f"experiment {name!r}: row {r.get('quantity')!r} has kind {r.get('kind')!r}", f"use one of {', '.join(ROW_KINDS)}")
        if r.get("verdict") not in VERDICTS:
            raise InputError(f"experiment {name!r}: row {r.get('quantity')!r} has verdict {r.get('verdict')!r}", f"use one of {', '.join(VERDICTS)}")
    if not evidence_verdicts(result.get("rows", [])) and f.get("kind") != "consistency check":
        raise InputError(f"experiment {name!r} has no evidence row: every row is a consistency check, a choice or context",
                         "declare it with falsifiable(..., consistency=True), or add the measurement that could refute the claim")


def git_revision() -> str | None:
    """``HEAD`` of the source checkout hjsym runs from (``+dirty`` when it has changes), or None."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict:
    """Package versions, git revision and machine facts recorded with every result."""
    import torch

    from ..reports.pages import _versions

    versions = _versions()
    for dist in ("scikit-learn", "dask", "distributed"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {"versions": versions, "git_revision": git_revision(), "machine": {
        "platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}}


def jsonable(obj):
    """Tensors to lists, non-finite floats to strings; recursively."""
    import torch

    if isinstance(obj, torch.Tensor):
        return jsonable(obj.tolist())
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if value != value:
        return "nan"
    if value == 0:
        return "0"
    a = abs(value)
    return f"{value:.3g}" if 1e-3 <= a < 1e4 else f"{value:.2e}"


def _rows(result) -> list[dict]:
    out = []
    for r in result["rows"]:
        n = r.get("n")
        if isinstance(n, int) and n < 2:  # one seed: no interval (a t-interval from one value is (-inf, inf))
            ci = f"n/a ({n} seed)"
        else:
            ci = "" if r.get("lo") is None else f"[{_fmt(r['lo'])}, {_fmt(r['hi'])}]"
        kind = r.get("kind", "evidence")
        out.append({**r, "kind": kind, "kind_label": ROW_KINDS[kind], "measured_text": _fmt(r.get("measured")), "ci_text": ci,
                    "slug": r["verdict"].replace(" ", "-")})
    return out


_INLINE = re.compile(r"``(.+?)``|\*\*(.+?)\*\*")


def _spans(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` runs of one paragraph: ``code`` spans, **bold** spans and plain text."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            out.append(("text", text[pos:m.start()]))
        out.append(("code", m.group(1)) if m.group(1) is not None else ("bold", m.group(2)))
        pos = m.end()
    if pos < len(text):
        out.append(("text", text[pos:]))
    return out


def method_blocks(doc: str) -> list[dict]:
    """An experiment's module docstring, after its title paragraph, as page blocks.

    Returns ``[{"kind": "p", "spans": [...]}, {"kind": "ul", "entries": [[...], ...]}, ...]``:
    blank lines separate paragraphs, lines starting with ``*`` or ``-`` open list items (indented
    lines continue them), and each text is split by :func:`_spans` so that both templates render
    code and bold instead of showing the markup.
    """
    blocks = []
    for para in doc.strip().split("\n\n")[1:]:
        lines = [line.strip() for line in para.strip().splitlines()]
        if lines and lines[0][:2] in ("* ", "- "):
            items: list[str] = []
            for line in lines:
                if line[:2] in ("* ", "- "):
                    items.append(line[2:])
                elif items:
                    items[-1] += " " + line
            blocks.append({"kind": "ul", "entries": [_spans(i) for i in items]})
        else:
            blocks.append({"kind": "p", "spans": _spans(" ".join(lines))})
    return blocks


def write_page(mod, result: dict, out: Path) -> list[Path]:
    """Write every file of one experiment into ``out/NAME/`` and refresh ``out/index.html``."""
    from .._cache import atomic_write
    from ..reports.pages import _envs, write_index

    check_result(result["name"], result)
    result["falsifiable"] = {"kind": "evidence", **result["falsifiable"]}  # a plain {"statistic", "refuted_if"} dict is evidence
    folder = out / result["name"]
    folder.mkdir(parents=True, exist_ok=True)
    figures = mod.figures(result, folder)
    result["figures"] = figures
    result["provenance"] = provenance()
    html_env, tex_env = _envs()
    page = {**result, "rows": _rows(result), "slug": result["verdict"].replace(" ", "-"), "method": method_blocks(result["method"]),
            "consistency": result["falsifiable"].get("kind") == "consistency check"}
    summary = {
        "name": result["name"], "title": result["title"], "kind": "experiment", "family": "experiment",
        "classification": result["verdict"], "statement": result["measurement"], "claim": result["claim"], "quick": result["quick"],
        "falsifiable": result["falsifiable"],
        "mode": "quick" if result["quick"] else "full", "claim_tex": result.get("claim_tex", ""), "seeds": list(result.get("seeds", [])),
        "checks_passed": None, "checks_total": None, "worst_error_over_tolerance": None, "negative_controls_fail": None,
    }
    files = {
        "result.json": json.dumps(jsonable(result), indent=2, sort_keys=True) + "\n",
        "summary.json": json.dumps(jsonable(summary), indent=2, sort_keys=True) + "\n",
        "index.html": html_env.get_template("experiment.html.j2").render(page=page, static="../_static"),
        f"{result['name']}.tex": tex_env.get_template("experiment.tex.j2").render(page=page),
    }
    written = []
    for name, text in files.items():
        atomic_write(folder / name, text.encode("utf-8"))
        written.append(folder / name)
    return written + write_index(out)
