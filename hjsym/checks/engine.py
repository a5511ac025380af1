"""Checks: two independent routes, their errors, the tolerance and the verdict.

Route A is the real torch network (its forward pass, or ``torch.autograd`` through it); route B
is a function generated from the symbolic derivation, evaluated on weights read out of the
network. :func:`compare` records an identity, :func:`bound` an inequality. The criteria:

* identity: ``max|A - B| <= tol * max(1, max|B|)`` (absolute for values of order one or less,
  relative for larger ones); ``max_rel_err = max|A - B| / max|B|``;
* bound ``lower <= A <= B``: the largest violation ``max(lower - A, A - B, 0)`` must be
  ``<= tol * max(1, max|A|)``; ``max_abs_err`` is that violation and ``max_rel_err`` the
  violation divided by ``max(1, max|A|)`` (bounds can be ~0, so they are no scale).

Non-finite values on either route fail the check and are reported as such.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch

__all__ = ["CheckResult", "CheckReport", "compare", "bound", "tolerance", "TOLERANCES", "jacobian_rows", "grad_and_hessian",
           "scalar_derivative", "run_checks", "negative_size", "torch_threads"]

#: Tolerances by check kind and dtype (float32 ones are stated separately, as they must be).
TOLERANCES = {
    "identity": {torch.float64: 1e-10, torch.float32: 1e-4},
    "autograd": {torch.float64: 1e-10, torch.float32: 2e-3},
    "bound": {torch.float64: 1e-12, torch.float32: 1e-5},
}


def tolerance(kind: str, dtype: torch.dtype) -> float:
    try:
        return TOLERANCES[kind][dtype]
    except KeyError:
        raise ValueError(f"no tolerance for kind {kind!r} and dtype {dtype}") from None


@dataclass
class CheckResult:
    """One check: what was compared, both routes, the errors, the tolerance and the verdict."""

    name: str
    title: str
    route_a: str
    route_b: str
    max_abs_err: float
    max_rel_err: float
    tolerance: float
    passed: bool
    kind: str = "identity"
    criterion: str = ""
    details: dict = field(default_factory=dict)
    example: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


@dataclass
class CheckReport:
    """All checks of one architecture on one network."""

    architecture: str
    dtype: str
    seed: int
    network: str
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; have {[c.name for c in self.checks]}")

    def to_dict(self) -> dict:
        return {
            "architecture": self.architecture,
            "dtype": self.dtype,
            "seed": self.seed,
            "network": self.network,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """A plain-text table (what ``hjsym check`` prints without ``--json``)."""
        rows = [("check", "max abs err", "max rel err", "tolerance", "result")]
        for c in self.checks:
            rows.append((c.name, _fmt(c.max_abs_err), _fmt(c.max_rel_err), _fmt(c.tolerance), "pass" if c.passed else "FAIL"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        out = [f"{self.architecture}: {self.network} ({self.dtype}, seed {self.seed})"]
        for n, r in enumerate(rows):
            out.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        failed = [c.name for c in self.checks if not c.passed]
        out.append(f"{len(self.checks) - len(failed)}/{len(self.checks)} checks pass" + (f"; failed: {', '.join(failed)}" if failed else ""))
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.2e}"


def _jsonable(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    return obj


def _max(t: torch.Tensor) -> float:
    t = t.detach()
    if t.numel() == 0:
        return 0.0
    if not bool(torch.isfinite(t).all()):
        return math.inf
    return float(t.abs().max())


def _example(a: torch.Tensor, b: torch.Tensor, point=None) -> dict:
    a, b = a.detach().reshape(-1), b.detach().reshape(-1)
    ex = {"route_a": float(a[0]), "route_b": float(b[0]), "difference": float(a[0] - b[0])}
    if point is not None:
        ex["point"] = [float(v) for v in point.detach().reshape(-1)[:8]]
    return ex


def compare(name, title, a, b, tol, route_a, route_b, details=None, point=None) -> CheckResult:
    """An identity check ``A == B`` (see the module docstring for the criterion)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"check {name}: route A has shape {tuple(a.shape)}, route B {tuple(b.shape)}")
    finite = bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())
    abs_err = _max(a - b) if finite else math.inf
    scale = _max(b) if finite else math.inf
    rel = abs_err / scale if finite and scale > 0 else (0.0 if abs_err == 0 else math.inf)
    passed = finite and abs_err <= tol * max(1.0, scale)
    details = dict(details or {})
    if not finite:
        details["non_finite"] = "route A" if not bool(torch.isfinite(a).all()) else "route B"
    return CheckResult(
        name, title, route_a, route_b, abs_err, rel, tol, passed, "identity",
        "max|A - B| <= tol * max(1, max|B|)", details, _example(a, b, point),
    )


