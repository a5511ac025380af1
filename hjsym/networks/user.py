"""Loading a user's module: ``FILE.py:NAME``, an instance or a zero-argument factory.

The user's code runs in a guard: an exception it raises, or a ``SystemExit`` (``sys.exit(5)`` in
the file or the factory), becomes an :class:`~hjsym.InputError` ("your module raised ...") that
the command line reports with exit code 2, instead of ending hjsym without a word.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from torch import nn

from .._errors import InputError, ModuleFormError

__all__ = ["load_user_module"]


def _raised(what: str, exc: BaseException) -> InputError:
    if isinstance(exc, SystemExit):
        return InputError(f"your module called sys.exit({exc.code!r}) while {what}",
                          "do not exit in the module file or the factory (guard scripts with if __name__ == '__main__')")
    return InputError(f"your module raised {type(exc).__name__} while {what}: {exc}", "fix the module so that this works")


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
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code: any failure is theirs to fix
        sys.modules.pop(mod_name, None)
        raise _raised(f"{path_text!r} was imported", exc) from exc
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
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's factory
            raise _raised(f"{name}() was called", exc) from exc
        if isinstance(made, nn.Module):
            return made
        raise ModuleFormError(f"{name}() returned {type(made).__name__}, not an nn.Module", "return an nn.Module from the factory")
    raise ModuleFormError(f"{name} is a {type(obj).__name__}, not an nn.Module or a factory", "name an nn.Module instance")
