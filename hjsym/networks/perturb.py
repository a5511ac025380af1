"""Perturbed copies of real networks: the negative controls of every check, in one registry.

A negative control moves route A (the real module) and keeps route B (the generated functions
on the weights read out of the *original* module): a check that cannot fail on it tests
nothing. Every perturbation returns a deep copy; the copy's structure, parameters and
attributes are those of the original (most perturbations are forward hooks), so a readout of
the copy reads the same weights and only the forward pass is off.

``perturb(module, kind, delta, target=None)``; ``target`` names a submodule (``"block.ffn"``)
whose output is perturbed instead of the module's. The kinds (``x`` the input, ``y`` the output):

* ``offset``: ``y + delta``;
* ``bump``: ``y + delta sum_i sin(x_i)`` (smooth and x-dependent: moves every derivative);
* ``quadratic``: ``y + delta |x|^2`` (extra curvature ``2 delta``);
* ``temperature``: the forward pass at temperature ``eps (1 + delta)`` while the module still
  reports ``eps`` (an LSE-type module with an ``eps``/``epsilon``/``temperature`` attribute);
* ``output-sin``: ``y + delta sin(y)`` (the first output of a module returning a tuple);
* ``activations``: every activation module returns ``act(z) + delta sin(z)``;
* ``attention-weights``: every ``nn.MultiheadAttention`` returns its weights at temperature
  ``1 / (1 + delta)`` (renormalised);
* ``weights``: every parameter moved by ``delta u``, ``u`` uniform in [-1, 1] (seeded);
* ``input-shift``: the module applied to ``x + delta`` (for the travel-time functional: the bead starts
  ``delta`` deeper, i.e. with speed ``sqrt(2 g delta)``; a different problem with a different minimiser);
* ``scale``: ``y (1 + delta)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from .lse import get_eps, set_eps

__all__ = ["PERTURBATIONS", "perturb", "register_perturbation"]

#: name -> function (module copy, delta, seed) -> None that installs the perturbation on the copy
PERTURBATIONS: dict[str, Callable] = {}

ACTIVATION_TYPES = (nn.Softplus, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU)


def register_perturbation(name: str):
    def deco(fn):
        PERTURBATIONS[name] = fn
        return fn

    return deco


def perturb(module: nn.Module, kind: str, delta: float, *, target: str | None = None, seed: int = 0) -> nn.Module:
    """A perturbed deep copy of ``module`` (see the module docstring for the kinds)."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; use one of {', '.join(PERTURBATIONS)}")
    out = copy.deepcopy(module)
    where = out if target is None else out.get_submodule(target)
    PERTURBATIONS[kind](where, float(delta), seed)
    return out


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _replace_first(out, new):
    return (new,) + tuple(out[1:]) if isinstance(out, tuple) else new


def _output_hook(m: nn.Module, shift):
    """Add ``shift(x, y)`` to the (first) output ``y``, reshaped to its shape."""

    def hook(mod, inp, out):
        y = _first(out)
        return _replace_first(out, y + shift(inp[0], y).reshape(y.shape))

    m.register_forward_hook(hook)


@register_perturbation("offset")
def _offset(m, delta, seed):
    _output_hook(m, lambda x, y: torch.full_like(y, delta))


@register_perturbation("bump")
def _bump(m, delta, seed):
    _output_hook(m, lambda x, y: delta * torch.sin(x).sum(-1))


@register_perturbation("quadratic")
def _quadratic(m, delta, seed):
    _output_hook(m, lambda x, y: delta * (x * x).sum(-1))


@register_perturbation("output-sin")
def _output_sin(m, delta, seed):
    _output_hook(m, lambda x, y: delta * torch.sin(y))


@register_perturbation("temperature")
def _temperature(m, delta, seed):
    declared = get_eps(m)

    def before(mod, inp):
        set_eps(mod, declared * (1 + delta))

    def after(mod, inp, out):
        set_eps(mod, declared)

    m.register_forward_pre_hook(before)
    m.register_forward_hook(after)


@register_perturbation("activations")
def _activations(m, delta, seed):
    for sub in m.modules():
        if isinstance(sub, ACTIVATION_TYPES):
            sub.register_forward_hook(lambda mod, inp, out: out + delta * torch.sin(inp[0]))


@register_perturbation("attention-weights")
def _attention_weights(m, delta, seed):
    def hook(mod, inp, out):
        attn, weights = out
        if weights is None:
            return out
        sharpened = weights ** (1 + delta)
        return attn, sharpened / sharpened.sum(-1, keepdim=True)

    for sub in m.modules():
        if isinstance(sub, nn.MultiheadAttention):
            sub.register_forward_hook(hook)


@register_perturbation("weights")
def _weights(m, delta, seed):
    gen = torch.Generator().manual_seed(10_007 + seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(delta * (2 * torch.rand(p.shape, generator=gen, dtype=torch.float64) - 1).to(p.dtype))


@register_perturbation("input-shift")
def _input_shift(m, delta, seed):
    m.register_forward_pre_hook(lambda mod, inp: (inp[0] + delta,) + tuple(inp[1:]))


@register_perturbation("scale")
def _scale(m, delta, seed):
    _output_hook(m, lambda x, y: delta * y)
