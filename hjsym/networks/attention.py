"""Real attention modules: ``nn.MultiheadAttention`` readouts, an SDPA module, L2 attention, and a
small pre-LayerNorm transformer with a log-sum-exp feed-forward layer trained on a toy task.

Shapes follow torch: ``nn.MultiheadAttention`` takes ``(L, B, E)`` or, with ``batch_first``,
``(B, L, E)``; :class:`SDPA` takes ``(B, H, L, d_k)``; :class:`L2Attention` takes queries
``(M, d)`` and keys ``(N, d)``.
"""

from __future__ import annotations

import abc
import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from .._errors import ModuleFormError
from .readout import Readout
from .training import Adam, cached_training

__all__ = [
    "seeded_init_",
    "make_mha",
    "AttentionReadout",
    "ProjectedAttention",
    "MHAReadout",
    "rotate",
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


class AttentionReadout(Readout):
    """A multi-head attention module read for route B, and run whole for route A.

    ``run(q, k, v, mode)`` calls the module as passed (batch-first inputs ``(B, L, q_dim)``,
    ``(B, S, k_dim)``, ``(B, S, v_dim)``; ``mode`` one of :attr:`modes`: ``"self"``, ``"causal"``,
    ``"cross"``, ``"cross-causal"``) and returns ``(B, L, out_dim)``. ``heads`` gives route B's per-head
    queries, keys and values ``(B, H, L, d)`` from the read-out weights (rotary positions applied,
    grouped key/value heads repeated: the heads of a group share keys); the logits are
    ``scaling * q . k`` plus the additive :meth:`mask`, so the Gibbs temperature is ``1 / scaling``;
    ``merge`` applies the output projection. ``value_terms`` and ``merge_terms`` carry the magnitude
    of the terms (the scale of the rounding).
    """

    module: nn.Module
    num_heads: int
    head_dim: int
    scaling: float
    modes: tuple = ("self", "causal", "cross")
    q_dim: int = 0
    k_dim: int = 0
    v_dim: int = 0
    notes: tuple = ()

    @abc.abstractmethod
    def run(self, q, k, v, mode: str) -> torch.Tensor:
        """Route A: the module's own forward."""

    @abc.abstractmethod
    def heads(self, q, k, v, mode: str):
        """Route B's ``(qh, kh, vh)``, each ``(B, H, L or S, d)``."""

    @abc.abstractmethod
    def value_terms(self, v, mode: str) -> torch.Tensor:
        """``(B, H, S, d_v)``: the magnitude of the values' terms."""

    @abc.abstractmethod
    def merge(self, heads: torch.Tensor) -> torch.Tensor:
        """``(B, H, L, d_v)`` head outputs -> ``(B, L, out_dim)``."""

    @abc.abstractmethod
    def merge_terms(self, heads: torch.Tensor) -> torch.Tensor:
        """The magnitude of ``merge``'s terms from that of the heads."""

    def mask(self, mode: str, L: int, S: int, dtype) -> torch.Tensor | None:
        """Route B's additive mask ``(L, S)`` for ``mode`` (None: every key visible)."""
        return causal_mask(L, dtype)[:, :S] if mode.endswith("causal") else None

    @property
    def eps(self) -> float:
        """The Gibbs temperature of the logits: ``1 / scaling``."""
        return 1.0 / self.scaling


def _split_heads(y: torch.Tensor, heads: int, d: int) -> torch.Tensor:
    return y.reshape(*y.shape[:-1], heads, d).transpose(-3, -2)


def _merge_heads(h: torch.Tensor) -> torch.Tensor:
    B, H, L, dv = h.shape
    return h.transpose(1, 2).reshape(B, L, H * dv)


class ProjectedAttention(AttentionReadout):
    """Attention with affine in-projections ``(Wq, bq), (Wk, bk), (Wv, bv)`` (``y = x W^T + b``) and an optional
    out-projection ``(Wo, bo)``; ``kv_heads`` key/value heads (fewer than ``num_heads``: grouped-query attention)."""

    def __init__(self, module, num_heads, head_dim, scaling, Wq, bq, Wk, bk, Wv, bv, Wo=None, bo=None, *, kv_heads=None,
                 modes=("self", "causal", "cross"), describe="", rotary=None):
        self.module, self.num_heads, self.head_dim, self.scaling = module, num_heads, head_dim, float(scaling)
        self.Wq, self.bq, self.Wk, self.bk, self.Wv, self.bv, self.Wo, self.bo = Wq, bq, Wk, bk, Wv, bv, Wo, bo
        self.kv_heads = kv_heads or num_heads
        self.modes, self._describe, self.rotary = tuple(modes), describe, rotary
        self.q_dim, self.k_dim, self.v_dim = Wq.shape[1], Wk.shape[1], Wv.shape[1]
        self.notes = ()

    def describe(self) -> str:
        return self._describe

    @staticmethod
    def _affine(x, W, b):
        y = x @ W.T
        return y if b is None else y + b

    def _kv(self, t):
        """``(B, Hkv, S, d)`` -> ``(B, H, S, d)``: each group of query heads shares one key/value head."""
        return t.repeat_interleave(self.num_heads // self.kv_heads, dim=1) if self.kv_heads != self.num_heads else t

    def heads(self, q, k, v, mode):
        d = self.head_dim
        qh = _split_heads(self._affine(q, self.Wq, self.bq), self.num_heads, d)
        kh = _split_heads(self._affine(k, self.Wk, self.bk), self.kv_heads, d)
        vh = _split_heads(self._affine(v, self.Wv, self.bv), self.kv_heads, d)
        if self.rotary is not None:
            cos, sin = self.rotary(q.shape[1], q.dtype)
            qh, kh = rotate(qh, cos, sin), rotate(kh, cos, sin)
        return qh, self._kv(kh), self._kv(vh)

    def value_terms(self, v, mode):
        terms = v.abs() @ self.Wv.abs().T
        if self.bv is not None:
            terms = terms + self.bv.abs()
        return self._kv(_split_heads(terms, self.kv_heads, self.head_dim))

    def merge(self, heads):
        out = _merge_heads(heads)
        return out if self.Wo is None else self._affine(out, self.Wo, self.bo)

    def merge_terms(self, heads):
        out = _merge_heads(heads)
        if self.Wo is None:
            return out
        out = out @ self.Wo.abs().T
        return out if self.bo is None else out + self.bo.abs()


def rotate(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of ``(B, H, L, d)``: ``t cos + rot(t) sin``, ``rot(t) = (-t_2, t_1)`` on the halves of d."""
    half = t.shape[-1] // 2
    rot = torch.cat((-t[..., half:], t[..., :half]), dim=-1)
    return t * cos[:, None] + rot * sin[:, None]


class MHAReadout(ProjectedAttention):
    """An ``nn.MultiheadAttention`` (a copy in the working dtype): its in- and out-projections.

    With ``kdim``/``vdim`` different from ``embed_dim`` the keys and values come from other tensors than the
    queries, so only cross-attention (with or without a causal mask) exists.
    """

    def __init__(self, mha: nn.MultiheadAttention, dtype):
        E = mha.embed_dim
        if mha._qkv_same_embed_dim:
            Wq, Wk, Wv = mha.in_proj_weight.detach().clone().chunk(3)
        else:
            Wq, Wk, Wv = (w.detach().clone() for w in (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight))
        bias = mha.in_proj_bias.detach().clone() if mha.in_proj_bias is not None else torch.zeros(3 * E, dtype=dtype)
        bq, bk, bv = bias.chunk(3)
        bo = mha.out_proj.bias.detach().clone() if mha.out_proj.bias is not None else torch.zeros(E, dtype=dtype)
        same = mha.kdim == E and mha.vdim == E
        modes = ("self", "causal", "cross") if same else ("cross", "cross-causal")
        desc = f"nn.MultiheadAttention(embed_dim={E}, num_heads={mha.num_heads}, batch_first={mha.batch_first}" + (
            f", kdim={mha.kdim}, vdim={mha.vdim})" if not same else ")")
        super().__init__(mha, mha.num_heads, mha.head_dim, mha.head_dim ** -0.5, Wq, bq, Wk, bk, Wv, bv,
                         mha.out_proj.weight.detach().clone(), bo, modes=modes, describe=desc)
        self.batch_first = mha.batch_first
        if not same:
            self.notes = (f"nn.MultiheadAttention with kdim={mha.kdim}, vdim={mha.vdim}: keys and values come from their own inputs, so "
                          "only cross-attention is checked (with and without a causal mask)",)

    def run(self, q, k, v, mode):
        lay = (lambda t: t) if self.batch_first else (lambda t: t.transpose(0, 1))
        mask = self.mask(mode, q.shape[1], k.shape[1], q.dtype)
        out = self.module(lay(q), lay(k), lay(v), attn_mask=mask, need_weights=False)[0]
        return lay(out)


def read_mha(module: nn.Module, dtype=torch.float64) -> MHAReadout:
    """Read the in- and out-projections of an ``nn.MultiheadAttention``; anything else is refused."""
    if not isinstance(module, nn.MultiheadAttention):
        raise ModuleFormError(f"{type(module).__name__} is not an nn.MultiheadAttention", "pass an nn.MultiheadAttention")
    if module.bias_k is not None or module.add_zero_attn:
        raise ModuleFormError("nn.MultiheadAttention with add_bias_kv or add_zero_attn adds keys the derivation does not model",
                              "create it with add_bias_kv=False, add_zero_attn=False")
    return MHAReadout(copy.deepcopy(module).to(dtype).eval(), dtype)


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
