"""hjsym: which Hamilton-Jacobi equation does a network solve?

Derive it symbolically, generate torch code from the derivation, check it against real torch
networks, and write it up::

    import hjsym
    d = hjsym.derive("lse")                 # numbered steps, results, generated functions
    u = d.function("u")                     # a torch function generated from the derivation
    report = hjsym.check("lse")             # two routes per check, errors, tolerances
    hjsym.report(["lse"], out="reports")    # HTML and LaTeX

The public API is re-exported here from private modules and imported lazily, so that
``import hjsym`` is cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "derive": "._derivation",
    "Derivation": "._derivation",
    "load_functions": "._derivation",
    "check": "._api",
    "function": "._api",
    "list_architectures": "._api",
    "report": "._report",
    "Spec": "._spec",
    "Scalar": "._spec",
    "Tensor": "._spec",
    "AtomicData": "._spec",
    "Network": "._spec",
    "Dynamics": "._spec",
    "Activation": "._spec",
    "Architecture": "._registry",
    "GeneratedFunction": "._generated",
    "CheckReport": "._checks",
    "CheckResult": "._checks",
    "LSELayer": "._modules",
    "train_lse_layer": "._modules",
    "train_aniso_lse_layer": "._modules",
    "activation_table": "._activations",
    "diagram_graph": "._diagram",
    "HJSymError": "._errors",
    "SpecError": "._errors",
    "InputError": "._errors",
    "ModuleFormError": "._errors",
    "UnknownArchitectureError": "._errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'hjsym' has no attribute {name!r}")
    value = getattr(importlib.import_module(target, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
