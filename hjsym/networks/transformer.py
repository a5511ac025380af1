"""``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer`` read as composites.

Route A is the whole layer's forward. Route B recomposes it in the layer's own order
(``norm_first`` or post-norm): every attention from the derivation (the Gibbs weights as the
gradient of the generated log-sum-exp, as for ``nn.MultiheadAttention``), and the feed-forward
and layer norms, which the derivation does not cover, evaluated from their read-out weights with
``torch.nn.functional`` (the structural part; its gap to a Hopf-Cole step is stated, not derived:
each ReLU unit is a Hopf-Lax step, see ``softplus-mlp``; GELU is open). A layer whose parts hjsym
cannot read (another activation, a replaced submodule, an overridden ``forward``) is refused by
name. Dropout is inactive in the eval mode checked.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .._errors import ModuleFormError
from .attention import causal_mask, read_mha
from .readout import Readout

__all__ = ["TransformerLayerReadout", "read_transformer_layer", "COMPOSITES"]

COMPOSITES = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
_ACTIVATIONS = {F.relu: "relu", F.gelu: "gelu"}


def _activation(act) -> str | None:
    if isinstance(act, nn.ReLU):
        return "relu"
    if isinstance(act, nn.GELU) and act.approximate == "none":
        return "gelu"
    return _ACTIVATIONS.get(act)


@dataclass
class _Norm:
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    eps: float

    def __call__(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)

    def terms(self, x, s):
        """Magnitude of the normalised value's terms: the input's terms divided by the spread, times ``|weight|``."""
        sd = (x.var(-1, keepdim=True, unbiased=False) + self.eps).sqrt()
        w = 1.0 if self.weight is None else self.weight.abs()
        return w * (s + (x - x.mean(-1, keepdim=True)).abs()) / sd + (0.0 if self.bias is None else self.bias.abs())


class TransformerLayerReadout(Readout):
    """A transformer layer: its attentions (``MHAReadout``), feed-forward weights and norms, and its order of operations."""

    def __init__(self, module: nn.Module, dtype):
        self.module = module
        self.decoder = isinstance(module, nn.TransformerDecoderLayer)
        self.norm_first = bool(module.norm_first)
        self.batch_first = bool(module.self_attn.batch_first)
        self.activation = _activation(module.activation)
        self.self_attn = read_mha(module.self_attn, dtype)
        self.cross_attn = read_mha(module.multihead_attn, dtype) if self.decoder else None
        self.W1, self.b1 = module.linear1.weight.detach(), None if module.linear1.bias is None else module.linear1.bias.detach()
        self.W2, self.b2 = module.linear2.weight.detach(), None if module.linear2.bias is None else module.linear2.bias.detach()
        names = ("norm1", "norm2", "norm3") if self.decoder else ("norm1", "norm2")
        self.norms = [_Norm(getattr(module, n).weight, getattr(module, n).bias, getattr(module, n).eps) for n in names]
        self.norms = [_Norm(None if n.weight is None else n.weight.detach(), None if n.bias is None else n.bias.detach(), n.eps)
                      for n in self.norms]
        self.modes = ("self", "causal")
        self.embed_dim = module.self_attn.embed_dim
        kind = "decoder" if self.decoder else "encoder"
        self.notes = (f"nn.Transformer{kind.title()}Layer checked as a composite: the attention{'s' if self.decoder else ''} derived "
                      f"(Gibbs weights from the generated LSE), the feed-forward (linear1 -> {self.activation} -> linear2) and "
                      f"the layer norms structural (evaluated from their weights; not Hopf-Cole steps{': each ReLU unit is a Hopf-Lax step' if self.activation == 'relu' else ', GELU is an open class'}); "
                      "dropout inactive in eval mode",)

    def describe(self) -> str:
        kind = "Decoder" if self.decoder else "Encoder"
        return (f"nn.Transformer{kind}Layer(d_model={self.embed_dim}, nhead={self.self_attn.num_heads}, "
                f"dim_feedforward={self.W1.shape[0]}, activation={self.activation}, norm_first={self.norm_first}, "
                f"batch_first={self.batch_first})")

    # ------------------------------------------------------------------ route A
    def run(self, x, memory, mode: str):
        lay = (lambda t: t) if self.batch_first else (lambda t: t.transpose(0, 1))
        mask = causal_mask(x.shape[1], x.dtype) if mode == "causal" else None
        if self.decoder:
            out = self.module(lay(x), lay(memory), tgt_mask=mask)
        else:
            out = self.module(lay(x), src_mask=mask)
        return lay(out)

    # ------------------------------------------------------------------ route B
    def recompose(self, attention, x, memory, mode: str):
        """Route B: ``attention(readout, q, kv, mode) -> (value, terms)`` for every attention, the rest structural.

        Returns the layer's output and the magnitude of its terms.
        """

        def ff(z, s):
            a = F.linear(z, self.W1, self.b1)
            sa_ = s @ self.W1.abs().T + (0.0 if self.b1 is None else self.b1.abs())
            h = F.relu(a) if self.activation == "relu" else F.gelu(a)
            out = F.linear(h, self.W2, self.b2)  # relu and gelu move their argument's terms by at most their size
            return out, (sa_ + h.abs()) @ self.W2.abs().T + (0.0 if self.b2 is None else self.b2.abs())

        def block(x, s, n_norm, fn):
            norm = self.norms[n_norm]
            if self.norm_first:
                z = norm(x)
                y, sy = fn(z, norm.terms(x, s))
                return x + y, s + sy
            y, sy = fn(x, s)
            return norm(x + y), norm.terms(x + y, s + sy)

        def self_block(z, s):
            return attention(self.self_attn, z, z, "causal" if mode == "causal" else "self")

        def cross_block(z, s):
            return attention(self.cross_attn, z, memory, "cross")

        s = x.abs()
        x, s = block(x, s, 0, self_block)
        if self.decoder:
            x, s = block(x, s, 1, cross_block)
        return block(x, s, len(self.norms) - 1, ff)


def read_transformer_layer(module: nn.Module, dtype) -> TransformerLayerReadout:
    """Read an ``nn.TransformerEncoderLayer`` / ``DecoderLayer`` (exactly those classes) as a composite."""
    kind = next(k for k in COMPOSITES if isinstance(module, k))
    if type(module).forward is not kind.forward:
        raise ModuleFormError(f"{type(module).__name__} overrides the forward of nn.{kind.__name__}: hjsym cannot know its order of "
                              "operations", f"pass the nn.{kind.__name__} itself, or its self_attn")
    m = copy.deepcopy(module).to(dtype).eval()
    for name in ("linear1", "linear2"):
        if not isinstance(getattr(m, name), nn.Linear):
            raise ModuleFormError(f"{type(m).__name__}.{name} is {type(getattr(m, name)).__name__}, not an nn.Linear: a feed-forward "
                                  "hjsym does not read", f"keep {name} an nn.Linear (or pass the attention alone, .self_attn)")
    for name in ("norm1", "norm2") + (("norm3",) if isinstance(m, nn.TransformerDecoderLayer) else ()):
        if not isinstance(getattr(m, name), nn.LayerNorm):
            raise ModuleFormError(f"{type(m).__name__}.{name} is {type(getattr(m, name)).__name__}, not an nn.LayerNorm",
                                  f"keep {name} an nn.LayerNorm (or pass the attention alone, .self_attn)")
    if _activation(m.activation) is None:
        act = getattr(m.activation, "__name__", type(m.activation).__name__)
        raise ModuleFormError(f"{type(m).__name__}.activation is {act}: the composite reads relu or gelu",
                              "use activation='relu' or 'gelu' (or pass the attention alone, .self_attn)")
    return TransformerLayerReadout(m, dtype)

