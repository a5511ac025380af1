"""Attention-head entropies of a trained character-level language model, across layers.

The paper reads the normalised entropies ``H(pi)/log k`` of the attention weights of a trained
language model (k the number of keys a query sees; 0: a particle, one key; 1: a wave, all keys
alike) and states two things: the heads span a wide range of entropies, and entropy drifts from
diffuse early layers to focused middle layers. No model can be downloaded here, so one is trained:

* **corpus**: the Python standard library's own top-level modules (their source and documentation
  strings), read from the running interpreter's ``stdlib`` folder in sorted order, printable ASCII
  and newlines only, the first 1.2 million characters; the last 10 % is held out. Its SHA-256, size
  and the Python version are recorded (the corpus is whatever that Python ships).
* **model**: a causal character-level transformer in plain torch: embedding 64, 4 pre-LayerNorm
  blocks of 4 heads (head dimension 16, scores ``q . k / sqrt(16)``: the softmax temperature
  ``eps = sqrt(d_k)``) and a 4x GELU feed-forward layer, context 64 characters; AdamW (learning rate
  3e-3, 800 steps of 16 random windows), float32, one seeded generator per seed for initialisation
  and batches.
* **measurement**: on 64 held-out windows, for every layer and head, ``H(pi_i)/log(i + 1)`` of each
  query position ``i >= 1`` (which sees ``i + 1`` keys), averaged over positions and windows.

The statistics, one per trained model (seed): the spread of the head entropies (largest minus
smallest over all heads), and the drift, the mean entropy of the first layer minus that of the
middle layers (all but the first and the last).
"""

from __future__ import annotations

import hashlib
import math
import platform

import torch
from torch import nn

from .._resources import Estimate
from ._page import evidence_verdicts, falsifiable, row
from ._stats import combine, mean_ci

NAME = "head-entropy"
TITLE = "Attention-head entropies of a trained language model"
CLAIM = ("The normalised entropies H/log k of a trained language model's attention heads span a wide range (particle-like to wave-like "
         "heads), and entropy drifts from diffuse early layers to focused middle layers.")
CLAIM_TEX = r"H(\pi)/\log k \in [0, 1],\quad \varepsilon = \sqrt{d_k}"
SEEDS = (0, 1, 2)
SEEDS_QUICK = (0,)
CORPUS_CHARS, HOLDOUT = 1_200_000, 0.1
DIM, HEADS, LAYERS, CONTEXT = 64, 4, 4, 64
STEPS, BATCH, LR = 800, 16, 3e-3
EVAL_WINDOWS = 64
SPREAD_MARGIN = 0.5  # "a wide range": the heads cover at least half of [0, 1]


def corpus(max_chars: int = CORPUS_CHARS) -> tuple[str, dict]:
    """The standard library's top-level modules as one text, and its provenance (files, size, SHA-256, Python version)."""
    import sysconfig
    from pathlib import Path

    from .._errors import InputError

    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))
    if not files:
        raise InputError(f"no Python standard library sources under {root}", "run hjsym with a Python that ships its stdlib sources")
    parts, total, used = [], 0, 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        text = "".join(ch for ch in text if ch == "\n" or " " <= ch <= "~")
        parts.append(text)
        used += 1
        total += len(text)
        if total >= max_chars:
            break
    text = "".join(parts)[:max_chars]
    return text, {"files": used, "first": files[0].name, "last": files[used - 1].name, "chars": len(text),
                  "sha256": hashlib.sha256(text.encode("ascii")).hexdigest(), "python": platform.python_version()}


class Block(nn.Module):
    """Pre-LayerNorm causal self-attention (scores ``q . k / sqrt(d_k)``) and a GELU feed-forward layer: ``(B, T, D) -> (B, T, D)``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.dk = heads, dim // heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def attention(self, x: torch.Tensor):
        """The attention output ``(B, T, D)`` and weights ``(B, heads, T, T)`` (rows: queries; causal)."""
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(B, T, 3, self.heads, self.dk).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dk)
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        weights = torch.softmax(scores, -1)
        return self.proj((weights @ v).transpose(1, 2).reshape(B, T, D)), weights

    def forward(self, x: torch.Tensor):
        a, weights = self.attention(x)
        x = x + a
        return x + self.ffn(self.ln2(x)), weights


class CharTransformer(nn.Module):
    """Character ids ``(B, T)`` -> next-character logits ``(B, T, vocab)`` and every layer's attention weights."""

    def __init__(self, vocab: int, dim: int = DIM, heads: int = HEADS, layers: int = LAYERS, context: int = CONTEXT):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(context, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx: torch.Tensor):
        x = self.tok(idx) + self.pos[: idx.shape[1]]
        weights = []
        for block in self.blocks:
            x, w = block(x)
            weights.append(w)
        return self.head(self.ln(x)), weights


