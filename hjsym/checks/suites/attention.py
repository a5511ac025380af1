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
from dataclasses import dataclass

import torch

from ...networks.attention import (
    SDPA,
    L2Attention,
    bump_output,
    causal_mask,
    make_mha,
    read_mha,
    retemper_weights,
    toy_task,
    train_tiny_transformer,
)
from ..engine import CheckReport, CheckResult, compare, negative_size, run_checks, tolerance
from ...codegen.pipeline import load_functions

__all__ = ["run", "CHECKS", "NEGATIVE_CONTROLS", "MHA_CONFIGS", "D_K", "reference_modules", "figures", "head_entropies"]

#: (embed_dim, num_heads, batch_first, causal, cross-attention): head dims 16, 4, 8, 32, 64
MHA_CONFIGS = ((16, 1, True, False, True), (16, 4, False, True, False), (32, 4, True, True, False), (64, 2, False, False, True),
               (64, 1, True, True, False))
D_K = (4, 8, 16, 32, 64)
L2_TIMES = (0.5, 1.0)


@dataclass
class Context:
    fns: dict
    dtype: torch.dtype
    seed: int

    def gen(self, salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(30_000 + self.seed * 97 + salt)

    def weights(self, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``(L, S)`` attention weights of one head: the gradient of the generated LSE in its offsets.

        ``torch.func.grad`` differentiates ``f(x = q_i, K = k, b)`` in ``b`` for one query; ``torch.vmap``
        runs it over the queries (each with its row of the mask as offsets).
        """
        eps = math.sqrt(q.shape[-1])
        # torch adds a mask to the scaled scores q.k/eps: as a logit offset of f it is eps * mask
        offsets = torch.zeros(q.shape[0], k.shape[0], dtype=self.dtype) if mask is None else eps * mask

        def row(qi, bi):
            return torch.func.grad(lambda b: self.fns["f"](x=qi[None], eps=eps, K=k, b=b).sum())(bi)

        return torch.vmap(row)(q, offsets)

    def attend(self, q, k, v, mask=None) -> torch.Tensor:
        """``(B, H, L, d_v)``: route B's attention of per-head projections ``(B, H, L, d_k)``."""
        return torch.vmap(torch.vmap(lambda qh, kh, vh: self.weights(qh, kh, mask) @ vh))(q, k, v)


def _cat(parts):
    return torch.cat([p.reshape(-1) for p in parts])


def _layout(x, batch_first):
    return x if batch_first else x.transpose(0, 1)


# ----------------------------------------------------------------------------- checks
def mha_inputs(ctx: Context, E: int, cross: bool, salt: int):
    g = ctx.gen(salt)
    q = torch.randn(2, 6, E, generator=g, dtype=ctx.dtype)
    kv = torch.randn(2, 7, E, generator=g, dtype=ctx.dtype) if cross else q
    return q, kv


def check_mha(ctx: Context, nets) -> CheckResult:
    a, b, cases = [], [], []
    for n, (mha, (E, H, batch_first, causal, cross)) in enumerate(nets["mha"]):
        r = read_mha(mha, ctx.dtype)
        q, kv = mha_inputs(ctx, E, cross, n)
        mask = causal_mask(q.shape[1], ctx.dtype) if causal else None
        with torch.no_grad():
            out = r.module(_layout(q, batch_first), _layout(kv, batch_first), _layout(kv, batch_first), attn_mask=mask, need_weights=False)[0]
        a.append(_layout(out, batch_first))
        b.append(r.merge(ctx.attend(*r.heads(q, kv, kv), mask)))
        cases.append({"embed_dim": E, "heads": H, "d_k": E // H, "batch_first": batch_first, "causal": causal, "cross": cross})
    return compare(
        "mha",
        "nn.MultiheadAttention = out_proj(grad_z LSE_sqrt(d_k)(z)|_{z = Q K^T} V) per head",
        _cat(a), _cat(b), tolerance("autograd", ctx.dtype),
        "the real nn.MultiheadAttention forward (need_weights=False)",
        "read-out in-projections, then per head torch.autograd of the generated LSE f in its offsets (= softmax weights) "
        "times V, then the read-out out-projection",
        {"cases": cases},
    )


def sdpa_inputs(ctx: Context, d_k: int):
    g = ctx.gen(100 + d_k)
    q, k, v = (torch.randn(2, 2, 6, d_k, generator=g, dtype=ctx.dtype) for _ in range(3))
    bias = torch.randn(6, 6, generator=g, dtype=ctx.dtype)
    return q, k, v, bias


def check_sdpa(ctx: Context, nets) -> CheckResult:
    a, b, cases = [], [], []
    sdpa = nets["sdpa"]
    for d_k in D_K:
        q, k, v, bias = sdpa_inputs(ctx, d_k)
        for mode in ("plain", "causal", "additive mask"):
            with torch.no_grad():
                if mode == "causal":
                    out, mask = sdpa(q, k, v, is_causal=True), causal_mask(6, ctx.dtype)
                elif mode == "additive mask":
                    out, mask = sdpa(q, k, v, attn_mask=bias), bias
                else:
                    out, mask = sdpa(q, k, v), None
            a.append(out)
            b.append(ctx.attend(q, k, v, mask))
            cases.append({"d_k": d_k, "mode": mode, "max_abs_err": float((out - b[-1]).abs().max())})
    return compare(
        "sdpa",
        "F.scaled_dot_product_attention = grad_z LSE_sqrt(d_k)(z)|_{z = Q K^T + mask} V",
        _cat(a), _cat(b), tolerance("autograd", ctx.dtype),
        "the real torch.nn.functional.scaled_dot_product_attention",
        "torch.autograd of the generated LSE f in its offsets (the mask enters as the offsets) times V",
        {"d_k": list(D_K), "cases": cases},
    )


def check_attention_jacobian(ctx: Context, nets) -> CheckResult:
    sdpa = nets["sdpa"]
    q, k, v, _ = sdpa_inputs(ctx, 8)
    q, k, v = q[:1, :1], k[:1, :1], v[:1, :1]
    qg = q.clone().requires_grad_(True)
    out = sdpa(qg, k, v)[0, 0]  # (L, d_v)
    rows = [torch.autograd.grad(out[:, c].sum(), qg, retain_graph=True)[0][0, 0] for c in range(out.shape[1])]
    jac_a = torch.stack(rows, dim=1)  # (L, d_v, d_k): each query's output depends on its own query only
    jac_b = ctx.fns["attention_jacobian"](x=q[0, 0], eps=math.sqrt(8), K=k[0, 0], b=torch.zeros(6, dtype=ctx.dtype), V=v[0, 0])
    return compare(
        "attention_jacobian",
        "d attention / d query = Cov_pi(V, K) / sqrt(d_k) (second derivative of the LSE)",
        jac_a, jac_b, tolerance("autograd", ctx.dtype),
        "torch.autograd through the real scaled_dot_product_attention (first order)",
        "generated attention_jacobian: E_pi[K_k V_c]/eps - E_pi[K_k] E_pi[V_c]/eps",
        {"d_k": 8},
    )


def l2_inputs(ctx: Context, d: int):
    g = ctx.gen(200 + d)
    return torch.randn(16, d, generator=g, dtype=ctx.dtype), 1.5 * torch.randn(10, d, generator=g, dtype=ctx.dtype)


def check_l2_attention(ctx: Context, nets) -> CheckResult:
    a, b = [], []
    for module in nets["l2"]:
        for d in (2, 8):
            q, k = l2_inputs(ctx, d)
            with torch.no_grad():
                a.append(module(q, k))
            x = q.clone().requires_grad_(True)
            t = module.t
            u = ctx.fns["u"](x=x, eps=module.eps, y=k, g=torch.zeros(k.shape[0], dtype=ctx.dtype), t=t)
            (grad,) = torch.autograd.grad(u.sum(), x)
            b.append(q - 2 * t * grad)
    return compare(
        "l2_attention",
        "softmax(-|q - k_j|^2/(4t)) K = q - 2t grad_q u (one characteristic step)",
        _cat(a), _cat(b), tolerance("autograd", ctx.dtype),
        "a real L2-attention module (scores -|q - k|^2/(4t eps), values = keys)",
        "q - 2t grad_q u with torch.autograd of the generated Hopf-Cole solution u (atoms y = keys, g = 0)",
        {"t": [m.t for m in nets["l2"]], "d": [2, 8]},
    )


def block_records(ctx: Context, model, x_seq: torch.Tensor) -> dict:
    """Run the trained model and record what its block's parts received and returned (forward hooks)."""
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


def check_transformer_block(ctx: Context, nets) -> CheckResult:
    model = nets["transformer"]
    blk = model.block
    x_seq, _ = toy_task(2, model.pos.shape[0], ctx.gen(300), ctx.dtype)
    rec = block_records(ctx, model, x_seq)
    r = read_mha(blk.attn, ctx.dtype)
    attn_b = r.merge(ctx.attend(*r.heads(rec["a_in"], rec["a_in"], rec["a_in"]), causal_mask(x_seq.shape[1], ctx.dtype)))
    ffn = blk.ffn
    ffn_b = _ffn_of(ctx, ffn, rec["f_in"])
    h_b = rec["x"] + attn_b
    ln2 = blk.ln2
    out_b = h_b + _ffn_of(ctx, ffn, torch.nn.functional.layer_norm(h_b, (h_b.shape[-1],), ln2.weight.detach(), ln2.bias.detach(), ln2.eps))
    return compare(
        "transformer_block",
        "pre-LN block: attention = grad LSE . V, LSE feed-forward = |z|^2/(4t) - u_eps(z) from (y, g), block recomposed",
        _cat([rec["attn"], rec["ffn"], rec["out"]]), _cat([attn_b, ffn_b, out_b]), tolerance("autograd", ctx.dtype),
        "the trained block's attention, feed-forward and block outputs (forward hooks)",
        "route B attention from the read-out projections; each feed-forward channel as the Hopf-Cole solution of its atoms "
        "(generated parameter map and u); the block output x + attn + FFN(LN2(.)) recomposed from route B's parts",
        {"channels": ffn.dim, "atoms_per_channel": ffn.n_atoms, "eps_ffn": ffn.eps, "t": 1.0},
    )


def _ffn_of(ctx, ffn, z):
    """The feed-forward layer of route B: every channel as ``|z|^2/(4t) - u_eps(z, t)`` from its atoms (t = 1).

    The generated functions take one channel's ``(y, g)``; ``torch.vmap`` runs them over the channels.
    """
    flat = z.reshape(-1, z.shape[-1])
    W = ffn.linear.weight.detach().reshape(ffn.dim, ffn.n_atoms, -1)
    b = ffn.linear.bias.detach().reshape(ffn.dim, ffn.n_atoms)
    fns = ctx.fns

    def channel(Wc, bc):
        y, g = fns["atoms_y"](K=Wc, t=1.0), fns["atoms_g"](K=Wc, b=bc, t=1.0)
        return fns["identity_rhs"](x=flat, t=1.0) - fns["u"](x=flat, eps=ffn.eps, y=y, g=g, t=1.0)

    return torch.vmap(channel)(W, b).T.reshape(z.shape)


def head_entropies(ctx: Context, model, n_seq: int = 4):
    """(route A, route B, per-head mean H/log k) for the trained model's causal heads."""
    blk = model.block
    x_seq, _ = toy_task(n_seq, model.pos.shape[0], ctx.gen(400), ctx.dtype)
    rec = block_records(ctx, model, x_seq)
    a_in = rec["a_in"]
    L = a_in.shape[1]
    with torch.no_grad():
        _, w = blk.attn(a_in, a_in, a_in, attn_mask=causal_mask(L, ctx.dtype), need_weights=True, average_attn_weights=False)
    H_a = torch.special.entr(w).sum(-1)  # (B, heads, L), 0 log 0 = 0
    r = read_mha(blk.attn, ctx.dtype)
    q, k, _ = r.heads(a_in, a_in, a_in)
    eps = math.sqrt(r.head_dim)
    H_b = torch.empty_like(H_a)
    for bi in range(q.shape[0]):
        for h in range(q.shape[1]):
            for i in range(L):  # query i sees keys 0..i (the causal mask drops the rest)
                H_b[bi, h, i] = ctx.fns["entropy"](x=q[bi, h, i:i + 1], eps=eps, K=k[bi, h, : i + 1], b=torch.zeros(i + 1, dtype=ctx.dtype))[0]
    logk = torch.log(torch.arange(1, L + 1, dtype=ctx.dtype))
    normalised = (H_a[..., 1:] / logk[1:]).mean(dim=(0, 2))
    return H_a, H_b, [float(v) for v in normalised], w


def check_entropy(ctx: Context, nets) -> CheckResult:
    H_a, H_b, per_head, _ = head_entropies(ctx, nets["transformer"])
    reading = ["particle" if v < 0.3 else ("wave" if v > 0.7 else "mixed") for v in per_head]
    return compare(
        "entropy",
        "H(pi) = -sum pi log pi = LSE(z) - E_pi[z] for every head and query of a trained transformer",
        H_a, H_b, tolerance("identity", ctx.dtype),
        "-sum pi log pi of the weights returned by the trained nn.MultiheadAttention (need_weights=True, per head)",
        "generated entropy LSE(z) - E_pi[z] from the read-out query and key projections (visible keys only)",
        {"normalised_entropy_per_head": per_head, "reading": reading,
         "task": "x ~ N(0,1) sequences; targets (x_{i-1}, mean_{j<=i} x_j); causal, 2 heads, d_model 16"},
    )


# ----------------------------------------------------------------------------- registry
CHECKS = {
    "mha": check_mha,
    "sdpa": check_sdpa,
    "attention_jacobian": check_attention_jacobian,
    "l2_attention": check_l2_attention,
    "transformer_block": check_transformer_block,
    "entropy": check_entropy,
}
NEGATIVE_CONTROLS = {
    "mha": ("bump", 100),
    "sdpa": ("bump", 100),
    "attention_jacobian": ("bump", 100),
    "l2_attention": ("bump", 100),
    "transformer_block": ("bump", 100),
    "entropy": ("temperature", 100),
}


def perturbed_nets(ctx: Context, nets: dict, name: str) -> dict:
    kind, size = NEGATIVE_CONTROLS[name]
    delta = negative_size(name, size, ctx.dtype, tuple(n for n in CHECKS if n != "entropy"))
    if name == "mha":
        return {**nets, "mha": [(bump_output(m, delta), config) for m, config in nets["mha"]]}
    if name in ("sdpa", "attention_jacobian"):
        return {**nets, "sdpa": bump_output(nets["sdpa"], delta)}
    if name == "l2_attention":
        return {**nets, "l2": [bump_output(m, delta) for m in nets["l2"]]}
    model = nets["transformer"]
    if name == "transformer_block":
        changed = bump_output(model, 0.0)
        changed.block.ffn = bump_output(changed.block.ffn, delta)
        return {**nets, "transformer": changed}
    return {**nets, "transformer": retemper_weights(model, delta)}


def reference_modules(seed: int = 0, dtype=torch.float64) -> dict:
    """Seeded MHA modules (MHA_CONFIGS), an SDPA module, L2 attention at t in L2_TIMES, the trained tiny transformer."""
    gen = torch.Generator().manual_seed(seed * 100 + 40)
    return {
        "mha": [(make_mha(E, H, bf, dtype=dtype, generator=gen), (E, H, bf, causal, cross)) for E, H, bf, causal, cross in MHA_CONFIGS],
        "sdpa": SDPA(),
        "l2": [L2Attention(t=t) for t in L2_TIMES],
        "transformer": train_tiny_transformer(seed=seed).to(dtype),
    }


def run(arch, *, module=None, dtype=torch.float64, seed: int = 0, only=None, negative_controls: bool = False, progress: bool = False) -> CheckReport:
    """Run the attention checks; ``module`` may be an ``nn.MultiheadAttention`` (checked as in ``mha``)."""
    ctx = Context(load_functions(arch.spec), dtype, seed)
    if module is None:
        nets = reference_modules(seed, dtype)
        names = list(CHECKS)
        network = ("nn.MultiheadAttention (1, 2, 4 heads; d_k 4-64), F.scaled_dot_product_attention, L2 attention, and a pre-LN "
                   "transformer (2 heads, LSE feed-forward) trained 200 Adam steps on a copy/average task")
        notes = [f"trained transformer loss {getattr(nets['transformer'], 'train_loss', float('nan')):.3g}"]
    else:  # a user's nn.MultiheadAttention: the mha check, with and without a causal mask
        r = read_mha(module, dtype)
        E, H = r.module.embed_dim, r.num_heads
        nets = {"mha": [(r.module, (E, H, r.batch_first, causal, False)) for causal in (False, True)]}
        names = ["mha"]
        network = f"nn.MultiheadAttention(embed_dim={E}, num_heads={H}, batch_first={r.batch_first})"
        notes = []
    checks = {n: (lambda n=n: CHECKS[n](ctx, nets)) for n in names}
    return run_checks(arch.name, checks, NEGATIVE_CONTROLS, lambda n: CHECKS[n](ctx, perturbed_nets(ctx, nets, n)),
                      dtype=dtype, seed=seed, network=network, only=only, negative_controls=negative_controls, progress=progress,
                      notes=notes)


def figures(arch, report: CheckReport, out_dir, *, seed: int = 0):
    from ...reports.figures.common import attention_figures

    return attention_figures(arch, report, out_dir, seed=seed)
