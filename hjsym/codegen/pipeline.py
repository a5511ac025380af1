"""The whole pipeline for one architecture: validate the spec, derive, generate code, cache.

``hjsym.derive("lse")`` runs the derivation engine (:mod:`hjsym.derivation`) and generates a
torch function for every function spec; the whole object is cached on disk. ``load_functions``
is the light path used by checks: it reads the cached generated code and compiles it without
importing SymPy (deriving first on a cache miss).
"""

from __future__ import annotations

from .. import _cache
from ..spec.registry import get
from ..spec.spec import Spec
from .generated import GeneratedFunction

__all__ = ["derive", "load_functions", "cache_key"]


def cache_key(spec: Spec) -> str:
    return f"{spec.name}-{spec.key()}-{_cache.version_tag()}"


def _resolve(arch) -> Spec:
    if isinstance(arch, Spec):
        return arch
    spec = getattr(arch, "spec", None)
    if isinstance(spec, Spec):
        return spec
    return get(arch).spec


def derive(arch, *, cache: bool = True) -> Derivation:
    """Derive an architecture (a registered name, an ``Architecture`` or a :class:`~hjsym.Spec`).

    Validates the spec, runs every derivation pass, generates a torch function for each named
    result and caches the result on disk (keyed by the spec and the library versions).
    """
    # deferred: the derivation and the code generator need SymPy, which load_functions' cache hit does not
    from ..derivation.derivation import Derivation
    from ..ir import ProgramSpec

    spec = _resolve(arch)
    key = cache_key(spec)
    if cache:
        hit = _cache.load("derivation", key)
        if isinstance(hit, Derivation):
            return hit
    from ..derivation.engine import derive_symbolic
    from .generate import generate

    d = derive_symbolic(spec)
    d.functions = {name: generate(fs, latex="" if isinstance(fs, ProgramSpec) else d.latex_of(fs.expr)) for name, fs in d.function_specs.items()}
    d.magnitudes = {name: generate(fs) for name, fs in d.magnitude_specs.items()}
    if cache:
        _cache.store("derivation", key, d)
        _cache.store("functions-json", key, {"functions": {n: f.to_dict() for n, f in d.functions.items()},
                                             "magnitudes": {n: f.to_dict() for n, f in d.magnitudes.items()}})
    return d


def load_functions(arch, *, magnitudes: bool = False) -> dict[str, GeneratedFunction]:
    """Generated functions of an architecture, from the cache when possible (no SymPy import).

    With ``magnitudes``, the generated magnitude functions instead (keyed by the function they scale).
    """
    spec = _resolve(arch)
    key = cache_key(spec)
    part = "magnitudes" if magnitudes else "functions"
    data = _cache.load("functions-json", key)
    if isinstance(data, dict) and isinstance(data.get(part), dict) and data.get("functions"):
        try:
            return {n: GeneratedFunction.from_dict(d) for n, d in data[part].items()}
        except (KeyError, TypeError, SyntaxError):
            pass
    d = derive(spec)
    return dict(d.magnitudes if magnitudes else d.functions)
