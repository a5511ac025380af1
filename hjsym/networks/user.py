"""A user's module: loading ``FILE.py:NAME``, refusing what cannot be run, and naming failures in its code.

``load_user_module`` loads an instance or a zero-argument factory; ``prepare_module`` refuses,
before anything is read, a module whose parameters have no values (the meta device) or are not
floating point; ``guard_user_code`` turns an exception raised inside the module's own code
(its ``forward``, or a submodule's) into a :class:`~hjsym.ModuleFormError` naming the module,
the exception and where it was raised, so that no module a user writes makes hjsym fail with an
internal error.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from pathlib import Path

import torch
from torch import nn

from .._errors import HJSymError, InputError, ModuleFormError

__all__ = ["load_user_module", "prepare_module", "guard_user_code"]


def prepare_module(module) -> None:
    """Refuse a module hjsym cannot run: not an ``nn.Module``, parameters on the meta device, or non-floating ones."""
    if not isinstance(module, nn.Module):
        raise ModuleFormError(f"expected a torch.nn.Module, got {type(module).__name__}", "pass an nn.Module instance")
    tensors = list(module.named_parameters()) + list(module.named_buffers())
    meta = [n for n, t in tensors if t.is_meta]
    if meta:
        raise ModuleFormError(
            f"{type(module).__name__} is on the meta device ({', '.join(meta[:3])}{' ...' if len(meta) > 3 else ''} have shapes but no "
            "values): there are no weights to read or run",
            "materialise it first, e.g. module.to_empty(device='cpu') and then load or initialise its weights")
    bad = [n for n, t in module.named_parameters() if not t.is_floating_point()]
    if bad:
        raise ModuleFormError(f"{type(module).__name__} has parameters that are not floating point: {', '.join(bad[:3])}",
                              "use float32 or float64 parameters")


def _module_files(module: nn.Module) -> set[str]:
    """Source files of the classes of ``module`` and of its submodules (where their forward code lives)."""
    files = set()
    for m in module.modules():
        for cls in type(m).__mro__:
            if cls in (nn.Module, object):
                continue
            try:
                files.add(str(Path(inspect.getsourcefile(cls)).resolve()))
            except (TypeError, OSError):
                pass
    return files


def guard_user_code(fn, module):
    """Run ``fn()``; an exception raised inside ``module``'s own code becomes a :class:`ModuleFormError` naming it."""
    try:
        return fn()
    except HJSymError:
        raise
    except Exception as exc:
        files = _module_files(module) if isinstance(module, nn.Module) else set()
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(Path(f.filename).resolve()) in files]
        if not frames:
            raise
        where = frames[-1]
        raise ModuleFormError(
            f"{type(module).__name__}'s code raised {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''} "
            f"(in {Path(where.filename).name}:{where.lineno}, {where.name})",
            "make the module run on the inputs its architecture takes (see 'Bring your own network' in the README); extra forward "
            "arguments go in --forward-kwargs",
        ) from exc

def load_user_module(ref: str) -> nn.Module:
    """Load ``FILE.py:NAME``: a module instance, or a zero-argument factory returning one."""
    path_text, sep, name = str(ref).rpartition(":")
    if not sep or not path_text or not name:
        raise InputError(f"--module {ref!r} is not of the form FILE.py:NAME", "write e.g. --module my_net.py:model")
    path = Path(path_text)
    if not path.is_file():
        raise InputError(f"module file {path_text!r} does not exist", "give the path of a Python file")
    if path.suffix != ".py":
        raise InputError(f"module file {path_text!r} is not a .py file", "give the path of a Python file")
    mod_name = f"hjsym_user_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    try:
        spec.loader.exec_module(mod)  # the user's own file, run as they asked
    except Exception as exc:
        raise InputError(f"importing {path_text!r} failed: {type(exc).__name__}: {exc}", "fix the file so that it imports") from exc
    if not hasattr(mod, name):
        candidates = sorted(
            k for k, v in vars(mod).items()
            if not k.startswith("_") and (isinstance(v, nn.Module) or (callable(v) and getattr(v, "__module__", None) == mod_name))
        )
        hint = f" (it defines: {', '.join(candidates)})" if candidates else ""
        raise InputError(f"{path_text!r} does not define {name!r}{hint}", "name a module instance or a zero-argument factory")
    obj = getattr(mod, name)
    if isinstance(obj, nn.Module):
        return obj
    if callable(obj):
        try:
            made = obj()
        except TypeError as exc:
            raise InputError(f"{name}() cannot be called without arguments: {exc}", "give a zero-argument factory or an instance") from exc
        if isinstance(made, nn.Module):
            return made
        raise ModuleFormError(f"{name}() returned {type(made).__name__}, not an nn.Module", "return an nn.Module from the factory")
    raise ModuleFormError(f"{name} is a {type(obj).__name__}, not an nn.Module or a factory", "name an nn.Module instance")
