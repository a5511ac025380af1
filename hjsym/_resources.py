"""Resource estimates and the memory budget: refuse work that would not fit, before it starts.

Before the checks of a module and before an experiment, hjsym estimates the memory of the
largest intermediate and the time from the sizes involved (:class:`Estimate`). Above the memory
budget the work is refused with a :class:`~hjsym.ResourceError` giving the estimate and the
override; a long predicted time is announced with one warning line (:class:`LongRunWarning`)
instead of running for minutes without a word.

The budget is, in order: the ``max_memory`` passed (``--max-memory 8G``), ``$HJSYM_MAX_MEMORY``,
else half the memory the system reports available (``MemAvailable``; 4 GiB where it reports
nothing). Times are predicted at :data:`FLOP_RATE` floating-point operations per second (an
order of magnitude, not a benchmark).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass

from ._errors import HJSymWarning, InputError, ResourceError

__all__ = ["Estimate", "LongRunWarning", "FLOP_RATE", "LONG_RUN_SECONDS", "memory_budget", "parse_size", "format_size", "require",
           "available_memory"]

#: Floating-point operations per second the time predictions assume: the experiments' full runs (``hjsym experiment all``, 2
#: workers on a 2-core machine) took about a quarter of what 1e9 would predict.
FLOP_RATE = 4e9
#: Predicted runs longer than this (seconds) are announced.
LONG_RUN_SECONDS = 60.0
_FALLBACK = 4 * 2**30
_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20, "g": 2**30, "gb": 10**9,
          "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


class LongRunWarning(HJSymWarning):
    """A computation is predicted to take long (the estimate, the sizes and how to make it shorter)."""


@dataclass(frozen=True)
class Estimate:
    """What a computation needs: ``bytes`` of its largest intermediate and ``flops``, for ``what`` (a line naming the sizes)."""

    what: str
    bytes: float
    flops: float = 0.0

    @property
    def seconds(self) -> float:
        """Predicted time at :data:`FLOP_RATE`."""
        return self.flops / FLOP_RATE

    def to_dict(self) -> dict:
        return {"what": self.what, "bytes": self.bytes, "seconds": self.seconds}


def parse_size(text) -> int:
    """``"8G"``, ``"512MiB"``, ``"1.5GB"`` or a number of bytes -> bytes (an :class:`~hjsym.InputError` otherwise)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        if m is None or m[2].lower() not in _UNITS:
            raise InputError(f"memory size {text!r} is not a size", "write e.g. 8G, 512M or 2GiB (K, M, G, T: powers of 1024)")
        value, unit = float(m[1]), m[2].lower()
    size = value * _UNITS[unit]
    if not size > 0 or size > 2**62:
        raise InputError(f"memory size {text!r} is out of range", "give a positive size, e.g. 8G")
    return int(size)


def format_size(n: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


def available_memory() -> int | None:
    """Bytes the system reports available (``MemAvailable`` on Linux, free physical pages elsewhere), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget(max_memory=None) -> tuple[int, str]:
    """The budget in bytes and where it comes from (see the module docstring)."""
    if max_memory is not None:
        return parse_size(max_memory), "--max-memory"
    env = os.environ.get("HJSYM_MAX_MEMORY")
    if env:
        return parse_size(env), "HJSYM_MAX_MEMORY"
    avail = available_memory()
    if avail is None:
        return _FALLBACK, "the default (the system reports no free memory)"
    return avail // 2, f"half the available memory ({format_size(avail)})"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2g} h"
    if seconds >= 60:
        return f"{seconds / 60:.2g} min"
    return f"{seconds:.2g} s"


def require(estimate: Estimate, max_memory=None, *, smaller: str = "use smaller sizes") -> None:
    """Refuse ``estimate`` above the memory budget (:class:`~hjsym.ResourceError` with the override); announce a long run."""
    budget, source = memory_budget(max_memory)
    if estimate.bytes > budget:
        need = format_size(estimate.bytes * 1.25)
        raise ResourceError(
            f"{estimate.what}: the largest intermediate needs about {format_size(estimate.bytes)} "
            f"(predicted time {_duration(estimate.seconds)}), above the memory budget {format_size(budget)} ({source})",
            f"{smaller}, or raise the budget with --max-memory {need.replace(' ', '').replace('iB', '')} (or HJSYM_MAX_MEMORY)")
    if estimate.seconds > LONG_RUN_SECONDS:
        warnings.warn_explicit(f"{estimate.what}: predicted to take about {_duration(estimate.seconds)} "
                               f"(largest intermediate {format_size(estimate.bytes)}); {smaller} to make it shorter",
                               LongRunWarning, "hjsym", 0, module="hjsym", registry=None)
