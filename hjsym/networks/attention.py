"""Real attention modules: ``nn.MultiheadAttention`` readouts, an SDPA module, L2 attention, and a
small pre-LayerNorm transformer with a log-sum-exp feed-forward layer trained on a toy task.

Shapes follow torch: ``nn.MultiheadAttention`` takes ``(L, B, E)`` or, with ``batch_first``,
``(B, L, E)``; :class:`SDPA` takes ``(B, H, L, d_k)``; :class:`L2Attention` takes queries
``(M, d)`` and keys ``(N, d)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .._errors import ModuleFormError
from .readout import Readout
from .training import Adam, cached_training

__all__ = [
    "seeded_init_",
    "make_mha",
    "MHAReadout",
    "read_mha",
    "SDPA",
    "L2Attention",
    "LSEFeedForward",
    "PreLNBlock",
    "TinyTransformer",
    "toy_task",
    "train_tiny_transformer",
    "causal_mask",
    "attention_references",
    "MHA_CONFIGS",
    "L2_TIMES",
]


def seeded_init_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every parameter uniform in ``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` from ``generator`` (LayerNorm: 1 and 0)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or isinstance(module, nn.LayerNorm):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
                continue
            fan_in = p.shape[-1] if p.dim() > 1 else p.shape[0]
            bound = 1 / math.sqrt(fan_in)
            p.uniform_(-bound, bound, generator=generator)
    return module


def make_mha(embed_dim: int, num_heads: int, batch_first: bool, *, dtype=torch.float64, generator=None) -> nn.MultiheadAttention:
    mha = nn.MultiheadAttention(embed_dim, num_heads, batch_first=batch_first, dtype=dtype)
    if generator is not None:
        seeded_init_(mha, generator)
    return mha.eval()


def causal_mask(L: int, dtype=torch.float64) -> torch.Tensor:
    """``(L, L)`` additive mask: 0 on and below the diagonal, ``-inf`` above (query i sees keys 0..i)."""
    return torch.triu(torch.full((L, L), -math.inf, dtype=dtype), diagonal=1)


@dataclass
class MHAReadout(Readout):
    """The projections of an ``nn.MultiheadAttention`` (a copy in the working dtype)."""

    module: nn.MultiheadAttention
    num_heads: int
    head_dim: int
    Wq: torch.Tensor
    Wk: torch.Tensor
    Wv: torch.Tensor
    bq: torch.Tensor
    bk: torch.Tensor
    bv: torch.Tensor
    Wo: torch.Tensor
    bo: torch.Tensor
    batch_first: bool

    def describe(self) -> str:
        return f"nn.MultiheadAttention(embed_dim={self.module.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first})"

    def heads(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Per-head projections ``(B, H, L, d_k)`` of batch-first inputs ``(B, L, E)``."""

        def split(x, W, b):
            y = x @ W.T + b
            return y.reshape(*y.shape[:-1], self.num_heads, self.head_dim).transpose(-3, -2)

        return split(q, self.Wq, self.bq), split(k, self.Wk, self.bk), split(v, self.Wv, self.bv)

    def merge(self, heads: torch.Tensor) -> torch.Tensor:
        """``(B, H, L, d_v)`` head outputs -> ``(B, L, E)`` through the out-projection."""
        B, H, L, dv = heads.shape
        return heads.transpose(1, 2).reshape(B, L, H * dv) @ self.Wo.T + self.bo


def read_mha(module: nn.Module, dtype=torch.float64) -> MHAReadout:
    """Read the in- and out-projections of an ``nn.MultiheadAttention`` (or the first one inside ``module``)."""
    mha = module if isinstance(module, nn.MultiheadAttention) else next(
        (m for m in module.modules() if isinstance(m, nn.MultiheadAttention)), None)
    if mha is None:
        raise ModuleFormError(f"{type(module).__name__} contains no nn.MultiheadAttention", "pass an nn.MultiheadAttention")
    if mha.bias_k is not None or mha.add_zero_attn:
        raise ModuleFormError("nn.MultiheadAttention with add_bias_kv or add_zero_attn adds keys the derivation does not model",
                              "create it with add_bias_kv=False, add_zero_attn=False")
    mha = copy.deepcopy(mha).to(dtype).eval()
    E = mha.embed_dim
    if mha._qkv_same_embed_dim:
        Wq, Wk, Wv = mha.in_proj_weight.detach().clone().chunk(3)
    else:
        Wq, Wk, Wv = (w.detach().clone() for w in (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight))
    bias = mha.in_proj_bias.detach().clone() if mha.in_proj_bias is not None else torch.zeros(3 * E, dtype=dtype)
    bq, bk, bv = bias.chunk(3)
    bo = mha.out_proj.bias.detach().clone() if mha.out_proj.bias is not None else torch.zeros(E, dtype=dtype)
    return MHAReadout(mha, mha.num_heads, mha.head_dim, Wq, Wk, Wv, bq, bk, bv, mha.out_proj.weight.detach().clone(), bo, mha.batch_first)


class SDPA(nn.Module):
    """``torch.nn.functional.scaled_dot_product_attention`` as a module (so that a hook can perturb it)."""

    def forward(self, q, k, v, attn_mask=None, is_causal=False):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


class L2Attention(nn.Module):
    """Attention with scores ``-|q - k_j|^2 / (4 t eps)`` and the keys as values: ``(M, d), (N, d) -> (M, d)``."""

    def __init__(self, t: float = 1.0, eps: float = 1.0):
        super().__init__()
        self.t, self.eps = float(t), float(eps)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        sq = ((q[..., :, None, :] - k[..., None, :, :]) ** 2).sum(-1)
        return torch.softmax(-sq / (4 * self.t * self.eps), dim=-1) @ k


