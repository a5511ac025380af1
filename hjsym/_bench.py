"""The benchmark runner behind ``hjsym bench``.

Benchmarks live in ``benchmarks/bench_*.py`` of the source checkout (or ``$HJSYM_BENCH_DIR``).
Each module defines ``BENCHMARKS``: a list of functions ``fn(quick: bool)`` returning one row (a
dict) or a list of rows, each with at least ``name``, ``ratio`` (hjsym / the strongest baseline,
both measured in the same run), ``limit`` and ``passed``; rows compared with several peers add
``peers`` (``{peer: hjsym time / peer time}``). Everything else they return (sizes, times, memory)
is printed and kept in the JSON.

Timing is CPU time of the process (all its threads), the median over rounds that alternate the
candidates (:func:`alternating`), so that a shared machine's load falls on every candidate alike;
fresh processes are timed by their own CPU time (:func:`child_cpu`).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ._errors import InputError

__all__ = ["run_benchmarks", "format_table", "timeit", "alternating", "child_cpu", "one_thread", "peak_rss_mib", "rss_mib",
           "reset_peak_rss", "run_in_subprocess", "bench_dir"]


def bench_dir() -> Path:
    env = os.environ.get("HJSYM_BENCH_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "benchmarks"
    if not path.is_dir():
        raise InputError(f"no benchmarks folder at {path}", "run from a source checkout of hjsym or set HJSYM_BENCH_DIR")
    return path


def timeit(fn, *, repeat: int = 5, warmup: int = 1, clock=time.perf_counter, stat=statistics.median) -> float:
    """``stat`` (default the median) of ``fn()``'s time on ``clock`` (default wall time) over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return stat(times)


def alternating(candidates: dict, *, rounds: int = 5, setup: dict | None = None) -> dict[str, float]:
    """Median CPU seconds of each candidate over ``rounds`` rounds, the candidates alternating.

    ``candidates`` maps a name to a zero-argument function; each is called once untimed first
    (warm-up: allocator, caches, lazy initialisation). In every round each candidate runs once,
    in an order rotated from round to round. ``setup[name]``, when given, is called untimed before
    each timed call and its result passed to the candidate.
    """
    setup = setup or {}
    names = list(candidates)
    for n in names:
        candidates[n](*((setup[n](),) if n in setup else ()))
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            arg = (setup[n](),) if n in setup else ()
            t0 = time.process_time()
            candidates[n](*arg)
            times[n].append(time.process_time() - t0)
    return {n: statistics.median(ts) for n, ts in times.items()}


def child_cpu(code: str, env: dict | None = None, timeout: float = 600) -> tuple[float, str]:
    """CPU seconds (user + system) of a fresh ``python -c code`` and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"benchmark subprocess failed:\n{proc.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


class one_thread:
    """Context manager: torch on one thread (the ratios compare single-core kernels), restored after."""

    def __enter__(self):
        import torch

        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.threads)
        return False


def _status_kib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mib() -> float:
    """Current resident memory in MiB."""
    kib = _status_kib("VmRSS")
    return kib / 1024 if kib is not None else peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident memory since start or the last :func:`reset_peak_rss`, in MiB."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if platform.system() == "Linux" else peak / 2**20


def run_in_subprocess(code: str, timeout: float = 600, env: dict | None = None) -> tuple[str, float]:
    """Run Python ``code`` in a fresh interpreter; return its stdout and wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{proc.stderr[-2000:]}")
    return proc.stdout, wall


def _load_modules():
    mods = []
    for path in sorted(bench_dir().glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(f"hjsym_bench_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


def run_benchmarks(quick: bool = False, only=None, progress: bool = False) -> dict:
    """Run every benchmark (or those named in ``only``); returns a JSON-able dict."""
    from tqdm.auto import tqdm

    fns = [fn for mod in _load_modules() for fn in getattr(mod, "BENCHMARKS", [])]
    names = [fn.__name__.removeprefix("bench_") for fn in fns]
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise InputError(f"unknown benchmark(s) {', '.join(unknown)}", f"use some of: {', '.join(names)}")
        fns = [fn for fn, n in zip(fns, names) if n in only]
    results = []
    for fn in tqdm(fns, desc="benchmarks", disable=not progress):
        rows = fn(quick)
        results += rows if isinstance(rows, list) else [rows]
    import torch

    return {
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version()},
        "benchmarks": results,
    }


def format_table(results: dict) -> str:
    lines = [f"hjsym bench ({'quick' if results['quick'] else 'full'}; {results['machine']['cpus']} CPUs, torch {results['machine']['torch']})"]
    for r in results["benchmarks"]:
        verdict = "pass" if r.get("passed") else "FAIL"
        lines.append(f"- {r['name']}: ratio {r['ratio']:.3f} (limit {r['limit']}) {verdict}")
        for k, v in r.items():
            if k in ("name", "ratio", "limit", "passed"):
                continue
            if isinstance(v, dict):
                v = ", ".join(f"{a} {b:.3g}" if isinstance(b, float) else f"{a} {b}" for a, b in v.items())
            lines.append(f"    {k}: {v:.4g}" if isinstance(v, float) else f"    {k}: {v}")
    return "\n".join(lines)
