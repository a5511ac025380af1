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

from ._version import __version__

_EXPORTS = {
    "derive": ".codegen.pipeline",
    "Derivation": ".derivation.derivation",
    "load_functions": ".codegen.pipeline",
    "check": ".checks.api",
    "function": ".checks.api",
    "list_architectures": ".checks.api",
    "report": ".reports.pages",
    "latex_fragment": ".reports.pages",
    "markdown_fragment": ".reports.pages",
    "Spec": ".spec.spec",
    "Scalar": ".spec.spec",
    "Tensor": ".spec.spec",
    "AtomicData": ".spec.spec",
    "Network": ".spec.spec",
    "Dynamics": ".spec.spec",
    "Training": ".spec.spec",
    "Claim": ".spec.spec",
    "Activation": ".spec.spec",
    "Functional": ".spec.spec",
    "GradientFlow": ".spec.spec",
    "MeanField": ".spec.spec",
    "Architecture": ".spec.registry",
    "KeyResult": ".spec.registry",
    "GeneratedFunction": ".codegen.generated",
    "CheckReport": ".checks.results",
    "CheckResult": ".checks.results",
    "LSELayer": ".networks.lse",
    "train_lse_layer": ".networks.lse",
    "ResidualMLP": ".networks.control",
    "DiagonalSSM": ".networks.control",
    "SelectiveSSM": ".networks.control",
    "read_control": ".networks.control",
    "train_aniso_lse_layer": ".networks.lse",
    "MeanFieldNet": ".networks.mean_field",
    "TravelTime": ".networks.variational",
    "activation_table": ".derivation.activations",
    "diagram_graph": ".derivation.diagram",
    "HJSymError": "._errors",
    "SpecError": "._errors",
    "InputError": "._errors",
    "ModuleFormError": "._errors",
    "UnknownArchitectureError": "._errors",
    "OutputError": "._errors",
    "ResourceError": "._errors",
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