def bound(name, title, value, upper, tol, route_a, route_b, lower=0.0, details=None, point=None) -> CheckResult:
    """An inequality check ``lower <= A <= B`` (B a derived bound)."""
    value, upper = torch.as_tensor(value), torch.broadcast_to(torch.as_tensor(upper, dtype=value.dtype), value.shape)
    finite = bool(torch.isfinite(value).all()) and bool(torch.isfinite(upper).all())
    if finite:
        viol = torch.clamp(torch.maximum(lower - value, value - upper), min=0)
        worst = _max(viol)
        scale = max(1.0, _max(value))
        rel = worst / scale  # the bound may be ~0 (sharp bounds at small eps): scale by |A|
        slack = float((upper - value).min())
    else:
        worst, scale, rel, slack = math.inf, 1.0, math.inf, math.nan
    passed = finite and worst <= tol * scale
    details = dict(details or {})
    details["min_slack"] = slack
    if not finite:
        details["non_finite"] = "route A" if not bool(torch.isfinite(value).all()) else "route B"
    return CheckResult(
        name, title, route_a, route_b, worst, rel, tol, passed, "bound",
        f"{lower} <= A <= B up to tol * max(1, max|A|)", details, _example(value, upper, point),
    )


@contextmanager
def torch_threads(n: int = 1):
    """Run the enclosed torch work on ``n`` intra-op threads, then restore the previous number.

    Checks run on one thread: their networks are small, so more threads only contend (on a
    shared 2-core machine ``check lse`` took 0.8-1.9 s on one thread and 7.7-8.4 s on two), and
    a fixed thread count keeps every reduction in the same order, so ``hjsym check`` reproduces
    the numbers a report shows to the last bit.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- autograd helpers
#: Outputs up to this size are differentiated row by row (fast to start); larger ones in batches.
ROW_LOOP_MAX = 256


def jacobian_rows(out: torch.Tensor, inp: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """``d out_m / d inp`` for every ``m`` of a 1-D ``out``: shape ``(M, *inp.shape)``.

    Small outputs use one backward pass per row; large ones batched vector-Jacobian products
    (``is_grads_batched``, which costs a one-off vmap start-up of about half a second).
    """
    if out.shape[0] > ROW_LOOP_MAX:
        eye = torch.eye(out.shape[0], dtype=out.dtype, device=out.device)
        try:
            (jac,) = torch.autograd.grad(out, inp, grad_outputs=eye, is_grads_batched=True, retain_graph=True, create_graph=create_graph)
            return jac
        except RuntimeError:
            pass
    rows = [torch.autograd.grad(out[m], inp, retain_graph=True, create_graph=create_graph)[0] for m in range(out.shape[0])]
    return torch.stack(rows)


def scalar_derivative(fn, t: float, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and ``d fn(t) / dt`` of a vector-valued ``fn`` of one scalar ``t``.

    Reverse mode one row at a time for small outputs; for large ones forward-mode AD (one pass
    with a dual number; it imports torch's compiler stack, seconds, so it is not the default).
    """
    tt = torch.tensor(float(t), dtype=dtype, requires_grad=True)
    out = fn(tt)
    if out.shape[0] <= ROW_LOOP_MAX:
        return out.detach(), jacobian_rows(out, tt).detach()
    import torch.autograd.forward_ad as fwAD

    base = torch.tensor(float(t), dtype=dtype)
    try:
        with fwAD.dual_level():
            primal, tangent = fwAD.unpack_dual(fn(fwAD.make_dual(base, torch.ones_like(base))))
        return primal.detach(), (torch.zeros_like(primal) if tangent is None else tangent).detach()
    except (RuntimeError, NotImplementedError):  # an op without a forward-AD formula
        return out.detach(), jacobian_rows(out, tt).detach()


def grad_and_hessian(fn, x: torch.Tensor):
    """Values ``(M,)``, gradients ``(M, d)`` and Hessians ``(M, d, d)`` of ``fn`` by autograd.

    ``fn`` maps a ``(M, d)`` batch to ``(M,)`` with each output depending on its own point only,
    so gradients of the summed output are per-point gradients.
    """
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    rows = []
    for i in range(x.shape[1]):
        (h,) = torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)
        rows.append(h)
    return out.detach(), g.detach(), torch.stack(rows, dim=1)


# ----------------------------------------------------------------------------- running a suite
def run_checks(arch_name: str, checks: dict, negatives: dict, run_negative, *, dtype, seed: int, network: str, only=None,
               negative_controls: bool = False, progress: bool = False, notes=()) -> CheckReport:
    """Run the suite's ``checks`` (``name -> () -> CheckResult``) into a :class:`CheckReport`.

    With ``negative_controls``, ``run_negative(name)`` runs check ``name`` on the network perturbed
    as ``negatives[name]`` says, and the result records how the perturbed network fared (it
    must fail). Every suite runs its checks through here.
    """
    from tqdm.auto import tqdm

    names = [n for n in checks if only is None or n in only]
    results = []
    for name in tqdm(names, desc=f"checking {arch_name}", disable=not progress, leave=False):
        result = checks[name]()
        if negative_controls:
            neg = run_negative(name)
            kind, size = negatives[name]
            result.details["negative_control"] = {"perturbation": f"{kind} ({size})", "max_abs_err": neg.max_abs_err, "passed": neg.passed}
        results.append(result)
    return CheckReport(arch_name, str(dtype).replace("torch.", ""), seed, network, results, list(notes))


def negative_size(name: str, size: float, dtype, autograd=()) -> float:
    """A perturbation ``size`` times the tolerance of check ``name`` (its kind read from the name)."""
    kind = "autograd" if name in autograd else ("bound" if "bound" in name else "identity")
    return size * tolerance(kind, dtype)
