"""The Python API behind ``hjsym.check`` and ``hjsym.list_architectures``."""

from __future__ import annotations

import copy

from .._errors import InputError
from ..spec.registry import Architecture, all_architectures, get

__all__ = ["check", "list_architectures", "parse_dtype", "function"]

_DTYPES = ("float64", "float32")


def parse_dtype(dtype):
    """``"float64"``/``"float32"`` (or the torch dtype) -> torch dtype."""
    import torch

    if dtype in (torch.float64, torch.float32):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return getattr(torch, dtype)
    raise InputError(f"unsupported dtype {dtype!r}", f"use one of {', '.join(_DTYPES)}")


def _arch(arch) -> Architecture:
    return arch if isinstance(arch, Architecture) else get(arch)


def check(arch, module=None, *, dtype="float64", seed: int = 0, only=None, negative_controls: bool = False, progress: bool = False):
    """Check an architecture's derivation against real torch networks.

    Args:
        arch: an architecture name (``hjsym.list_architectures()``) or ``Architecture``.
        module: ``None`` for the architecture's reference networks (trained inside the call,
            seeded), an ``nn.Module``, or ``"FILE.py:NAME"`` (an instance or zero-argument factory).
        dtype: ``"float64"`` (identities to 1e-10) or ``"float32"`` (looser, stated tolerances).
        seed: seeds the reference networks and the test points.
        only: names of the checks to run (default: all).
        negative_controls: also run every check on a perturbed network and record that it fails.

    Returns:
        A :class:`~hjsym.CheckReport`; ``report.passed`` is True iff every check passed. Runs on the
        reference networks (``module=None``) are seeded and deterministic, so each configuration is
        computed once per process and callers receive a copy.

    The checks run torch on one thread (see :func:`hjsym.checks.engine.torch_threads`).
    """
    a = _arch(arch)
    torch_dtype = parse_dtype(dtype)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}", "pass e.g. seed=0")
    suite = a.suite_function()
    if suite is None:
        raise InputError(f"architecture {a.name!r} has no check suite yet", "derive it with hjsym.derive instead")
    if isinstance(module, str):
        from ..networks.lse import load_user_module

        module = load_user_module(module)
    if only is not None:
        from importlib import import_module

        known = list(getattr(import_module(a.suite.partition(":")[0]), "CHECKS", {}))
        unknown = [n for n in only if n not in known]
        if unknown:
            raise InputError(f"unknown check(s) {', '.join(unknown)} for {a.name!r}", f"use some of: {', '.join(known)}")
    from .engine import torch_threads

    def run():
        with torch_threads(1):  # small networks: one thread is faster, and the same reduction order everywhere
            return suite(a, module=module, dtype=torch_dtype, seed=seed, only=only, negative_controls=negative_controls,
                         progress=progress)

    if module is not None:
        return run()
    # the reference networks are seeded and deterministic: a process checks each configuration once
    # (a report after a check, or a derivation script after the tests, reuse it); callers get a copy
    key = (a.name, a.spec.key(), str(torch_dtype), seed, None if only is None else tuple(only), bool(negative_controls))
    if key not in _REFERENCE_REPORTS:
        _REFERENCE_REPORTS[key] = run()
    return copy.deepcopy(_REFERENCE_REPORTS[key])


_REFERENCE_REPORTS: dict = {}


def list_architectures() -> list[dict]:
    """Every registered architecture: name, title, family and summary."""
    return [
        {"name": a.name, "title": a.spec.title, "family": a.spec.family, "summary": a.spec.summary, "checks": a.suite is not None}
        for a in all_architectures()
    ]


def function(arch, name: str):
    """The generated torch function ``name`` of an architecture (from the cache when possible)."""
    from ..codegen.pipeline import load_functions

    fns = load_functions(_arch(arch).spec)
    if name not in fns:
        raise InputError(f"{_arch(arch).name!r} has no generated function {name!r}", f"use one of: {', '.join(sorted(fns))}")
    return fns[name]
