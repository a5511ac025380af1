"""The Python API behind ``hjsym.check``, ``hjsym.function`` and ``hjsym.list_architectures``."""

from __future__ import annotations

import copy
import dataclasses

import torch

from .._errors import InputError, ModuleFormError
from ..codegen.pipeline import load_functions
from ..networks.user import guard_user_code, load_user_module, prepare_module
from ..spec.registry import Architecture, all_architectures, get
from .engine import Context, Network, Suite, run_suite, torch_threads
from .suites import suite_for

__all__ = ["check", "list_architectures", "parse_dtype", "function", "suite_of", "context"]

_DTYPES = ("float64", "float32")


def parse_dtype(dtype):
    """``"float64"``/``"float32"`` (or the torch dtype) -> torch dtype."""
    if dtype in (torch.float64, torch.float32):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return getattr(torch, dtype)
    raise InputError(f"unsupported dtype {dtype!r}", f"use one of {', '.join(_DTYPES)}")


def suite_of(arch: Architecture) -> Suite | None:
    """The architecture's suite with its own checks added (``Architecture.checks``)."""
    suite = suite_for(arch.spec)
    if suite is None:
        return None
    extra = tuple(getattr(arch, "checks", ()) or ())
    return dataclasses.replace(suite, checks=suite.checks + extra) if extra else suite


def context(arch, dtype=torch.float64, seed: int = 0) -> Context:
    """The engine's context for an architecture: its generated functions and magnitudes, in ``dtype``."""
    a = get(arch)
    return Context(a.spec, load_functions(a.spec), load_functions(a.spec, magnitudes=True), parse_dtype(dtype), seed, suite_of(a))


def check(arch, module=None, *, dtype="float64", seed: int = 0, only=None, negative_controls: bool = False, progress: bool = False,
          forward_kwargs: dict | None = None):
    """Check an architecture's derivation against real torch networks.

    Args:
        arch: an architecture name (``hjsym.list_architectures()``), an ``Architecture``, a
            :class:`~hjsym.Spec` (checked by its family's generic suite) or the path of a spec file
            (``"./cell.py"``, defining ``SPEC`` or ``ARCHITECTURE``).
        module: ``None`` for the architecture's reference networks (trained inside the call,
            seeded), an ``nn.Module``, or ``"FILE.py:NAME"`` (an instance or zero-argument factory).
            Route A is the whole module as passed: a module holding more than the architecture is
            checked as a composite where hjsym knows one, and refused (``ModuleFormError``, naming
            the part outside) otherwise.
        dtype: ``"float64"`` or ``"float32"``; route B runs in the same dtype as route A, and every
            tolerance is ``k u S`` with ``u`` that dtype's unit roundoff (see :mod:`hjsym.checks.criteria`).
        seed: seeds the reference networks and the test points.
        only: names of the checks to run (default: all that apply).
        negative_controls: also run every check on a perturbed network and record that it fails.
        forward_kwargs: extra keyword arguments the module's ``forward`` needs (passed on every call).

    Returns:
        A :class:`~hjsym.CheckReport`; ``report.passed`` is True iff every check passed. Runs on the
        reference networks (``module=None``) are seeded and deterministic, so each configuration is
        computed once per process and callers receive a copy.

    The checks run torch on one thread (see :func:`hjsym.checks.engine.torch_threads`).
    """
    a = get(arch)
    torch_dtype = parse_dtype(dtype)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}", "pass e.g. seed=0")
    suite = suite_of(a)
    if suite is None:
        raise InputError(f"architecture {a.name!r} has no check suite: no suite applies to its spec",
                         "derive it with hjsym.derive instead, or give the spec a network with atomic data or dynamics")
    if isinstance(module, str):
        module = load_user_module(module)
    if forward_kwargs is not None and not isinstance(forward_kwargs, dict):
        raise InputError(f"forward_kwargs must be a dict of keyword arguments, got {type(forward_kwargs).__name__}",
                         "pass e.g. forward_kwargs={'scale': 2.0} (--forward-kwargs '{\"scale\": 2.0}')")
    if forward_kwargs and module is None:
        raise InputError("forward keyword arguments were given without a module", "pass them together with module= (--module)")
    if module is not None:
        prepare_module(module)
    ctx = Context(a.spec, load_functions(a.spec), load_functions(a.spec, magnitudes=True), torch_dtype, seed, suite,
                  forward_kwargs=dict(forward_kwargs or {}))
    known = [c.name for c in suite.applicable(ctx)]
    if only is not None:
        unknown = [n for n in only if n not in known]
        if unknown:
            raise InputError(f"unknown check(s) {', '.join(unknown)} for {a.name!r}", f"use some of: {', '.join(known)}")
        own = [n for n in only if n in _own_networks(a, suite)]
        if module is not None and own:
            raise InputError(
                f"{', '.join(own)} cannot run on a user's module: {'it builds' if len(own) == 1 else 'they build'} "
                "hjsym's own networks (the architecture's exact pieces), so it would check something other than the module passed",
                f"run {'it' if len(own) == 1 else 'them'} without --module, or leave {'it' if len(own) == 1 else 'them'} out of --only")

    def run():
        with torch_threads(1):  # small networks: one thread is faster, and the same reduction order everywhere
            return _run(a, suite, ctx, module, only, negative_controls, progress)

    if module is not None:
        return run()
    # the reference networks are seeded and deterministic: a process checks each configuration once
    # (a report after a check, or a derivation script after the tests, reuse it); callers get a copy
    key = (a.name, a.spec.key(), str(torch_dtype), seed, None if only is None else tuple(only), bool(negative_controls))
    if key not in _REFERENCE_REPORTS:
        _REFERENCE_REPORTS[key] = run()
    return copy.deepcopy(_REFERENCE_REPORTS[key])


