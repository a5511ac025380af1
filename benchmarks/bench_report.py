"""Benchmarks of ``hjsym report all``: from nothing, and again with the cache warm.

* ``report_cold``: ``hjsym report all`` (every registered architecture, HTML and LaTeX; no
  experiments) in a fresh process with an empty cache: derive, train the reference networks,
  check with negative controls, draw, write (limit 60 s on a 2-core machine);
* ``report_warm``: the same command again, in a fresh process, with that cache (limit 20 s);
  when pdflatex is installed it also reports ``seconds_with_pdf``, the warm run with
  ``--format html,tex,pdf`` (every page and the combined document compiled), for information.

The ratio is the time over the limit (both measured in this run). ``--quick`` reports ``lse`` only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

COLD_LIMIT_S, WARM_LIMIT_S = 60.0, 20.0


def _report(args, cache: str, out: str) -> float:
    code = "import sys; from hjsym._cli import main; sys.exit(main(sys.argv[1:]))"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, "report", *args, "--out", out], capture_output=True, text=True,
                          env={**os.environ, "HJSYM_CACHE_DIR": cache})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"hjsym report failed:\n{proc.stderr[-2000:]}")
    return wall


def _archs(quick: bool) -> list[str]:
    from hjsym.spec.registry import names

    return ["lse"] if quick else names()


def bench_report_cold(quick: bool) -> dict:
    archs = _archs(quick)
    with tempfile.TemporaryDirectory(prefix="hjsym-bench-report-") as tmp:
        wall = _report([*archs], f"{tmp}/cache", f"{tmp}/out")
    return {"name": "report_cold", "ratio": wall / COLD_LIMIT_S, "limit": 1.0, "passed": wall <= COLD_LIMIT_S, "seconds": wall,
            "architectures": len(archs), "cpus": os.cpu_count(),
            "what": f"hjsym report {' '.join(archs) if quick else 'all'}, fresh process, empty cache (limit {COLD_LIMIT_S:g} s)"}


def bench_report_warm(quick: bool) -> dict:
    archs = _archs(quick)
    with tempfile.TemporaryDirectory(prefix="hjsym-bench-report-") as tmp:
        _report([*archs], f"{tmp}/cache", f"{tmp}/out")
        walls = [_report([*archs], f"{tmp}/cache", f"{tmp}/out") for _ in range(1 if quick else 3)]
        pdf = None
        if shutil.which("pdflatex"):
            pdf = _report([*archs, "--format", "html,tex,pdf"], f"{tmp}/cache", f"{tmp}/out")
    wall = sorted(walls)[len(walls) // 2]
    out = {"name": "report_warm", "ratio": wall / WARM_LIMIT_S, "limit": 1.0, "passed": wall <= WARM_LIMIT_S, "seconds": wall,
           "architectures": len(archs),
           "what": f"hjsym report {' '.join(archs) if quick else 'all'}, fresh process, warm cache (limit {WARM_LIMIT_S:g} s)"}
    if pdf is not None:
        out["seconds_with_pdf"] = pdf
    return out


BENCHMARKS = [bench_report_cold, bench_report_warm]
