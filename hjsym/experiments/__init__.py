"""The paper's quantitative consequences as reproducible experiments (``hjsym experiment NAME``).

Each experiment is a module here with ``NAME``, ``TITLE``, ``CLAIM`` (the paper's claim, stated),
``run(ctx) -> dict`` (the measurement: configuration, seeds, every plotted number, rows of
``claim | measurement with a 95 % CI | verdict``, each row of a kind: evidence, consistency check,
free choice or context, and ``falsifiable``: the statistic the verdict rests on and the outcome that
would have refuted the claim; see :mod:`._page`), ``figures(result, folder) -> list`` and
``estimate(quick) -> Estimate`` (the memory of its largest intermediate and its work, from its
sizes: checked against the memory budget before it runs, :mod:`hjsym._resources`).
Sweeps go through :class:`~hjsym.experiments._runner.Mapper` (local processes, serial, or Dask);
:mod:`._page` writes ``DIR/NAME/{index.html, NAME.tex, result.json, summary.json, *.png, *.pdf}``.

Python::

    from hjsym.experiments import run_experiments
    results = run_experiments(["quadrature"], quick=True, out="reports")
"""

from __future__ import annotations

import difflib
import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._cache import check_writable
from .._errors import InputError
from .._resources import require
from ._runner import Mapper

__all__ = ["EXPERIMENTS", "Context", "Mapper", "get", "run_experiment", "run_experiments", "DEFAULT_OUT"]

EXPERIMENTS = ("quadrature", "generalization", "critical-eps", "intrinsic-dimension", "robustness", "influence",
               "bifurcation", "recovery", "phase", "width-scaling", "hallucination", "double-descent", "limit-interchange",
               "head-entropy", "mean-field-limit", "jko", "gradient-flow", "attention-width", "diagonal-net", "msa")
DEFAULT_OUT = "reports"


@dataclass
class Context:
    """What an experiment's ``run`` receives: the size setting, the map, and the seeds."""

    quick: bool
    mapper: Mapper
    progress: bool = False
    seeds: list = field(default_factory=list)

    def map(self, fn, configs, desc):
        return self.mapper.map(fn, configs, desc=desc)


def get(name: str):
    """The module of experiment ``name`` (raises :class:`~hjsym.InputError` with a suggestion)."""
    if name not in EXPERIMENTS:
        close = difflib.get_close_matches(name, EXPERIMENTS + ("all",), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(f"unknown experiment {name!r}", f"{hint}use one of: {', '.join(EXPERIMENTS)}, all")
    return importlib.import_module(f".{name.replace('-', '_')}", __name__)


def run_experiment(name: str, *, quick: bool = False, out=DEFAULT_OUT, mapper: Mapper | None = None, progress: bool = False,
                   command: str | None = None, max_memory=None) -> dict:
    """Run one experiment, write its page into ``out/NAME/`` and return its result (a JSON-able dict).

    Its estimate (:func:`estimate`) is checked against the memory budget first (``max_memory``, see
    :func:`hjsym._resources.memory_budget`).
    """
    from ._page import write_page

    mod = get(name)
    require(mod.estimate(quick), max_memory, smaller="run it where more memory is free" if quick else "use --quick")
    own = mapper is None
    mapper = mapper or Mapper(progress=progress)
    try:
        seeds = list(mod.SEEDS_QUICK if quick else mod.SEEDS)
        ctx = Context(quick=quick, mapper=mapper, progress=progress, seeds=seeds)
        t0, c0 = time.perf_counter(), mapper.cpu_seconds()
        result = mod.run(ctx)
        result["timings"] = {**result.get("timings", {}), "total_s": time.perf_counter() - t0, "cpu_s": mapper.cpu_seconds() - c0}
        result.update(name=mod.NAME, title=mod.TITLE, claim=mod.CLAIM, claim_tex=getattr(mod, "CLAIM_TEX", ""), quick=quick, mode="quick" if quick else "full",
                      seeds=seeds, backend=mapper.backend,
                      command=command or f"hjsym experiment {mod.NAME}{' --quick' if quick else ''}")
        write_page(mod, result, Path(out))
        return result
    finally:
        if own:
            mapper.close()


def run_experiments(names, *, quick: bool = False, out=DEFAULT_OUT, workers: int | None = None, scheduler: str | None = None,
                    progress: bool = False, max_memory=None) -> list[dict]:
    """Run several experiments (``"all"`` for every one) through one shared :class:`Mapper`."""
    names = list(EXPERIMENTS) if "all" in names else list(dict.fromkeys(names))
    for n in names:
        get(n)  # fail on a bad name before any work
    check_writable(out)  # and on a folder that cannot be written
    with Mapper(workers=workers, scheduler=scheduler, progress=progress) as mapper:
        return [run_experiment(n, quick=quick, out=out, mapper=mapper, progress=progress, max_memory=max_memory) for n in names]
