"""Adapters for the attention modules researchers use: Hugging Face transformers and timm.

Each adapter reads the module's projections (never re-initialising anything) into a
:class:`~hjsym.networks.attention.ProjectedAttention` and runs the module itself for route A,
with an explicit additive mask (so that the eager and SDPA implementations compute the same
thing) and whatever else its forward needs (Llama's rotary position embeddings, generated from the
module's own config). The libraries are optional: nothing here imports them at module level, and a
module is recognised by its class's import path, so a class written exactly as the library writes
it (a copy) is read the same way.

* ``GPT2Attention`` (``transformers``): fused ``c_attn`` (``Conv1D``, ``y = x W + b``), ``c_proj``;
  causal by default, checked with and without the causal mask;
* ``BertSelfAttention``: ``query``/``key``/``value`` linears, no output projection (that is
  ``BertSelfOutput``, outside the attention);
* ``LlamaAttention``: rotary positions on queries and keys (the Gibbs identity holds for any
  logits), grouped-query heads (a group of query heads shares one key and value head);
* timm's ViT ``Attention``: fused ``qkv`` linear, ``scale``, ``proj``; its ``q_norm``/``k_norm``/
  ``norm`` must be identities and ``gate`` absent (they are refused by name otherwise).
"""

from __future__ import annotations

import copy
import operator

import torch
import torch.fx as fx
from torch import nn

from .._errors import ModuleFormError
from .attention import L2Attention, SDPA, AttentionReadout, ProjectedAttention, TinyTransformer, causal_mask, read_mha
from .readout import ModuleReadout
from .trace import describe, forward_parameters, trace
from .transformer import COMPOSITES, read_transformer_layer

__all__ = ["ADAPTERS", "adapter_for", "HFAttention", "TimmAttention", "WrappedAttention", "read_attention"]


def _library_class(module: nn.Module) -> str:
    """``"transformers.GPT2Attention"``-style name of the module's class (by import path, not isinstance)."""
    cls = type(module)
    lib = (cls.__module__ or "").split(".")[0]
    return f"{lib}.{cls.__name__}"


def _det(t):
    return None if t is None else t.detach().clone()


def _additive(mode: str, B: int, L: int, S: int, dtype) -> torch.Tensor:
    """The 4-D additive mask transformers expects, ``(B, 1, L, S)``: zeros, or ``-inf`` above the diagonal."""
    m = causal_mask(L, dtype)[:, :S] if mode.endswith("causal") else torch.zeros(L, S, dtype=dtype)
    return m.expand(B, 1, L, S)


class HFAttention(ProjectedAttention):
    """A transformers attention module: projections read out, the module called with an explicit 4-D mask."""

    def __init__(self, module, kind: str, **kw):
        super().__init__(module, **kw)
        self.kind = kind

    def run(self, q, k, v, mode):
        B, L, _ = q.shape
        extra = {"position_embeddings": self.rotary_module(L, q.dtype, batch=B)} if self.kind == "llama" else {}
        out = self.module(q, attention_mask=_additive(mode, B, L, L, q.dtype), **extra)
        return out[0] if isinstance(out, tuple) else out


def _gpt2(m: nn.Module, dtype):
    if getattr(m, "is_cross_attention", False):
        raise ModuleFormError("GPT2Attention(is_cross_attention=True) reads keys from encoder states", "check the self-attention module")
    if getattr(m, "reorder_and_upcast_attn", False):
        raise ModuleFormError("GPT2Attention with reorder_and_upcast_attn computes its weights in float32 whatever the dtype",
                              "use reorder_and_upcast_attn=False")
    E, H, d = m.embed_dim, m.num_heads, m.head_dim
    W, b = m.c_attn.weight.detach(), m.c_attn.bias.detach()  # Conv1D: y = x W + b, W (E, 3E)
    Wq, Wk, Wv = (W[:, n * E:(n + 1) * E].T.clone() for n in range(3))
    bq, bk, bv = (b[n * E:(n + 1) * E].clone() for n in range(3))
    Wo, bo = m.c_proj.weight.detach().T.clone(), m.c_proj.bias.detach().clone()
    return dict(num_heads=H, head_dim=d, scaling=m.scaling, Wq=Wq, bq=bq, Wk=Wk, bk=bk, Wv=Wv, bv=bv, Wo=Wo, bo=bo,
                modes=("self", "causal"), describe=f"transformers GPT2Attention(embed_dim={E}, heads={H}, scaling={m.scaling:g})")