def normalised_entropy(weights: torch.Tensor) -> torch.Tensor:
    """``H(pi_i)/log(i+1)`` averaged over query positions ``i >= 1`` and the batch: ``(B, heads, T, T) -> (heads,)``."""
    T = weights.shape[-1]
    H = -(weights * torch.log(weights.clamp_min(1e-30))).sum(-1)  # (B, heads, T)
    k = torch.arange(1, T + 1, dtype=weights.dtype)
    return (H[..., 1:] / torch.log(k[1:])).mean((0, 2))


def one(cfg: dict) -> dict:
    from ..networks.training import seeded

    seed, steps = cfg["seed"], cfg["steps"]
    text, prov = corpus(cfg["chars"])
    vocab = sorted(set(text))
    table = torch.full((128,), -1, dtype=torch.long)
    table[torch.tensor([ord(ch) for ch in vocab])] = torch.arange(len(vocab))
    ids = table[torch.tensor(list(text.encode("ascii")), dtype=torch.long)]
    split = int(len(ids) * (1 - HOLDOUT))
    train, held = ids[:split], ids[split:]
    gen = torch.Generator().manual_seed(50_021 * seed + 3)
    with seeded(50_021 * seed + 1):
        model = CharTransformer(len(vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=LR)

    def batch(source, n):
        start = torch.randint(len(source) - CONTEXT - 1, (n,), generator=gen)
        window = torch.stack([source[s:s + CONTEXT + 1] for s in start.tolist()])
        return window[:, :-1], window[:, 1:]

    losses = []
    for step in range(steps):
        xb, yb = batch(train, BATCH)
        logits, _ = model(xb)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), yb.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    with torch.no_grad():
        eval_gen = torch.Generator().manual_seed(77)  # the same held-out windows for every seed
        start = torch.randint(len(held) - CONTEXT - 1, (cfg["eval_windows"],), generator=eval_gen)
        window = torch.stack([held[s:s + CONTEXT + 1] for s in start.tolist()])
        logits, weights = model(window[:, :-1])
        held_loss = float(nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), window[:, 1:].reshape(-1)))
        entropies = [normalised_entropy(w).tolist() for w in weights]  # (layers, heads)
    counts = torch.bincount(train, minlength=len(vocab)).double()
    unigram = float(-(counts / counts.sum() * torch.log(counts.clamp_min(1) / counts.sum())).sum())
    return {"seed": seed, "entropy": entropies, "held_out_loss": held_loss, "train_loss_last": sum(losses[-50:]) / len(losses[-50:]),
            "unigram_entropy": unigram, "vocab": len(vocab), "corpus": prov}


