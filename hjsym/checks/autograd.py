"""Route A by autograd: gradients, Hessians and time derivatives of real modules."""

from __future__ import annotations

import torch

__all__ = ["ROW_LOOP_MAX", "jacobian_rows", "scalar_derivative", "grad_and_hessian"]

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