def _bert(m: nn.Module, dtype):
    H, d = m.num_attention_heads, m.attention_head_size
    return dict(num_heads=H, head_dim=d, scaling=m.scaling, Wq=_det(m.query.weight), bq=_det(m.query.bias), Wk=_det(m.key.weight),
                bk=_det(m.key.bias), Wv=_det(m.value.weight), bv=_det(m.value.bias), modes=("self", "causal"),
                describe=f"transformers BertSelfAttention(hidden={m.all_head_size}, heads={H}; no output projection: that is "
                         "BertSelfOutput)")


class _Rotary:
    """Llama's rotary embedding for positions ``0..L-1``, from the module's own config (``LlamaRotaryEmbedding``)."""

    def __init__(self, config, dtype):
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

        self.rope = LlamaRotaryEmbedding(config).to(dtype)

    def __call__(self, L: int, dtype, batch: int = 1):
        """``(cos, sin)``, each ``(batch, L, head_dim)``."""
        x = torch.zeros(batch, L, 1, dtype=dtype)
        return self.rope(x, torch.arange(L)[None].expand(batch, L))


def _llama(m: nn.Module, dtype):
    cfg = m.config
    H, Hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, m.head_dim
    rotary = _Rotary(cfg, dtype)
    kw = dict(num_heads=H, head_dim=d, scaling=m.scaling, Wq=_det(m.q_proj.weight), bq=_det(m.q_proj.bias), Wk=_det(m.k_proj.weight),
              bk=_det(m.k_proj.bias), Wv=_det(m.v_proj.weight), bv=_det(m.v_proj.bias), Wo=_det(m.o_proj.weight), bo=_det(m.o_proj.bias),
              kv_heads=Hkv, modes=("self", "causal"), rotary=lambda L, dt: rotary(L, dt, batch=1),
              describe=f"transformers LlamaAttention(hidden={cfg.hidden_size}, heads={H}, key/value heads={Hkv}, rotary)")
    return kw, rotary


class TimmAttention(ProjectedAttention):
    """timm's ViT ``Attention``: ``forward(x, attn_mask=None, is_causal=False)``."""

    def run(self, q, k, v, mode):
        return self.module(q, is_causal=mode == "causal")


def _timm(m: nn.Module, dtype):
    for name in ("q_norm", "k_norm", "norm"):
        sub = getattr(m, name, None)
        if sub is not None and not isinstance(sub, nn.Identity):
            raise ModuleFormError(f"timm Attention.{name} is {type(sub).__name__}: a normalisation inside the attention",
                                  "use qk_norm=False, scale_norm=False (the logits of normalised queries are not read)")
    if getattr(m, "gate", None) is not None:
        raise ModuleFormError("timm Attention(gated=True) multiplies the output by a sigmoid gate of the input", "use gated=False")
    A, H, d = m.attn_dim, m.num_heads, m.head_dim
    W, b = m.qkv.weight.detach(), _det(m.qkv.bias)
    Wq, Wk, Wv = (W[n * A:(n + 1) * A].clone() for n in range(3))
    bq, bk, bv = (None, None, None) if b is None else (b[n * A:(n + 1) * A] for n in range(3))
    return dict(num_heads=H, head_dim=d, scaling=m.scale, Wq=Wq, bq=bq, Wk=Wk, bk=bk, Wv=Wv, bv=bv, Wo=_det(m.proj.weight),
                bo=_det(m.proj.bias), modes=("self", "causal"),
                describe=f"timm Attention(dim={m.qkv.in_features}, heads={H}, scale={m.scale:g}, fused_attn={getattr(m, 'fused_attn', None)})")


