"""mambapy's Mamba block read for its selective scan (the ``mamba`` spec); the rest of the block is named as outside.

A ``MambaBlock`` computes ``out_proj(ssm(silu(conv1d(in_proj(x)))) * silu(z))`` with
``ssm(x) = C h + D x`` and the scan ``h' = exp(Delta A) h + Delta B(x) x``. Route A is the block's
own ``ssm`` method on the scan's input (the copy runs mambapy's sequential scan, ``config.pscan =
False``; its states are the tensors the scan stacks, recorded as it runs, so autograd through them is
autograd through the block's own loop). The scan starts from ``h = 0``: there is no initial state to
differentiate. Route B reads ``A_log``, ``x_proj`` (the Delta and B rows) and ``dt_proj`` into the
spec's controls. Outside the SSM, and not checked: ``in_proj``, ``conv1d`` and the SiLU before the
scan, the readout ``C h + D x`` (the C rows of ``x_proj``, ``D``), the SiLU gate ``z``, ``out_proj``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .._errors import ModuleFormError
from .control import ControlLayer, ControlReadout

__all__ = ["scan_controls", "is_mamba_block", "mamba_blocks", "read_mamba_block", "refuse_or_read_mamba"]


def scan_controls(A_log, x_proj_weight, dt_proj_weight, dt_proj_bias, dt_rank: int) -> dict:
    """The ``mamba`` spec's controls from a block's scan parameters (differentiable); state ``i = e N + n``."""
    E, N = A_log.shape
    W_dt, W_B = x_proj_weight[:dt_rank], x_proj_weight[dt_rank:dt_rank + N]
    return {
        "A": -torch.exp(A_log).reshape(-1),
        "W_d": (dt_proj_weight @ W_dt).repeat_interleave(N, dim=0),
        "b_d": dt_proj_bias.repeat_interleave(N),
        "W_B": W_B.repeat(E, 1),
        "S": torch.eye(E, dtype=A_log.dtype, device=A_log.device).repeat_interleave(N, dim=0),
    }


def is_mamba_block(m: nn.Module) -> bool:
    return type(m).__name__ == "MambaBlock" and (type(m).__module__ or "").startswith("mambapy")


def mamba_blocks(m: nn.Module) -> list[str]:
    return [n or "<root>" for n, c in m.named_modules() if is_mamba_block(c)]


class _StackRecorder(TorchFunctionMode):
    """Records the list of tensors the scan stacks (its states, in the autograd graph of its own loop)."""

    def __init__(self, shape):
        super().__init__()
        self.shape, self.seen = tuple(shape), None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.stack and self.seen is None and args and isinstance(args[0], (list, tuple)) and args[0] \
                and tuple(args[0][0].shape) == self.shape:
            self.seen = list(args[0])
        return func(*args, **kwargs)


def read_mamba_block(m: nn.Module, dtype):
    """The ``ControlReadout`` of a mambapy ``MambaBlock`` (a copy in ``dtype``) for the ``mamba`` spec."""
    m = copy.deepcopy(m).to(dtype).eval()
    cfg = copy.copy(m.config)
    if getattr(cfg, "use_cuda", False):
        raise ModuleFormError("the MambaBlock uses mamba_ssm's CUDA scan", "build it with MambaConfig(use_cuda=False)")
    if getattr(m, "dt_layernorm", None) is not None:
        raise ModuleFormError("the MambaBlock normalises Delta, B and C (inner_layernorms=True) before the scan",
                              "build it with inner_layernorms=False")
    cfg.pscan = False  # the sequential scan: its states are tensors of one loop
    m.config = cfg
    R, (E, N) = cfg.dt_rank, m.A_log.shape
    names = {"A_log": "A_log", "x_proj.weight": "x_proj.weight", "dt_proj.weight": "dt_proj.weight", "dt_proj.bias": "dt_proj.bias"}
    params = {n: dict(m.named_parameters())[n].detach() for n in names}

    def param_map(p):
        return scan_controls(p["A_log"], p["x_proj.weight"], p["dt_proj.weight"], p["dt_proj.bias"], R)

    layer = ControlLayer(params, param_map)

    originals: dict = {}

    def forward(x, s0):
        hs = run(x)
        return torch.stack(hs), [{"s": hs[-1]}]

    def stepwise(x, s0):
        hs = run(x)
        return [[{"s": h} for h in hs]]

    def run_keeping(x):  # stepwise states are views of the scan's own tensors: differentiate with respect to those
        K, B = x.shape[0], x.shape[1]
        rec = _StackRecorder((B, E, N))
        before = torch.get_default_dtype()
        torch.set_default_dtype(x.dtype)  # mambapy makes its initial state with torch.zeros in the default dtype
        try:
            with rec:
                m.ssm(x.transpose(0, 1), None)
        finally:
            torch.set_default_dtype(before)
        views = [h.reshape(B, E * N) for h in rec.seen]
        originals.clear()
        originals.update({id(v): h for v, h in zip(views, rec.seen)})
        return views

    run = _checked(run_keeping, K_of=lambda x: x.shape[0])

    desc = f"mambapy MambaBlock(d_model={cfg.d_model}, d_inner={E}, d_state={N}, dt_rank={R}): its selective scan"
    notes = [f"MambaBlock: its selective scan is checked, from h = 0 on the scan's input (route A: the block's own ssm(), "
             "sequential); outside the SSM and not checked: in_proj, conv1d and the SiLU before the scan, the readout C h + D x, "
             "the SiLU gate z, out_proj"]
    if dtype == torch.float64:
        notes.append("mambapy's ssm() takes A = -exp(A_log.float()) and D.float(): in float64 its scan carries the float32 rounding "
                     "of A (about 1e-8 relative), far above float64's; --dtype float32 checks it at its own precision")
    out = ControlReadout(m, [layer], 1.0, ("s",), "s", E * N, E, None, desc, forward, stepwise, notes, {0: names},
                         initial_state=False)
    out.originals = originals
    return out


def _checked(fn, K_of):
    """``fn(x)`` with a refusal when the block did not run mambapy's sequential scan (K stacked states)."""

    def run(x):
        try:
            out = fn(x)
        except TypeError:  # nothing recorded
            out = None
        if out is None or len(out) != K_of(x):
            raise ModuleFormError("the MambaBlock's ssm() did not run its sequential scan as mambapy writes it",
                                  "use mambapy's MambaBlock unchanged")
        return out

    return run


def refuse_or_read_mamba(module: nn.Module, spec, dtype):
    """For a module holding mambapy Mamba blocks: the block's scan for ``mamba``, a refusal naming what to pass otherwise
    (None when the module holds none, or the spec is neither ``mamba`` nor ``ssm-selective``)."""
    blocks = mamba_blocks(module) if isinstance(module, nn.Module) else []
    if not blocks or spec.name not in ("mamba", "ssm-selective"):
        return None
    if spec.name == "ssm-selective":
        raise ModuleFormError("a Mamba block's selective scan has an input-dependent B and the hold Delta B, not the zero-order hold "
                              "with a fixed B of 'ssm-selective'", "check it with hjsym check mamba --module ...")
    if not is_mamba_block(module):
        raise ModuleFormError(f"{type(module).__name__} contains {len(blocks)} MambaBlock ({', '.join(blocks[:4])}) and other layers",
                              f"pass one block: model.{blocks[0]}")
    return read_mamba_block(module, dtype)
