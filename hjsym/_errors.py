"""Errors that name the problem and the fix.

Every error hjsym raises on bad input is an :class:`HJSymError` carrying two parts, ``problem``
and ``fix``; the CLI prints them on one line and exits with code 2.
"""

from __future__ import annotations

import errno as _errno

__all__ = ["HJSymError", "SpecError", "InputError", "ModuleFormError", "UnknownArchitectureError", "OutputError", "ResourceError",
           "HJSymWarning"]


class HJSymError(Exception):
    """Base class: ``problem`` says what is wrong, ``fix`` what to change."""

    def __init__(self, problem: str, fix: str):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}; {fix}")

    def __reduce__(self):  # survives pickling (errors raised in report worker processes)
        return (type(self), (self.problem, self.fix))


class SpecError(HJSymError, ValueError):
    """An architecture spec is inconsistent (unbound symbols, unsafe or malformed expressions)."""


class InputError(HJSymError, ValueError):
    """A value passed to hjsym is out of range or of the wrong shape or dtype."""


class ModuleFormError(HJSymError, TypeError):
    """A torch module is not of the form an architecture's checks can read weights from."""


class UnknownArchitectureError(HJSymError, KeyError):
    """No architecture is registered under the given name."""

    def __str__(self):  # KeyError would otherwise quote the message
        return f"{self.problem}; {self.fix}"


class OutputError(HJSymError, OSError):
    """A file or folder cannot be written: the path is a file, read-only, on a full disk, ... (also an ``OSError``)."""

    @classmethod
    def of(cls, path, exc: OSError) -> "OutputError":
        """The error for ``exc`` raised while writing ``path``, with the fix its errno calls for."""
        code = getattr(exc, "errno", None)
        where = getattr(exc, "filename", None) or path
        reason = exc.strerror or str(exc)
        if code == _errno.ENOSPC or code == getattr(_errno, "EDQUOT", None):
            fix = "free disk space, or write elsewhere (--out DIR)"
        elif code in (_errno.EACCES, _errno.EPERM, _errno.EROFS):
            fix = "write to a folder you can write (--out DIR), or change its permissions"
        elif code in (_errno.EEXIST, _errno.ENOTDIR):
            fix = f"{where} (or a folder above it) is a file, not a folder: give a folder path (--out DIR) or move the file"
        elif code == _errno.EISDIR:
            fix = f"{where} is a folder: give a file path"
        else:
            fix = "check the path and the disk, or write elsewhere (--out DIR)"
        err = cls(f"cannot write {path}: {reason}", fix)
        err.errno, err.strerror, err.filename = code, reason, str(path)
        return err

    def __str__(self):  # OSError would otherwise print its errno and file name instead
        return f"{self.problem}; {self.fix}"


class ResourceError(HJSymError):
    """A computation would need more memory than the budget allows (the estimate and the override are in the message)."""


class HJSymWarning(UserWarning):
    """Base class of hjsym's warnings (one line each)."""