def run(ctx) -> dict:
    budget = ({"steps": 30, "chars": 60_000, "eval_windows": 8} if ctx.quick else {"steps": STEPS, "chars": CORPUS_CHARS, "eval_windows": EVAL_WINDOWS})
    res = ctx.map(one, [{"seed": s, **budget} for s in ctx.seeds], desc="head-entropy")
    spreads, drifts, layer_means = [], [], []
    for r in res:
        flat = [h for layer in r["entropy"] for h in layer]
        spreads.append(max(flat) - min(flat))
        means = [sum(layer) / len(layer) for layer in r["entropy"]]
        layer_means.append(means)
        drifts.append(means[0] - sum(means[1:-1]) / len(means[1:-1]))
    sp, dr = mean_ci(spreads, bounds=(0.0, 1.0)), mean_ci(drifts, bounds=(-1.0, 1.0))
    rows = [row("spread of the normalised head entropies (largest minus smallest over all heads)", "wide", sp,
                "holds" if sp["lo"] >= SPREAD_MARGIN else ("does not hold" if sp["hi"] < SPREAD_MARGIN else "inconclusive"),
                f"holds iff the 95 % CI lies above {SPREAD_MARGIN:g} (the heads cover at least half of [0, 1]); does not hold iff below"),
            row("first layer's mean entropy minus the middle layers' (layers 2 to L-1)", "> 0 (diffuse early, focused middle)", dr,
                "holds" if dr["lo"] > 0 else ("does not hold" if dr["hi"] < 0 else "inconclusive"),
                "holds iff the 95 % CI lies above 0; does not hold iff below")]
    held = mean_ci([r["held_out_loss"] for r in res], bounds=(0.0, math.inf))
    rows.append(row("held-out cross-entropy (nats per character)", f"below the unigram entropy {res[0]['unigram_entropy']:.3g}", held,
                    "holds" if held["hi"] < res[0]["unigram_entropy"] else "inconclusive",
                    "the model learned something beyond character frequencies iff its held-out loss is below the unigram entropy", kind="context"))
    overall = combine(evidence_verdicts(rows))
    per_layer = [mean_ci([m[layer] for m in layer_means], bounds=(0.0, 1.0)) for layer in range(len(layer_means[0]))]
    measurement = (f"Head entropies H/log k span {sp['mean']:.2f} [{sp['lo']:.2f}, {sp['hi']:.2f}] (largest minus smallest over the "
                   f"{len(res[0]['entropy']) * len(res[0]['entropy'][0])} heads); mean per layer " + ", ".join(
                       f"{m['mean']:.2f}" for m in per_layer) + f"; first minus middle layers {dr['mean']:.3f} [{dr['lo']:.3f}, {dr['hi']:.3f}]; "
                   f"held-out loss {held['mean']:.3f} nats/char (unigram {res[0]['unigram_entropy']:.3f}).")
    return {
        "verdict": overall,
        "verdict_reason": {"holds": "the heads cover a wide range of entropies and the first layer is more diffuse than the middle ones",
                           "does not hold": "the heads' entropies are narrow, or the first layer is not more diffuse than the middle ones",
                           "inconclusive": "the spread or the drift is not placed on either side of its margin"}[overall],
        "falsifiable": falsifiable(
            "per trained model: the spread (largest minus smallest) of the heads' mean normalised entropies H/log k on held-out text, and the "
            "first layer's mean minus the middle layers' mean; 95 % t-intervals over seeds",
            f"a spread interval wholly below {SPREAD_MARGIN:g} (the heads are alike), or a drift interval wholly below 0 (the first layer is more "
            "focused than the middle ones)"),
        "measurement": measurement, "rows": rows,
        "data": {"runs": res, "layer_means": layer_means, "per_layer": per_layer},
        "fits": {"spread": sp, "drift": dr, "held_out_loss": held},
        "config": {"dim": DIM, "heads": HEADS, "layers": LAYERS, "context": CONTEXT, "batch": BATCH, "lr": LR, "optimiser": "AdamW",
                   "dtype": "float32", **budget, "holdout": HOLDOUT, "corpus": res[0]["corpus"]},
        "notes": ["The paper reads a pretrained model (distilgpt2, 6 layers of 12 heads, on natural language); here a 4-layer character "
                  "model trained for minutes on Python source. Character models spend early heads on local context (the previous few "
                  "characters), which a word-piece model does not need to: the two settings need not agree.",
                  "Corpus: {files} standard-library modules ({first} to {last}) of Python {python}, {chars} characters, SHA-256 "
                  "{short}... (in full in result.json).".format(**res[0]["corpus"], short=res[0]["corpus"]["sha256"][:16])],
        "method": __doc__,
    }


def figures(result, folder) -> list[dict]:
    from ._plots import PALETTE, fig_entry, figure

    runs = result["data"]["runs"]
    fig, axes = figure(ncols=2, width=4.4, height=3.4)
    E = torch.tensor(runs[0]["entropy"])
    axes[0].grid(False)
    im = axes[0].imshow(E.numpy(), cmap="cividis", vmin=0, vmax=1, aspect="auto")
    axes[0].set_xlabel("head")
    axes[0].set_ylabel("layer (0 = first)")
    axes[0].set_title(f"seed {runs[0]['seed']}")
    fig.colorbar(im, ax=axes[0], label="H / log k")
    L = E.shape[0]
    for n, r in enumerate(runs):
        for layer, heads in enumerate(r["entropy"]):
            axes[1].plot([layer + 0.06 * (h - len(heads) / 2) for h in range(len(heads))], heads, ".", ms=4, color=PALETTE[n % len(PALETTE)],
                         label=f"heads, seed {r['seed']}" if layer == 0 else None)
        axes[1].plot(range(L), result["data"]["layer_means"][n], "-", color=PALETTE[n % len(PALETTE)], lw=1)
    axes[1].set_xlabel("layer (0 = first)")
    axes[1].set_ylabel("normalised entropy H / log k")
    axes[1].set_ylim(0, 1)
    axes[1].legend(fontsize=7)
    return [fig_entry(fig, folder, "head-entropy-layers", "Left: mean normalised attention entropy of every head and layer on held-out text (one "
                      "model). Right: every head's entropy by layer (dots) and the layer means (lines), for every seed.")]


def estimate(quick: bool) -> Estimate:
    """Per seed: the transformer's training (about 6 flops per parameter and token, and the attention maps), then the held-out windows."""
    seeds = len(SEEDS_QUICK if quick else SEEDS)
    steps = 30 if quick else STEPS
    params = LAYERS * 12 * DIM * DIM
    tokens = BATCH * CONTEXT
    attention = LAYERS * HEADS * BATCH * CONTEXT * CONTEXT
    flops = seeds * (steps * (6 * params * tokens + 4 * attention * (DIM // HEADS)) + EVAL_WINDOWS * CONTEXT * 2 * params)
    return Estimate(f"experiment {NAME}", 4.0 * 4 * attention + 4.0 * 16 * tokens * DIM * LAYERS, float(flops))