#: library class -> reader ``(module copy, dtype) -> AttentionReadout``
ADAPTERS = {
    "transformers.GPT2Attention": lambda m, dtype: HFAttention(m, "gpt2", **_gpt2(m, dtype)),
    "transformers.BertSelfAttention": lambda m, dtype: HFAttention(m, "bert", **_bert(m, dtype)),
    "transformers.BertSdpaSelfAttention": lambda m, dtype: HFAttention(m, "bert", **_bert(m, dtype)),
    "transformers.LlamaAttention": lambda m, dtype: _make_llama(m, dtype),
    "timm.Attention": lambda m, dtype: TimmAttention(m, **_timm(m, dtype)),
}


def _make_llama(m, dtype):
    kw, rotary = _llama(m, dtype)
    out = HFAttention(m, "llama", **kw)
    out.rotary_module = rotary  # route A's position embeddings, per batch
    if m.config._attn_implementation == "eager" and dtype == torch.float64:
        out.notes = ("LlamaAttention's eager implementation takes the softmax in float32 whatever the dtype: in float64 its "
                     "weights carry float32 rounding (use attn_implementation='sdpa', or --dtype float32)",)
    return out


_TIMM_ATTRIBUTES = ("qkv", "num_heads", "head_dim", "attn_dim", "scale", "q_norm", "k_norm", "attn_drop", "proj", "proj_drop")


def _key(module: nn.Module) -> str | None:
    key = _library_class(module)
    if key in ADAPTERS:
        return key
    # timm's Attention by its structure too: a class written exactly as timm writes it (timm may not import beside a
    # CPU build of torch, its package imports torchvision)
    if type(module).__name__ == "Attention" and all(hasattr(module, a) for a in _TIMM_ATTRIBUTES) and isinstance(module.qkv, nn.Linear):
        return "timm.Attention"
    return None


def adapter_for(module: nn.Module, dtype):
    """The adapter reading ``module`` (a copy in ``dtype``, eval mode), or None when no adapter knows its class."""
    key = _key(module)
    if key is None:
        return None
    m = copy.deepcopy(module).to(dtype).eval()
    if getattr(getattr(m, "config", None), "_attn_implementation", None) is None and hasattr(m, "config"):
        try:
            m.config._attn_implementation = "sdpa"  # a standalone module: transformers' default (its eager Llama path takes the softmax in float32)
        except AttributeError:
            pass
    return ADAPTERS[key](m, dtype)


# ----------------------------------------------------------------------------- any module: by tracing
class WrappedAttention(AttentionReadout):
    """A module whose forward is exactly one attention call on its inputs (a pass-through wrapper): route A calls the
    wrapper, route B reads the attention inside."""

    def __init__(self, wrapper: nn.Module, inner: AttentionReadout, roles: tuple, forward_kwargs: dict):
        self.module, self.inner, self.roles, self.fk = wrapper, inner, roles, forward_kwargs
        self.num_heads, self.head_dim, self.scaling = inner.num_heads, inner.head_dim, inner.scaling
        self.q_dim, self.k_dim, self.v_dim = inner.q_dim, inner.k_dim, inner.v_dim
        # the wrapper passes no mask: what it has is self-attention (one input) or cross-attention (two or three)
        self.modes = ("self",) if len(set(roles)) == 1 else ("cross",)
        self.notes = inner.notes

    def describe(self) -> str:
        return f"{type(self.module).__name__} (forward: {self.inner.describe()} on its input{'s' if len(set(self.roles)) > 1 else ''})"

    def run(self, q, k, v, mode):
        by_role = {"q": q, "k": k, "v": v}
        args = []
        for role in dict.fromkeys(self.roles):
            args.append(by_role[role])
        out = self.module(*args, **self.fk)
        return out[0] if isinstance(out, tuple) else out

    def heads(self, q, k, v, mode):
        return self.inner.heads(q, k, v, mode)

    def value_terms(self, v, mode):
        return self.inner.value_terms(v, mode)

    def merge(self, heads):
        return self.inner.merge(heads)

    def merge_terms(self, heads):
        return self.inner.merge_terms(heads)


def _leaf_types():
    return (nn.MultiheadAttention,) + COMPOSITES


