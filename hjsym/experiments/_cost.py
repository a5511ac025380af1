"""Resource estimates of the experiments, from their sizes (checked before an experiment runs).

Each experiment module defines ``estimate(quick) -> Estimate``: the memory of its largest
intermediate (per worker) and its work in floating-point operations, from the sizes it declares
(points, atoms, dimensions, Adam steps, seeds); :func:`hjsym._resources.require` refuses it above the
memory budget and announces a long run. The helpers here count the two kinds of work the
experiments do: log-sum-exp layers evaluated on points, and banks of such layers trained by Adam.
"""

from __future__ import annotations

from .._resources import Estimate

__all__ = ["lse_work", "bank_work", "total"]

#: Elements alive per (point, atom) pair while a log-sum-exp layer is evaluated or differentiated (logits, weights, grads).
PER_PAIR = 6


def lse_work(points: int, atoms: int, d: int, *, itemsize: int = 8, chunk_bytes: float = 128 * 2**20) -> tuple[float, float]:
    """(bytes, flops) of evaluating one LSE layer of ``atoms`` atoms at ``points`` points in ``d`` dimensions; generated
    functions stream the atoms in chunks, so the memory is at most the chunk budget plus the data."""
    pairs = points * atoms
    return min(PER_PAIR * itemsize * pairs, chunk_bytes) + itemsize * (points + atoms) * (d + 1), 4.0 * pairs * (d + 2)


def bank_work(networks: int, points: int, atoms: int, d: int, steps: int, *, itemsize: int = 4) -> tuple[float, float]:
    """(bytes, flops) of training ``networks`` LSE layers at once for ``steps`` full-batch Adam steps (forward and backward)."""
    pairs = networks * points * atoms
    return PER_PAIR * itemsize * pairs, 12.0 * pairs * (d + 2) * steps


def total(name: str, parts) -> Estimate:
    """The largest memory and the total work of ``parts`` ``[(bytes, flops), ...]``."""
    parts = list(parts)
    return Estimate(f"experiment {name}", max(p[0] for p in parts), sum(p[1] for p in parts))
