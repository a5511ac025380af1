"""Running the generated step and costate functions over a whole network.

:func:`rollout` applies the generated ``forward_step`` of a spec step after step (and layer
after layer), keeping every state and the intermediates the backward sweep needs, as autograd
keeps its saved tensors. :func:`costates` runs the generated ``adjoint_step`` backwards from
``p_K = grad Phi`` (plus the running seeds ``dPhi/ds_k`` of a loss on every step's output):
the discrete costate recursion ``p_k = p_{k+1} + d_s(h H)``, the parameter gradients
``sum_k d_theta(h H)`` and the input gradients, which seed the layer below. Nothing here
differentiates: every derivative is in the generated code.

Shapes: ``x`` is ``(K, B, n_x)``; a state part ``(B, d)``; states are lists over steps ``0..K``
of ``{part: (B, d)}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Trajectory", "Backward", "rollout", "costates", "layer_inputs"]


@dataclass
class Trajectory:
    """One layer's run: ``states[k]`` for ``k = 0..K`` and the intermediates ``saved[k]`` of step k."""

    states: list
    saved: list
    inputs: object  # (K, B, n_x) or None
    stacked: dict | None = None  # {name: (K, B, ...)}: the saved intermediates of all steps, preallocated (saved[k] are views)


@dataclass
class Backward:
    """One layer's backward sweep: ``costates[k]`` for ``k = 0..K``, gradients of its controls, of its inputs."""

    costates: list
    grads: object  # dict (shared weights: summed over steps) or a list of dicts (one per step)
    input_grads: list | None  # per step k = 0..K-1, {input name: (B, n_x)}


def _call(fn, values: dict, checked: bool = True) -> dict:
    """Call a generated program by argument name; ``checked=False`` skips its argument validation."""
    out = (fn if checked else fn.unchecked)(**{a: values[a] for a in fn.arg_names})
    if not isinstance(out, tuple):
        out = (out,)
    return dict(zip(fn.outputs, out))


def _as_tensor(h, like: dict):
    """The step size as a 0-d tensor of the states' dtype, once (not converted again at every step)."""
    ref = next(iter(like.values()))
    return h if isinstance(h, torch.Tensor) else torch.tensor(float(h), dtype=ref.dtype, device=ref.device)


@torch.no_grad()
def rollout(fns: dict, spec, layer, x, s0: dict, h: float, n_steps: int | None = None) -> Trajectory:
    """Run the generated ``forward_step`` from ``s0`` over ``x`` (or ``n_steps`` steps with no input).

    Without autograd's tape (every derivative is in the generated code), whether or not the
    controls require grad."""
    dyn = spec.dynamics
    step = fns["forward_step"]
    parts = list(s0)
    K = x.shape[0] if x is not None else n_steps
    states, saved = [dict(s0)], []
    stacked: dict = {}
    h = _as_tensor(h, s0)
    for k in range(K):
        values = {**layer.controls_at(k), **states[-1], dyn.step_size: h}
        if x is not None:
            values[dyn.inputs[0]] = x[k]
        out = _call(step, values, checked=k == 0)
        states.append({p: out[f"{p}_next"] for p in parts})
        keep = {}
        for n, v in out.items():
            if n.endswith("_next"):
                continue
            if k == 0:  # one buffer over all steps: the backward sweep reads it whole, without stacking
                stacked[n] = v.new_empty((K,) + tuple(v.shape))
            stacked[n][k].copy_(v)
            keep[n] = stacked[n][k]
        saved.append(keep)
    return Trajectory(states, saved, x, stacked)


@torch.no_grad()
def costates(fns: dict, spec, layer, traj: Trajectory, h: float, final_seed: dict, running_seed: list | None = None,
             inputs: bool = False) -> Backward:
    """The generated costate recursion of one layer, seeded with ``grad Phi``.

    ``final_seed`` is ``dPhi/ds_K`` per part; ``running_seed[k]`` (``k = 0..K``, entries may be
    ``None``) adds ``dPhi/ds_k`` where the loss sees the state directly (outputs, or a layer above).
    With weights shared by every step (a recurrent cell) each step returns the adjoints its
    parameter gradients need, and ``parameter_gradient_saved`` contracts them over all steps and
    samples at once; with weights per step (a ResNet) ``adjoint_step`` returns each step's
    gradients. ``inputs=True`` also returns ``dPhi/dx_k``.
    """
    dyn = spec.dynamics
    shared = layer.shared
    if shared:
        step = fns["costate_step_saved_inputs" if inputs else "costate_step_saved"]
    else:
        step = fns["adjoint_step_inputs" if inputs else "adjoint_step"]
    costate_name = {p: (spec.costate if len(traj.states[0]) == 1 else f"{spec.costate}_{p}") for p in traj.states[0]}
    K = len(traj.saved)

    def seeded(k, p):
        add = {}
        if running_seed is not None and running_seed[k] is not None:
            add = running_seed[k]
        return {q: p[q] + add[q] if q in add else p[q] for q in p}

    p = seeded(K, {q: final_seed[q] for q in traj.states[0]})
    h = _as_tensor(h, traj.states[0])
    out_costates = [None] * (K + 1)
    out_costates[K] = p
    grads = None if shared else [None] * K
    input_grads = [None] * K if inputs else None
    kept = [None] * K
    for k in range(K - 1, -1, -1):
        values = {**layer.controls_at(k), **traj.states[k], **traj.saved[k], dyn.step_size: h}
        values.update({costate_name[q]: p[q] for q in p})
        if traj.inputs is not None:
            values[dyn.inputs[0]] = traj.inputs[k]
        out = _call(step, values, checked=k == K - 1)
        p = seeded(k, {q: out[f"{costate_name[q]}_k"] for q in p})
        out_costates[k] = p
        if shared:
            kept[k] = {n: v for n, v in out.items() if not n.startswith("d_") and not n.endswith("_k")}
        else:
            grads[k] = {n[2:]: v for n, v in out.items() if n.startswith("d_") and n[2:] in dyn.controls}
        if input_grads is not None:
            input_grads[k] = {n: out[f"d_{n}"] for n in dyn.inputs}
    if shared:
        pg = fns["parameter_gradient_saved"]
        values = {**layer.controls, dyn.step_size: h}
        for q in traj.states[0]:
            values[q] = torch.stack([traj.states[k][q] for k in range(K)])
            values[costate_name[q]] = torch.stack([out_costates[k + 1][q] for k in range(K)])
        for n in traj.saved[0]:
            values[n] = traj.stacked[n] if traj.stacked else torch.stack([traj.saved[k][n] for k in range(K)])
        for n in kept[0]:
            values[n] = torch.stack([kept[k][n] for k in range(K)])
        if traj.inputs is not None:
            values[dyn.inputs[0]] = traj.inputs
        out = _call(pg, values)
        grads = {n[2:]: v for n, v in out.items()}
    return Backward(out_costates, grads, input_grads)


def layer_inputs(traj: Trajectory, part: str) -> torch.Tensor:
    """The sequence a layer passes up: its ``part`` at steps ``1..K`` as ``(K, B, d)``."""
    return torch.stack([s[part] for s in traj.states[1:]])