def read_attention(module: nn.Module, dtype, forward_kwargs=None) -> object:
    """The readout of an attention module for the attention suite; a module holding more than attention is refused by name.

    ``nn.MultiheadAttention``, the composites (``nn.TransformerEncoderLayer``/``DecoderLayer``), the adapters'
    classes and hjsym's own reference modules are read directly; any other module is traced, and accepted only
    when its forward is one attention call on its inputs whose output it returns.
    """
    if isinstance(module, nn.MultiheadAttention):
        return read_mha(module, dtype)
    if isinstance(module, COMPOSITES):
        return read_transformer_layer(module, dtype)
    if isinstance(module, (SDPA, L2Attention, TinyTransformer)):
        return ModuleReadout(module, dtype)
    adapted = adapter_for(module, dtype)
    if adapted is not None:
        return adapted
    return _read_wrapper(module, dtype, dict(forward_kwargs or {}))


def _read_wrapper(module: nn.Module, dtype, fk: dict) -> WrappedAttention:
    name = type(module).__name__
    required = [p for p in forward_parameters(module) if p.default is p.empty and p.name not in fk
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    n_in = max(1, min(3, len(required)))
    found = [(n, m) for n, m in module.named_modules() if n and (isinstance(m, _leaf_types()) or _key(m) is not None)]
    if not found:
        raise ModuleFormError(f"{name} contains no attention module hjsym reads (nn.MultiheadAttention, nn.Transformer*Layer, "
                              "GPT2Attention, BertSelfAttention, LlamaAttention, timm's Attention)", "pass one of those")
    leaf_classes = tuple({type(m) for _, m in found})
    gm = trace(module, n_in, fk, leaves=leaf_classes)
    calls = [n for n in gm.graph.nodes if n.op == "call_module" and isinstance(gm.get_submodule(n.target), leaf_classes)]
    output = next(n for n in gm.graph.nodes if n.op == "output")
    if len(calls) != 1:
        raise ModuleFormError(f"{name}.forward calls {len(calls)} attention modules ({', '.join(c.target for c in calls) or 'none'})",
                              "pass one attention module (e.g. model.layers[0].self_attn) and check each on its own")
    call = calls[0]
    inner_mod = gm.get_submodule(call.target)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    result = output.args[0]
    if isinstance(result, fx.Node) and result.op == "call_function" and result.target is operator.getitem and result.args[0] is call \
            and result.args[1] == 0:
        result = call
    outside = [n for n in gm.graph.nodes if n.op in ("call_module", "call_function", "call_method") and n is not call
               and not (n.op == "call_function" and n.target is operator.getitem and n.args[0] is call)]
    if result is not call or outside:
        bad = outside[0] if outside else result
        parts = ", ".join(dict.fromkeys(describe(gm, n) for n in outside)) or describe(gm, bad)
        raise ModuleFormError(
            f"{name}.forward computes more than its attention {call.target!r}: {parts} lie outside it",
            f"pass the attention itself (model.{call.target}), or a nn.TransformerEncoderLayer (checked as a composite)")
    args = list(call.args)
    if any(not (isinstance(a, fx.Node) and a.op == "placeholder") for a in args[:3]) or len(args) < (3 if isinstance(inner_mod, nn.MultiheadAttention) else 1):
        raise ModuleFormError(f"{name}.forward passes {call.target!r} something other than its own inputs",
                              f"pass the attention itself (model.{call.target})")
    extra = [k for k, v in call.kwargs.items() if v is not None and not (isinstance(v, bool))]
    if extra:
        raise ModuleFormError(f"{name}.forward passes {', '.join(extra)} to {call.target!r} (a mask or other input hjsym does not set)",
                              f"pass the attention itself (model.{call.target})")
    role = {p: r for p, r in zip(placeholders, ("q", "k", "v"))}
    roles = tuple(role[a] for a in args[:3]) if isinstance(inner_mod, nn.MultiheadAttention) else ("q",)
    inner = read_attention(inner_mod, dtype)
    if not isinstance(inner, AttentionReadout):
        raise ModuleFormError(f"{name} wraps {type(inner_mod).__name__}, which is checked by itself", f"pass model.{call.target}")
    return WrappedAttention(copy.deepcopy(module).to(dtype).eval(), inner, roles, fk)