_REFERENCE_REPORTS: dict = {}


def _run(a: Architecture, suite: Suite, ctx: Context, module, only, negative_controls, progress):
    notes = []
    if module is None:
        if a.networks is None:
            raise InputError(f"architecture {a.name!r} has no reference networks", "pass module= (or --module FILE.py:NAME)")
        made = a.networks(ctx.seed, ctx.dtype)
        nets = [Network(label, suite.read(ctx, m)) for label, m in made.items()]
        losses = [f"{label}: {m.train_loss:.3g}" for label, m in made.items() if getattr(m, "train_loss", None) is not None]
        if losses:
            notes.append("train losses: " + ", ".join(losses))
        network = "; ".join(n.label for n in nets)
        if len(nets) > 1:
            network = f"{len(nets)} reference networks: {network}"
    else:
        if {c.name for c in suite.checks} <= _own_networks(a, suite):
            raise InputError(f"{a.name!r} has no check that reads a module: its checks build their own computations "
                             f"({', '.join(c.name for c in a.checks)})", f"run 'hjsym check {a.name}' without --module")
        r = guard_user_code(lambda: suite.read(ctx, module), module)
        nets = [Network(r.describe(), r)]
        network = r.describe()
        notes += list(getattr(r, "notes", None) or ())
        own = [c.name for c in suite.applicable(ctx) if c.name in _own_networks(a, suite)]
        if own and only is None:
            only = [c.name for c in suite.applicable(ctx) if c.name not in own]
            notes.append(f"{', '.join(own)} build hjsym's own networks (the architecture's exact pieces) and are not run on a user's "
                         "module (run them without --module)")
    if ctx.dtype != torch.float64:
        notes.append(f"{str(ctx.dtype)[6:]}: every tolerance is k u S with u = {torch.finfo(ctx.dtype).eps / 2:.3g}")
    def run():
        return run_suite(suite, ctx, nets, architecture=a.name, network=network, names=only, negative_controls=negative_controls,
                         progress=progress, notes=notes)

    if module is None:
        return run()
    report = guard_user_code(run, module)
    if not report.checks:  # nothing read the module: never a silent pass
        raise ModuleFormError(f"no check of {a.name!r} reads a {network}",
                              f"pass a module of the kind {a.name!r} checks (see 'Bring your own network' in the README)")
    return report


def _own_networks(a: Architecture, suite: Suite) -> set[str]:
    """Checks that build hjsym's own networks instead of reading the one passed: every standalone check, the suite's or
    the architecture's own science (an architecture's check that reads the networks, such as training-hjb's optimality
    conditions, runs on the module)."""
    return {c.name for c in (*suite.checks, *a.checks) if c.standalone is not None}


def list_architectures() -> list[dict]:
    """Every registered architecture: name, title, family and summary."""
    return [
        {"name": a.name, "title": a.spec.title, "family": a.spec.family, "summary": a.spec.summary, "checks": suite_for(a.spec) is not None}
        for a in all_architectures()
    ]


def function(arch, name: str):
    """The generated torch function ``name`` of an architecture (from the cache when possible)."""
    fns = load_functions(get(arch).spec)
    if name not in fns:
        raise InputError(f"{get(arch).name!r} has no generated function {name!r}", f"use one of: {', '.join(sorted(fns))}")
    return fns[name]