class LSEFeedForward(nn.Module):
    """``out_c = eps * logsumexp_n((W_{cn} . z + b_{cn}) / eps)``: one LSE layer per output channel.

    ``z``: ``(*batch, dim)`` -> ``(*batch, dim)``. The ``dim * n_atoms`` logits come from one
    ``nn.Linear(dim, dim * n_atoms)`` (row ``c * n_atoms + n`` is atom ``n`` of channel ``c``).
    """

    def __init__(self, dim: int, n_atoms: int, eps: float, *, dtype=torch.float64):
        super().__init__()
        self.linear = nn.Linear(dim, dim * n_atoms, dtype=dtype)
        self.dim, self.n_atoms, self.eps = dim, n_atoms, float(eps)

    def channel(self, c: int):
        """The slopes ``(n_atoms, dim)`` and offsets ``(n_atoms,)`` of output channel ``c``."""
        rows = slice(c * self.n_atoms, (c + 1) * self.n_atoms)
        return self.linear.weight[rows], self.linear.bias[rows]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.linear(z).reshape(*z.shape[:-1], self.dim, self.n_atoms)
        return self.eps * torch.logsumexp(logits / self.eps, dim=-1)


class PreLNBlock(nn.Module):
    """``h = x + Attn(LN1(x))`` (causal self-attention), ``out = h + FFN(LN2(h))`` with an LSE feed-forward layer."""

    def __init__(self, dim: int, heads: int, n_atoms: int = 8, eps_ffn: float = 0.5, *, dtype=torch.float64):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, dtype=dtype)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True, dtype=dtype)
        self.ln2 = nn.LayerNorm(dim, dtype=dtype)
        self.ffn = LSEFeedForward(dim, n_atoms, eps_ffn, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_in = self.ln1(x)
        mask = causal_mask(x.shape[-2], x.dtype).to(x.device)
        h = x + self.attn(a_in, a_in, a_in, attn_mask=mask, need_weights=False)[0]
        return h + self.ffn(self.ln2(h))


class TinyTransformer(nn.Module):
    """Scalar sequences ``(B, L)`` -> ``(B, L, 2)``: an embedding, one :class:`PreLNBlock`, a linear head."""

    def __init__(self, length: int = 12, dim: int = 16, heads: int = 2, *, dtype=torch.float64):
        super().__init__()
        self.embed = nn.Linear(1, dim, dtype=dtype)
        self.pos = nn.Parameter(torch.zeros(length, dim, dtype=dtype))
        self.block = PreLNBlock(dim, heads, dtype=dtype)
        self.head = nn.Linear(dim, 2, dtype=dtype)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        x = self.embed(seq[..., None]) + self.pos[: seq.shape[-1]]
        return self.head(self.block(x))


def toy_task(batch: int, length: int, generator: torch.Generator, dtype=torch.float64):
    """Sequences ``x ~ N(0, 1)`` and targets ``(x_{i-1}, mean_{j <= i} x_j)``: a copy and an average.

    A head that copies the previous token should attend to one key (a particle, entropy ~ 0);
    one that averages, to all visible keys uniformly (a wave, entropy ~ log k).
    """
    x = torch.randn(batch, length, generator=generator, dtype=dtype)
    prev = torch.cat([torch.zeros(batch, 1, dtype=dtype), x[:, :-1]], dim=1)
    mean = torch.cumsum(x, dim=1) / torch.arange(1, length + 1, dtype=dtype)
    return x, torch.stack([prev, mean], dim=-1)


def train_tiny_transformer(*, steps: int = 200, seed: int = 0, length: int = 12, dim: int = 16, heads: int = 2,
                           cache: bool = True) -> TinyTransformer:
    """A :class:`TinyTransformer` trained on :func:`toy_task` (Adam, batches of 32; seeded, cached)."""

    def make(gen):
        model = TinyTransformer(length, dim, heads)
        if gen is not None:
            seeded_init_(model, gen)
            with torch.no_grad():
                model.pos.normal_(0, 0.5, generator=gen)
        return model

    def fit(model, gen):
        opt = Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            x, y = toy_task(32, length, gen)
            opt.zero_grad()
            loss = torch.mean((model(x) - y) ** 2)
            loss.backward()
            opt.step()
        return float(loss.detach())

    return cached_training(f"tiny-transformer-{steps}-{seed}-{length}-{dim}-{heads}", make, fit, seed=seed, cache=cache)


# ----------------------------------------------------------------------------- reference networks
#: (embed_dim, num_heads, batch_first) of the reference nn.MultiheadAttention modules: head dims 16, 4, 8, 32, 64
MHA_CONFIGS = ((16, 1, True), (16, 4, False), (32, 4, True), (64, 2, False), (64, 1, True))
L2_TIMES = (0.5, 1.0)


def attention_references(seed: int = 0, dtype=torch.float64) -> dict:
    """``{label: module}``: seeded nn.MultiheadAttention modules (MHA_CONFIGS), an SDPA module, L2 attention at t in
    L2_TIMES, and the tiny transformer trained 200 Adam steps."""
    gen = torch.Generator().manual_seed(seed * 100 + 40)
    nets = {f"nn.MultiheadAttention E = {E}, heads = {H}, batch_first = {bf}": make_mha(E, H, bf, dtype=dtype, generator=gen)
            for E, H, bf in MHA_CONFIGS}
    nets["SDPA"] = SDPA()
    nets.update({f"L2Attention t = {t:g}": L2Attention(t=t) for t in L2_TIMES})
    nets["TinyTransformer"] = train_tiny_transformer(seed=seed).to(dtype)
    return nets
