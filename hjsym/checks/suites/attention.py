"""Checks of attention against the derivation of ``attention`` (attention = gradient of a log-sum-exp).

Route A is a real torch module; route B never evaluates a softmax formula: the attention
weights are ``torch.autograd`` derivatives of the *generated* log-sum-exp ``f`` in its logit
offsets (``df/db_m = pi_m``), contracted with the values.

* ``mha``: ``nn.MultiheadAttention`` with 1, 2 and 4 heads (d_k in {4, 8, 16, 32, 64}), with
  and without a causal mask, ``batch_first`` both ways, self- and cross-attention; its in- and
  out-projections are read out and applied by hand around route B;
* ``sdpa``: ``F.scaled_dot_product_attention`` for d_k in {4, 8, 16, 32, 64}, with ``is_causal``
  and an additive mask;
* ``attention_jacobian``: the Jacobian of the real SDPA output in the query (autograd, first
  order) against the generated Gibbs covariance ``Cov_pi(V, K)/sqrt(d_k)``;
* ``l2_attention``: attention with scores ``-|q - k_j|^2/(4t)`` and values = keys equals the
  characteristic step ``q - 2t grad_q u`` (autograd of the generated solution ``u``);
* ``transformer_block``: a trained pre-LayerNorm block with an LSE feed-forward layer: its
  attention output (as ``mha``), its feed-forward output (each channel ``|z|^2/(4t) - u_eps(z)``
  from the channel's atoms ``(y, g)``), and the block output recomposed from both;
* ``entropy``: the entropy of each head's weights as returned by the trained module, against
  the generated ``H = LSE(z) - E_pi[z]``; the per-head ``H/log k`` reads heads as particles or waves.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...networks.attention import AttentionReadout, causal_mask, read_mha, toy_task
from ...networks.adapters import read_attention
from ...networks.transformer import TransformerLayerReadout
from ..engine import Check, Negative, Suite, Values

__all__ = ["SUITE", "D_K", "attend", "weights", "head_entropies", "l2_inputs"]

D_K = (4, 8, 16, 32, 64)


# ----------------------------------------------------------------------------- route B: attention from the generated LSE
def weights(ctx, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None, eps: float | None = None) -> torch.Tensor:
    """``(L, S)`` attention weights of one head: the gradient of the generated LSE in its offsets.

    ``torch.func.grad`` differentiates ``f(x = q_i, K = k, b)`` in ``b`` for one query; ``torch.vmap``
    runs it over the queries (each with its row of the mask as offsets). ``eps`` is the temperature of the
    logits ``q . k / eps`` (default ``sqrt(d_k)``, scaled dot-product attention).
    """
    eps = math.sqrt(q.shape[-1]) if eps is None else float(eps)
    # torch adds a mask to the scaled scores q.k/eps: as a logit offset of f it is eps * mask
    offsets = torch.zeros(q.shape[0], k.shape[0], dtype=ctx.dtype) if mask is None else eps * mask
    f = ctx.fns["f"]

    def row(qi, bi):
        return torch.func.grad(lambda b: f(x=qi[None], eps=eps, K=k, b=b).sum())(bi)

    return torch.vmap(row)(q, offsets)


def attend(ctx, q, k, v, mask=None, v_terms=None, eps: float | None = None) -> torch.Tensor:
    """``(B, H, L, d_v)``: route B's attention of per-head projections ``(B, H, L, d_k)`` at temperature ``eps``.

    With ``v_terms`` (the magnitude of the values' terms, shaped like ``v``): the magnitude of the output's terms
    instead, ``E_pi[v_terms] (1 + 2 max_j |z_j|) + |E_pi v|`` with ``z`` the scaled scores (a rounding ``u |z|`` of a
    score moves the weights by ``u |z| pi``).
    """
    def one(qh, kh, vh, th):
        w = weights(ctx, qh, kh, mask, eps)
        if th is None:
            return w @ vh
        z = (qh @ kh.T / (math.sqrt(qh.shape[-1]) if eps is None else eps)).abs()
        zmax = z.amax(-1, keepdim=True) if mask is None else torch.where(torch.isfinite(mask), z, torch.zeros_like(z)).amax(-1, keepdim=True)
        return (w @ th) * (1 + 2 * zmax) + (w @ vh).abs()

    if v_terms is None:
        return torch.vmap(torch.vmap(lambda qh, kh, vh: one(qh, kh, vh, None)))(q, k, v)
    return torch.vmap(torch.vmap(one))(q, k, v, v_terms)


def route_b_attention(ctx, r: AttentionReadout, q, k, v, mode: str):
    """Route B of an attention module: ``merge(E_pi[V])`` with the weights from the generated LSE, and the magnitude of its terms
    (the values' in-projection ``|W_v| |x| + |b_v|`` carried through the attention, then the out-projection's)."""
    mask = r.mask(mode, q.shape[1], k.shape[1], ctx.dtype)
    heads = r.heads(q, k, v, mode)
    b = r.merge(attend(ctx, *heads, mask, eps=r.eps))
    s = r.merge_terms(attend(ctx, *heads, mask, v_terms=r.value_terms(v, mode), eps=r.eps))
    return b, s


def attention_inputs(ctx, r: AttentionReadout, mode: str, salt: int):
    """Batch-first queries ``(2, 6, q_dim)`` and keys / values ``(2, S, k_dim)``, ``(2, S, v_dim)`` for ``mode`` (S = 7 for cross)."""
    g = ctx.gen(salt)
    q = torch.randn(2, 6, r.q_dim, generator=g, dtype=ctx.dtype)
    if mode in ("self", "causal"):
        return q, q, q
    S = 6 if mode == "cross-causal" else 7
    k = torch.randn(2, S, r.k_dim, generator=g, dtype=ctx.dtype)
    v = k if r.v_dim == r.k_dim and mode == "cross" else torch.randn(2, S, r.v_dim, generator=g, dtype=ctx.dtype)
    return q, k, v


# ----------------------------------------------------------------------------- checks
def mha_values(ctx, nets):
    """Every multi-head attention module in each mode it has: self-attention, causal self-attention, cross-attention."""
    out = []
    for n, net in enumerate(nets):
        r, a = net.readout, net.a
        for mode in r.modes:
            q, k, v = attention_inputs(ctx, r, mode, n)
            with torch.no_grad():
                res = a.run(q, k, v, mode)
            b, s = route_b_attention(ctx, r, q, k, v, mode)
            out.append(Values(res, b, s, info={"network": net.label, "mode": mode, "d_k": r.head_dim}))
    return out


def layer_values(ctx, nets):
    """Transformer layers as composites: route A the whole layer, route B recomposed in its own order (attention derived)."""

    def attention(r, q, kv, mode):
        return route_b_attention(ctx, r, q, kv, kv, mode)

    out = []
    for n, net in enumerate(nets):
        r, a = net.readout, net.a
        g = ctx.gen(500 + n)
        x = torch.randn(2, 6, r.embed_dim, generator=g, dtype=ctx.dtype)
        memory = torch.randn(2, 7, r.embed_dim, generator=g, dtype=ctx.dtype) if r.decoder else None
        for mode in r.modes:
            with torch.no_grad():
                res = a.run(x, memory, mode)
            b, s = r.recompose(attention, x, memory, mode)
            out.append(Values(res, b, s, info={"network": net.label, "mode": mode}))
    return out


def sdpa_inputs(ctx, d_k: int):
    g = ctx.gen(100 + d_k)
    q, k, v = (torch.randn(2, 2, 6, d_k, generator=g, dtype=ctx.dtype) for _ in range(3))
    bias = torch.randn(6, 6, generator=g, dtype=ctx.dtype)
    return q, k, v, bias


def sdpa_values(ctx, nets):
    out = []
    for net in nets:
        for d_k in D_K:
            q, k, v, bias = sdpa_inputs(ctx, d_k)
            for mode in ("plain", "causal", "additive mask"):
                with torch.no_grad():
                    if mode == "causal":
                        res, mask = net.module(q, k, v, is_causal=True), causal_mask(6, ctx.dtype)
                    elif mode == "additive mask":
                        res, mask = net.module(q, k, v, attn_mask=bias), bias
                    else:
                        res, mask = net.module(q, k, v), None
                out.append(Values(res, attend(ctx, q, k, v, mask), attend(ctx, q, k, v, mask, v_terms=v.abs()),
                                  info={"d_k": d_k, "mode": mode}))
    return out


def jacobian_values(ctx, nets):
    out = []
    for net in nets:
        q, k, v, _ = sdpa_inputs(ctx, 8)
        q, k, v = q[:1, :1], k[:1, :1], v[:1, :1]
        qg = q.clone().requires_grad_(True)
        res = net.module(qg, k, v)[0, 0]  # (L, d_v)
        rows = [torch.autograd.grad(res[:, c].sum(), qg, retain_graph=True)[0][0, 0] for c in range(res.shape[1])]
        jac_a = torch.stack(rows, dim=1)  # (L, d_v, d_k): each query's output depends on its own query only
        args = {"x": q[0, 0], "eps": math.sqrt(8), "K": k[0, 0], "b": torch.zeros(6, dtype=ctx.dtype), "V": v[0, 0]}
        out.append(Values(jac_a, ctx.call("attention_jacobian", args), ctx.magnitude("attention_jacobian", args), info={"d_k": 8}))
    return out


def l2_inputs(ctx, d: int):
    g = ctx.gen(200 + d)
    return torch.randn(16, d, generator=g, dtype=ctx.dtype), 1.5 * torch.randn(10, d, generator=g, dtype=ctx.dtype)


def l2_values(ctx, nets):
    out = []
    for net in nets:
        module = net.module
        for d in (2, 8):
            q, k = l2_inputs(ctx, d)
            with torch.no_grad():
                a = module(q, k)
            x = q.clone().requires_grad_(True)
            t = module.t
            args = {"x": x, "eps": module.eps, "y": k, "g": torch.zeros(k.shape[0], dtype=ctx.dtype), "t": t}
            (grad,) = torch.autograd.grad(ctx.call("u", args).sum(), x)
            mag = ctx.magnitude("grad_u", {**args, "x": q})
            out.append(Values(a, q - 2 * t * grad, q.abs() + 2 * t * mag, info={"t": t, "d": d}))
    return out


def block_records(model, x_seq: torch.Tensor) -> dict:
    """Run the model and record what its block's parts received and returned (forward hooks)."""
    rec, blk = {}, model.block
    hooks = [
        blk.ln1.register_forward_hook(lambda m, i, o: rec.update(x=i[0].detach(), a_in=o.detach())),
        blk.attn.register_forward_hook(lambda m, i, o: rec.update(attn=o[0].detach())),
        blk.ln2.register_forward_hook(lambda m, i, o: rec.update(f_in=o.detach())),
        blk.ffn.register_forward_hook(lambda m, i, o: rec.update(ffn=o.detach())),
        blk.register_forward_hook(lambda m, i, o: rec.update(out=o.detach())),
    ]
    try:
        with torch.no_grad():
            model(x_seq)
    finally:
        for h in hooks:
            h.remove()
    return rec


def ffn_of(ctx, ffn, z, scale: bool = False):
    """The feed-forward layer of route B: every channel as ``|z|^2/(4t) - u_eps(z, t)`` from its atoms (t = 1).

    The generated functions take one channel's ``(y, g)``; ``torch.vmap`` runs them over the channels. With
    ``scale``: the generated magnitudes of those terms instead.
    """
    flat = z.reshape(-1, z.shape[-1])
    W = ffn.linear.weight.detach().reshape(ffn.dim, ffn.n_atoms, -1)
    b = ffn.linear.bias.detach().reshape(ffn.dim, ffn.n_atoms)
    fns, mags = ctx.fns, ctx.magnitudes

    def channel(Wc, bc):
        y, g = fns["atoms_y"](K=Wc, t=1.0), fns["atoms_g"](K=Wc, b=bc, t=1.0)
        if scale:
            return mags["identity_rhs"](x=flat, t=1.0) + mags["u"](x=flat, eps=ffn.eps, y=y, g=g, t=1.0)
        return fns["identity_rhs"](x=flat, t=1.0) - fns["u"](x=flat, eps=ffn.eps, y=y, g=g, t=1.0)

    return torch.vmap(channel)(W, b).T.reshape(z.shape)


def block_values(ctx, nets):
    out = []
    for net in nets:
        model = net.module
        x_seq, _ = toy_task(2, model.pos.shape[0], ctx.gen(300), ctx.dtype)
        rec = block_records(model, x_seq)
        r = read_mha(net.readout.module.block.attn, ctx.dtype)
        attn_b, attn_s = route_b_attention(ctx, r, rec["a_in"], rec["a_in"], rec["a_in"], "causal")
        ffn = net.readout.module.block.ffn
        ln2 = net.readout.module.block.ln2
        h_b = rec["x"] + attn_b
        ffn_in = torch.nn.functional.layer_norm(h_b, (h_b.shape[-1],), ln2.weight.detach(), ln2.bias.detach(), ln2.eps)
        out_b = h_b + ffn_of(ctx, ffn, ffn_in)
        out.append(Values(rec["attn"], attn_b, attn_s, info={"part": "attention"}))
        out.append(Values(rec["ffn"], ffn_of(ctx, ffn, rec["f_in"]), ffn_of(ctx, ffn, rec["f_in"], scale=True), info={"part": "feed-forward"}))
        # the block output carries the attention's terms, and the layer norm divides by the spread of h
        ln_gain = (ln2.weight.detach().abs() / (h_b.var(-1, keepdim=True, unbiased=False) + ln2.eps).sqrt()).amax(-1, keepdim=True)
        out.append(Values(rec["out"], out_b, rec["x"].abs() + attn_s * (1 + ln_gain) + ffn_of(ctx, ffn, ffn_in, scale=True),
                          info={"part": "block"}))
    return out


def head_entropies(ctx, model, n_seq: int = 4):
    """(route A, route B, route B's magnitude, per-head mean H/log k, weights) for the trained model's causal heads."""
    blk = model.block
    x_seq, _ = toy_task(n_seq, model.pos.shape[0], ctx.gen(400), ctx.dtype)
    rec = block_records(model, x_seq)
    a_in = rec["a_in"]
    L = a_in.shape[1]
    with torch.no_grad():
        _, w = blk.attn(a_in, a_in, a_in, attn_mask=causal_mask(L, ctx.dtype), need_weights=True, average_attn_weights=False)
    H_a = torch.special.entr(w).sum(-1)  # (B, heads, L), 0 log 0 = 0
    r = read_mha(blk.attn, ctx.dtype)
    q, k, _ = r.heads(a_in, a_in, a_in, "causal")
    eps = math.sqrt(r.head_dim)
    H_b, S_b = torch.empty_like(H_a), torch.empty_like(H_a)
    for bi in range(q.shape[0]):
        for h in range(q.shape[1]):
            for i in range(L):  # query i sees keys 0..i (the causal mask drops the rest)
                args = {"x": q[bi, h, i:i + 1], "eps": eps, "K": k[bi, h, : i + 1], "b": torch.zeros(i + 1, dtype=ctx.dtype)}
                H_b[bi, h, i] = ctx.call("entropy", args)[0]
                S_b[bi, h, i] = ctx.magnitude("entropy", args)[0]
    logk = torch.log(torch.arange(1, L + 1, dtype=ctx.dtype))
    normalised = (H_a[..., 1:] / logk[1:]).mean(dim=(0, 2))
    return H_a, H_b, S_b, [float(v) for v in normalised], w


def entropy_values(ctx, nets):
    out = []
    for net in nets:
        H_a, H_b, S_b, per_head, _ = head_entropies(ctx, net.module)
        out.append(Values(H_a, H_b, S_b, info={"normalised_entropy_per_head": per_head,
                                              "reading": ["particle" if v < 0.3 else ("wave" if v > 0.7 else "mixed") for v in per_head]}))
    return out


def _transformer(net) -> bool:
    return hasattr(net.readout.module, "block") and isinstance(getattr(net.readout.module.block, "attn", None), nn.MultiheadAttention)


def _sdpa(net) -> bool:
    return type(net.readout.module).__name__ == "SDPA"


def _l2(net) -> bool:
    return type(net.readout.module).__name__ == "L2Attention"


_BUMP = Negative("output-sin")
CHECKS = (
    Check("mha", r"multi-head attention $= W^O\, \nabla_z \mathrm{LSE}_{\varepsilon}(z)|_{z = QK^\top} V$ per head, $\varepsilon = 1/\mathrm{scaling}$",
          "attention:1",
          "the real attention module's forward (nn.MultiheadAttention, GPT2Attention, BertSelfAttention, LlamaAttention, timm "
          "Attention, or a module whose forward is one of them): self-, causal self- and cross-attention, as the module has them",
          "read-out in-projections, then per head torch.autograd of the generated LSE f in its offsets (= softmax weights) "
          "times V, then the read-out out-projection", evaluate=mha_values, rounding="autograd", negative=_BUMP,
          applies_to=lambda net: isinstance(net.readout, AttentionReadout), requires=("f",)),
    Check("transformer_layer", r"transformer layer: its attention(s) $= \nabla_z \mathrm{LSE}_{\varepsilon}(z) V$ from the derivation, "
          "recomposed with its feed-forward and layer norms (structural)", "attention:1",
          "the whole nn.TransformerEncoderLayer / DecoderLayer forward (eval mode)",
          "route B attention (generated LSE weights) in the layer's own order (norm_first or post-norm), the feed-forward and layer "
          "norms evaluated from their read-out weights", evaluate=layer_values, rounding="autograd", negative=_BUMP,
          applies_to=lambda net: isinstance(net.readout, TransformerLayerReadout), requires=("f",)),
    Check("sdpa", r"F.scaled_dot_product_attention $= \nabla_z \mathrm{LSE}_{\sqrt{d_k}}(z)|_{z = QK^\top + M} V$", "attention:1",
          "the real torch.nn.functional.scaled_dot_product_attention",
          "torch.autograd of the generated LSE f in its offsets (the mask enters as the offsets) times V", evaluate=sdpa_values,
          rounding="autograd", negative=_BUMP, applies_to=_sdpa, requires=("f",)),
    Check("attention_jacobian", r"$\partial\,\mathrm{attention}/\partial q = \mathrm{Cov}_\pi(V, K)/\sqrt{d_k}$ (second derivative of the LSE)", "attention:3",
          "torch.autograd through the real scaled_dot_product_attention (first order)",
          r"generated attention_jacobian: $\mathbb{E}_\pi[K_k V_c]/\varepsilon - \mathbb{E}_\pi[K_k]\, \mathbb{E}_\pi[V_c]/\varepsilon$", evaluate=jacobian_values, rounding="autograd",
          negative=_BUMP, applies_to=_sdpa, requires=("attention_jacobian",)),
    Check("l2_attention", r"$\mathrm{softmax}(-|q - k_j|^2/(4t))\, K = q - 2t \nabla_q u$ (one characteristic step)", "characteristic-step:2",
          r"a real $L^2$-attention module (scores $-|q - k|^2/(4t\varepsilon)$, values = keys)",
          r"$q - 2t \nabla_q u$ with torch.autograd of the generated Hopf-Cole solution $u$ (atoms $y$ = keys, $g = 0$)", evaluate=l2_values,
          rounding="autograd", negative=_BUMP, applies_to=_l2, requires=("u", "grad_u"), formula="u"),
    Check("transformer_block", r"pre-LN block: attention $= \nabla \mathrm{LSE} \cdot V$, LSE feed-forward $= |z|^2/(4t) - u_\varepsilon(z)$ from $(y, g)$, "
          "block recomposed", "attention:1", "the trained block's attention, feed-forward and block outputs (forward hooks)",
          "route B attention from the read-out projections; each feed-forward channel as the Hopf-Cole solution of its atoms "
          r"(generated parameter map and $u$); the block output $x + \mathrm{attn} + \mathrm{FFN}(\mathrm{LN}_2(\cdot))$ recomposed from route B's parts",
          evaluate=block_values, rounding="autograd", negative=Negative("output-sin", target="block.ffn"), applies_to=_transformer,
          requires=("f", "atoms_y", "atoms_g", "identity_rhs", "u")),
    Check("entropy", r"$H(\pi) = -\sum_j \pi_j \log \pi_j = \mathrm{LSE}(z) - \mathbb{E}_\pi[z]$ for every head and query of a trained transformer", "entropy:3",
          r"$-\sum_j \pi_j \log \pi_j$ of the weights returned by the trained nn.MultiheadAttention (need_weights=True, per head)",
          r"generated entropy $\mathrm{LSE}(z) - \mathbb{E}_\pi[z]$ from the read-out query and key projections (visible keys only)", evaluate=entropy_values,
          negative=Negative("attention-weights"), applies_to=_transformer, requires=("entropy",),
          details=lambda ctx, nets, values: {**values[0].info, "cases": None} if len(values) == 1 else {}),
)


def read(ctx, module):
    """Attention modules are read for their projections (nn.MultiheadAttention, the adapters), transformer layers as composites,
    hjsym's own reference modules whole; anything else is traced, and refused when it holds more than one attention call."""
    return read_attention(module, ctx.dtype, ctx.forward_kwargs)


SUITE = Suite("attention", CHECKS, applies=lambda spec: spec.family == "exact" and spec.values is not None, read=read)
