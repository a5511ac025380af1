"""Errors that name the problem and the fix.

Every error hjsym raises on bad input is an :class:`HJSymError` carrying two parts, ``problem``
and ``fix``; the CLI prints them on one line and exits with code 2.
"""

from __future__ import annotations

__all__ = ["HJSymError", "SpecError", "InputError", "ModuleFormError", "UnknownArchitectureError"]


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
