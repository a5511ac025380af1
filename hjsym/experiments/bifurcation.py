"""Fold bifurcations of the attribution entropy, by pseudo-arclength continuation in eps.

Setting (the paper's two clusters): N = 16 atoms, 8 around (-1, 0) and 8 around (1, 0) (spread
0.3, values ``g ~ 0.1 N(0, 1)``, drawn per seed), read as an LSE layer through the generated
parameter map (t = 1); eps in [0.03, 2]; the window ``[-2.5, 2.5]^2``; and the 1-D slice
``x = (s, 0)``. With ``z = (W x + b)/eps``, ``pi = softmax(z)``, ``s_j = -log pi_j``,
``H = sum_j pi_j s_j``, the closed forms are

* gradient ``grad_x H = W^T a / eps`` with ``a = pi (s - H)`` (the design's ``Cov_pi(W, -log pi)/eps``);
* Hessian ``W^T J W / eps^2`` with ``J = diag(pi (s - H - 1)) + pi pi^T - a pi^T - pi a^T``;
* the eps-derivative of ``G = W^T a`` along ``lambda = log eps``: ``-W^T J z``.

Critical points solve ``G(x, lambda) = 0``. **Continuation**: every critical point found at
six eps levels (multi-start Newton: twice the baseline's starts per axis at the smallest eps, half as
many at the others) is followed in both directions along the solution curve in ``(x, lambda)`` by
pseudo-arclength steps (tangent from the bordered Jacobian ``[G_x | G_lambda; tau^T]``, Newton
corrector on the arclength constraint), all branches batched; folds are where the tangent's
lambda-component changes sign (one eigenvalue of ``G_x`` crosses zero), located by interpolation
and classified by the Hessian's eigenvalues and by the direction in which the branch turns.
Counts of minima / saddles / maxima on a shared eps grid come from the branches' crossings of
the grid, polished by Newton. **Baseline**: brute-force multi-start Newton on a grid of starting
points at every eps of the same grid. Both are timed in the same run.
"""

from __future__ import annotations

import math
import time

import torch

from ._stats import combine, mean_ci

NAME = "bifurcation"
TITLE = "Fold bifurcations of the attribution-entropy landscape"
CLAIM = ("The entropy landscape H(pi(x; eps)) of the attribution weights undergoes fold bifurcations as eps increases, "
         "each merging attribution basins.")
CLAIM_TEX = r"H(\pi(x;\varepsilon)) = -\textstyle\sum_j \pi_j \log \pi_j"
SEEDS = (0, 1, 2)
SEEDS_QUICK = (0,)
EPS_RANGE = (0.03, 2.0)
BOX = 2.5
T = 1.0
SPEEDUP_TARGET = 20.0
SEED_LEVELS = 6  # eps levels at which branches are seeded by multi-start Newton


# ----------------------------------------------------------------------------- the landscape
def two_clusters(seed: int, n: int = 16, d: int = 2):
    """Atoms ``y`` ``(N, 2)`` in two clusters, values ``g`` ``(N,)``, and the LSE weights ``(W, b)``."""
    from .. import function

    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    y = centres.repeat_interleave(n // 2, 0) + 0.3 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    g = 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)
    return y, g, function("lse", "weights_W")(y=y, t=T), function("lse", "weights_b")(y=y, g=g, t=T)


def entropy_terms(x: torch.Tensor, lam: torch.Tensor, W: torch.Tensor, b: torch.Tensor):
    """``G = W^T a`` ``(B, k)``, ``G_x = W^T J W / eps`` ``(B, k, k)``, ``G_lambda = -W^T J z`` ``(B, k)`` and ``H`` ``(B,)``.

    ``x``: ``(B, k)``; ``lam = log eps``: ``(B,)``; ``W``: ``(N, k)``; ``b``: ``(N,)``. ``grad_x H = G / eps``
    and ``Hess_x H = G_x / eps`` wherever ``G = 0``.
    """
    eps = lam.exp()[:, None]
    z = (x @ W.T + b) / eps
    logp = torch.log_softmax(z, -1)
    p = logp.exp()
    s = -logp
    H = (p * s).sum(-1, keepdim=True)
    a = p * (s - H)
    G = a @ W
    pW = p @ W  # (B, k)
    aW = a @ W
    diagW = (p * (s - H - 1)).unsqueeze(-1) * W  # (B, N, k)
    JW_T = W.T @ diagW  # (B, k, k): W^T diag(.) W
    Gx = (JW_T + pW[:, :, None] * pW[:, None, :] - aW[:, :, None] * pW[:, None, :] - pW[:, :, None] * aW[:, None, :]) / eps[..., None]
    Jz = p * (s - H - 1) * z + p * (p * z).sum(-1, keepdim=True) - a * (p * z).sum(-1, keepdim=True) - p * (a * z).sum(-1, keepdim=True)
    return G, Gx, -(Jz @ W), H[:, 0]


def classify(Gx: torch.Tensor) -> torch.Tensor:
    """0 minimum, 1 saddle, 2 maximum (by the signs of the Hessian's eigenvalues): ``(B, k, k) -> (B,)``."""
    ev = torch.linalg.eigvalsh(Gx)
    k = Gx.shape[-1]
    neg = (ev < 0).sum(-1)
    return torch.where(neg == 0, 0, torch.where(neg == k, 2, 1))


def newton(x, lam, W, b, iters: int = 60, max_step: float = 0.3):
    """Damped Newton on ``G(., lambda) = 0`` for a batch of starts; returns points and a converged flag."""
    conv = torch.zeros(x.shape[0], dtype=torch.bool)
    for it in range(iters):
        G, Gx, _, _ = entropy_terms(x, lam, W, b)
        step = torch.linalg.solve_ex(Gx, G[..., None])[0][..., 0]  # singular (flat) points give inf/nan: no step
        step = torch.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)
        norm = step.norm(dim=-1, keepdim=True)
        x = x - step * (max_step / norm).clamp(max=1.0)
        conv = norm[:, 0] < 1e-11
        if it % 10 == 9 and bool((conv | (x.abs().amax(-1) > 2 * BOX) | ~torch.isfinite(x).all(-1)).all()):
            break  # every start has converged or left the window (the same rule for every caller)
    G, Gx, _, _ = entropy_terms(x, lam, W, b)
    # where every Gibbs weight underflows to 0 or 1 the landscape is exactly flat in floating point
    # (G = 0, G_x = 0): such points are not critical points; reject them by the Hessian's scale
    nondegenerate = torch.linalg.eigvalsh(Gx).abs().amin(-1) > 1e-9
    ok = conv & nondegenerate & (x.abs().amax(-1) < BOX) & torch.isfinite(x).all(-1)
    return x, ok, Gx


def unique_counts(k_index: torch.Tensor, x: torch.Tensor, kinds: torch.Tensor, n_levels: int, tol: float = 1e-6) -> torch.Tensor:
    """Distinct critical points per eps level and kind: ``(n_levels, 3)`` counts (points closer than ``tol`` are one)."""
    counts = torch.zeros(n_levels, 3, dtype=torch.long)
    order = torch.argsort(k_index, stable=True)
    k_index, x, kinds = k_index[order], x[order], kinds[order]
    bounds = torch.searchsorted(k_index, torch.arange(n_levels + 1))
    for k in range(n_levels):  # per level: one batched distance matrix
        xs, ks = x[bounds[k]:bounds[k + 1]], kinds[bounds[k]:bounds[k + 1]]
        if len(xs) == 0:
            continue
        dist = torch.cdist(xs, xs)
        first = (torch.triu(dist < tol, diagonal=1)).any(0)  # a duplicate of an earlier point
        counts[k] = torch.bincount(ks[~first], minlength=3)
    return counts


def brute_force(W, b, lams: torch.Tensor, starts_per_axis: int):
    """Multi-start Newton at every level of ``lams``: counts ``(K, 3)``."""
    k = W.shape[1]
    side = torch.linspace(-BOX + 0.05, BOX - 0.05, starts_per_axis, dtype=torch.float64)
    starts = torch.cartesian_prod(*([side] * k)).reshape(-1, k)
    K, S = len(lams), len(starts)
    counts = []
    for lo in range(0, K, 8):  # eight levels at a time: the same work, in cache-sized batches
        chunk = lams[lo:lo + 8]
        x, ok, Gx = newton(starts.repeat(len(chunk), 1), chunk.repeat_interleave(S), W, b)
        level = torch.arange(len(chunk)).repeat_interleave(S)
        counts.append(unique_counts(level[ok], x[ok], classify(Gx)[ok], len(chunk)))
    return torch.cat(counts)


# ----------------------------------------------------------------------------- continuation
def _tangent(Gx, Gl, prev):
    """Unit null vector of ``[G_x | G_lambda]`` oriented like ``prev``: ``(B, k+1)``."""
    B, k = Gl.shape
    A = torch.zeros(B, k + 1, k + 1, dtype=Gx.dtype)
    A[:, :k, :k], A[:, :k, k], A[:, k] = Gx, Gl, prev
    rhs = torch.zeros(B, k + 1, dtype=Gx.dtype)
    rhs[:, k] = 1
    tau = torch.nan_to_num(torch.linalg.solve_ex(A, rhs[..., None])[0][..., 0])
    return tau / tau.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def continuation(W, b, starts_x, starts_lam, lams_grid, h: float = 0.03, max_steps: int = 1500):
    """Follow every start in both directions; returns the grid crossings and the fold points.

    ``lams_grid`` must be uniform in lambda = log eps (crossings are found by index arithmetic).
    """
    k = W.shape[1]
    lo, hi = float(lams_grid[0]), float(lams_grid[-1])
    n_grid = len(lams_grid)
    dl = (hi - lo) / (n_grid - 1)
    X = torch.cat([starts_x, starts_lam[:, None]], 1).repeat(2, 1)
    B = X.shape[0]
    prev = torch.zeros(B, k + 1, dtype=torch.float64)
    prev[:, k] = torch.cat([torch.ones(B // 2), -torch.ones(B // 2)]).to(torch.float64)
    G, Gx, Gl, _ = entropy_terms(X[:, :k], X[:, k], W, b)
    tau = _tangent(Gx, Gl, prev)
    alive = torch.ones(B, dtype=torch.bool)
    X0 = X.clone()
    cross_x, cross_k, folds = [], [], []
    for step in range(max_steps):
        if not bool(alive.any()):
            break
        Xp = X + h * tau
        Y = Xp.clone()
        for _ in range(3):  # Newton on [G(Y) = 0, tau.(Y - Xp) = 0]
            G, Gx, Gl, _ = entropy_terms(Y[:, :k], Y[:, k], W, b)
            A = torch.zeros(B, k + 1, k + 1, dtype=torch.float64)
            A[:, :k, :k], A[:, :k, k], A[:, k] = Gx, Gl, tau
            F = torch.cat([G, ((Y - Xp) * tau).sum(-1, keepdim=True)], 1)
            Y = Y - torch.nan_to_num(torch.linalg.solve_ex(A, F[..., None])[0][..., 0])
        G, Gx, Gl, _ = entropy_terms(Y[:, :k], Y[:, k], W, b)
        new_tau = _tangent(Gx, Gl, tau)
        ok = alive & (G.norm(dim=-1) < 1e-8) & torch.isfinite(Y).all(-1)
        # crossings of the shared (uniform in lambda) grid between X and Y, all branches at once
        la, lb = X[:, k], Y[:, k]
        q_lo = torch.floor((torch.minimum(la, lb) - lo) / dl).long() + 1
        q_hi = torch.floor((torch.maximum(la, lb) - lo) / dl).long()
        for off in range(int((q_hi - q_lo + 1).clamp_min(0).max()) if bool(ok.any()) else 0):
            q = q_lo + off
            hit = ok & (q <= q_hi) & (q >= 0) & (q < n_grid)
            w = ((lo + q * dl - la) / (lb - la))[hit, None]
            cross_x.append(X[hit, :k] + w * (Y[hit, :k] - X[hit, :k]))
            cross_k.append(q[hit])
        flip = ok & (tau[:, k] * new_tau[:, k] < 0)
        for j in torch.nonzero(flip).flatten().tolist():
            w = float(tau[j, k] / (tau[j, k] - new_tau[j, k]))
            Z = X[j] + w * (Y[j] - X[j])
            folds.append({"x": Z[:k].tolist(), "eps": math.exp(float(Z[k])), "turn": "annihilation" if tau[j, k] > 0 else "creation"})
        X = torch.where(ok[:, None], Y, X)
        tau = torch.where(ok[:, None], new_tau, tau)
        closed = (step > 10) & ((X - X0).norm(dim=-1) < 0.6 * h)  # back at its start: a closed curve (isola), traced once
        alive = ok & ~closed & (X[:, k] > lo - h) & (X[:, k] < hi + h) & (X[:, :k].abs().amax(-1) < BOX)
    return cross_x, cross_k, folds


def traced_counts(W, b, lams_grid, starts_per_axis: int):
    """Counts on the grid from continuation, with the fold points and the number of branches.

    Branches are seeded by multi-start Newton at ``SEED_LEVELS`` levels: the smallest eps (where the
    landscape is richest, with the smallest basins) with twice the baseline's ``starts_per_axis``,
    the others with half as many.
    """
    k = W.shape[1]
    idx = torch.linspace(0, len(lams_grid) - 1, SEED_LEVELS).round().long().unique()
    xs, ls, ks = [], [], []
    for n, q in enumerate(idx.tolist()):
        per_axis = 2 * starts_per_axis if n == 0 else max(8, starts_per_axis // 2)
        side = torch.linspace(-BOX + 0.05, BOX - 0.05, per_axis, dtype=torch.float64)
        pts = torch.cartesian_prod(*([side] * k)).reshape(-1, k)
        xs.append(pts)
        ls.append(lams_grid[q].expand(len(pts)))
        ks.append(torch.full((len(pts),), q, dtype=torch.long))
    x, ok, _ = newton(torch.cat(xs), torch.cat(ls), W, b)
    lam0, seed_k, x = torch.cat(ls)[ok], torch.cat(ks)[ok], x[ok]
    # one branch per distinct point and level (points equal to 1e-6 are one)
    key = torch.cat([seed_k[:, None], torch.round(x * 1e6).long()], 1)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1 if len(inverse) else 0,), len(inverse), dtype=torch.long).scatter_reduce(
        0, inverse, torch.arange(len(inverse)), reduce="amin")
    keep = torch.zeros(len(x), dtype=torch.bool)
    keep[first] = True
    cross_x, cross_k, folds = continuation(W, b, x[keep], lam0[keep], lams_grid)
    seed_k = seed_k[keep]  # the seeds themselves lie on grid levels
    X = torch.cat(cross_x) if cross_x else torch.zeros(0, k, dtype=torch.float64)
    K = torch.cat(cross_k) if cross_k else torch.zeros(0, dtype=torch.long)
    X = torch.cat([X, x[keep]])
    K = torch.cat([K, seed_k])
    Xp, good, Gx = newton(X, lams_grid[K], W, b, iters=12)
    kinds = classify(Gx)
    return unique_counts(K[good], Xp[good], kinds[good], len(lams_grid)), folds, int(keep.sum())


def _dedupe_folds(folds, W, b):
    out = []
    for f in sorted(folds, key=lambda f: f["eps"]):
        if not any(abs(math.log(f["eps"] / o["eps"])) < 1e-2 and math.dist(f["x"], o["x"]) < 1e-2 for o in out):
            out.append(f)
    if out:
        x = torch.tensor([f["x"] for f in out], dtype=torch.float64)
        lam = torch.log(torch.tensor([f["eps"] for f in out], dtype=torch.float64))
        _, Gx, _, _ = entropy_terms(x, lam, W, b)
        ev = torch.linalg.eigvalsh(Gx)
        for f, e in zip(out, ev):
            small = e.abs().min()
            f["eigenvalues"] = e.tolist()
            f["simple"] = bool(small < 0.05 * e.abs().max()) if len(e) > 1 else True
    return out


def one(cfg: dict) -> dict:
    seed, slice_ = cfg["seed"], cfg["slice"]
    _, _, W, b = two_clusters(seed)
    if slice_:
        W = W[:, :1].contiguous()  # x = (s, 0): W' = W e_1, b' = b
    K = cfg["levels"]
    lams = torch.linspace(math.log(EPS_RANGE[0]), math.log(EPS_RANGE[1]), K, dtype=torch.float64)
    starts = cfg["starts"]
    t0 = time.perf_counter()
    traced, folds, n_branches = traced_counts(W, b, lams, starts)
    t_cont = time.perf_counter() - t0
    t0 = time.perf_counter()
    brute = brute_force(W, b, lams, starts)
    t_brute = time.perf_counter() - t0
    folds = _dedupe_folds(folds, W, b)
    agree = (traced == brute).all(-1)
    # where the two disagree, a brute force with twice the starts per axis (on those levels only) says who missed roots
    dense = brute_force(W, b, lams[~agree], 2 * starts) if bool((~agree).any()) else torch.zeros(0, 3, dtype=torch.long)
    resolved = (dense == traced[~agree]).all(-1)
    return {"seed": seed, "slice": slice_, "eps": lams.exp().tolist(), "traced": traced.tolist(), "brute": brute.tolist(),
            "agree_fraction": float(agree.double().mean()), "disagree_eps": lams.exp()[~agree].tolist(), "folds": folds,
            "dense_brute_on_disagreements": dense.tolist(), "agree_fraction_after_dense": float((agree.sum() + resolved.sum()) / len(agree)),
            "branches": n_branches, "continuation_s": t_cont, "brute_force_s": t_brute, "speedup": t_brute / t_cont}


def settings(quick: bool) -> dict:
    return {"levels": 30 if quick else 200, "starts_2d": 16 if quick else 40, "starts_1d": 64 if quick else 400}


def run(ctx) -> dict:
    st = settings(ctx.quick)
    configs = [{"seed": s, "quick": ctx.quick, "slice": sl, "levels": st["levels"], "starts": st["starts_1d" if sl else "starts_2d"]}
               for sl in (False, True) for s in ctx.seeds]
    res = ctx.map(one, configs, desc="bifurcation")
    rows = []
    verdicts = []
    for sl in (False, True):
        mine = [r for r in res if r["slice"] == sl]
        label = "1-D slice x = (s, 0)" if sl else "d = 2"
        folds = [f for r in mine for f in r["folds"]]
        n_folds = mean_ci([len(r["folds"]) for r in mine])
        ann = [f["turn"] == "annihilation" for f in folds]
        simple = all(f["simple"] for f in folds)
        agree = mean_ci([r["agree_fraction"] for r in mine])
        v_f = "holds" if folds and simple else ("does not hold" if not folds else "inconclusive")
        rows.append({"quantity": f"{label}: fold points per configuration (all simple: {simple})", "paper": "folds occur", "measured": n_folds["mean"],
                     "lo": n_folds["lo"], "hi": n_folds["hi"], "n": n_folds["n"], "verdict": v_f,
                     "rule": "holds iff folds are found and each has one eigenvalue crossing zero"})
        frac = sum(ann) / len(ann) if ann else None
        v_m = "holds" if ann and all(ann) else ("inconclusive" if not ann else "does not hold")
        rows.append({"quantity": f"{label}: share of folds that merge (a pair annihilates as eps grows)", "paper": "1 (each fold merges basins)",
                     "measured": frac, "lo": None, "hi": None, "n": len(ann), "verdict": v_m,
                     "rule": f"holds iff every fold annihilates a pair as eps increases ({len(ann) - sum(ann)} create one)"})
        dense = mean_ci([r["agree_fraction_after_dense"] for r in mine])
        rows.append({"quantity": f"{label}: levels where continuation and brute force give the same counts", "paper": "-", "measured": agree["mean"],
                     "lo": agree["lo"], "hi": agree["hi"], "n": agree["n"], "verdict": "holds" if min(r["agree_fraction"] for r in mine) >= 0.95 else "inconclusive",
                     "rule": f"holds iff >= 95 % in every run; after re-running brute force with 2x starts per axis on the disagreeing levels: "
                             f"{100 * dense['mean']:.1f} %"})
        sp = mean_ci([r["speedup"] for r in mine])
        rows.append({"quantity": f"{label}: speed-up of continuation over brute force", "paper": f">= {SPEEDUP_TARGET:g}x (requirement)",
                     "measured": sp["mean"], "lo": sp["lo"], "hi": sp["hi"], "n": sp["n"],
                     "verdict": "holds" if min(r["speedup"] for r in mine) >= SPEEDUP_TARGET else "does not hold", "rule": "holds iff every run >= 20x"})
        verdicts += [v_f, v_m]
    overall = combine(verdicts)
    folds2 = [f for r in res if not r["slice"] for f in r["folds"]]
    measurement = (f"d = 2: {len(folds2)} folds over {len(ctx.seeds)} configurations at eps = "
                   + ", ".join(f"{f['eps']:.3g}" for f in folds2[:8]) + ("..." if len(folds2) > 8 else "")
                   + f"; {sum(f['turn'] == 'annihilation' for f in folds2)} annihilate a pair as eps grows. Continuation matches brute force on "
                   + f"{100 * mean_ci([r['agree_fraction'] for r in res])['mean']:.1f} % of grid levels ("
                   + f"{100 * mean_ci([r['agree_fraction_after_dense'] for r in res])['mean']:.1f} % once a denser brute force re-checks the rest) and is "
                   + f"{min(r['speedup'] for r in res):.0f}-{max(r['speedup'] for r in res):.0f}x faster.")
    return {
        "verdict": overall,
        "verdict_reason": "folds (one Hessian eigenvalue through zero, the branch turning back in eps) are found and classified; the verdict "
                          "also asks that every fold merges basins as eps increases",
        "measurement": measurement, "rows": rows, "data": {"runs": res},
        "config": {"eps_range": EPS_RANGE, "box": BOX, "t": T, **st, "atoms": 16, "clusters": "(-1, 0), (1, 0), spread 0.3"},
        "timings": {f"{'slice' if r['slice'] else 'd2'}_seed{r['seed']}_{k}": r[k] for r in res for k in ("continuation_s", "brute_force_s")},
        "notes": ["Counting: a level's count is the number of distinct critical points inside the window [-2.5, 2.5]^2; a branch that "
                  "leaves the window is stopped."],
        "method": __doc__,
    }


def figures(result, folder) -> list[dict]:
    from ._plots import PALETTE, fig_entry, figure

    runs = result["data"]["runs"]
    out = []
    for sl in (False, True):
        r = next(r for r in runs if r["slice"] == sl)
        fig, axes = figure(ncols=2, width=4.4, height=3.4)
        eps = r["eps"]
        for kind, name in enumerate(("minima", "saddles", "maxima")):
            axes[0].plot(eps, [c[kind] for c in r["traced"]], "-", color=PALETTE[kind], label=f"{name} (continuation)")
            axes[0].plot(eps, [c[kind] for c in r["brute"]], ".", ms=3, color=PALETTE[kind], label=f"{name} (brute force)")
        for f in r["folds"]:
            axes[0].axvline(f["eps"], color="0.6", lw=0.6, ls=":")
        axes[0].set_xscale("log")
        axes[0].set_xlabel("eps")
        axes[0].set_ylabel("critical points of H")
        axes[0].legend(fontsize=6)
        _, _, W, b = two_clusters(r["seed"])
        if sl:
            s = torch.linspace(-BOX, BOX, 400, dtype=torch.float64)[:, None]
            for n, e in enumerate((0.1, 0.3, 1.0)):
                _, _, _, H = entropy_terms(s, torch.full((400,), math.log(e), dtype=torch.float64), W[:, :1].contiguous(), b)
                axes[1].plot(s[:, 0].numpy(), H.numpy(), color=PALETTE[n], label=f"H along x = (s, 0), eps = {e:g}")
            axes[1].set_xlabel("s")
            axes[1].set_ylabel("entropy H(pi(x; eps))")
        else:
            for f in r["folds"]:
                axes[1].plot(f["x"][0], f["x"][1], "o" if f["turn"] == "annihilation" else "s", ms=4,
                             color=PALETTE[3] if f["turn"] == "annihilation" else PALETTE[1])
            y, _, _, _ = two_clusters(r["seed"])
            axes[1].plot(y[:, 0].numpy(), y[:, 1].numpy(), "k^", ms=3, label="atoms")
            axes[1].set_xlim(-BOX, BOX)
            axes[1].set_ylim(-BOX, BOX)
            axes[1].set_xlabel("$x_1$")
            axes[1].set_ylabel("$x_2$")
            axes[1].set_title("fold points (dots: pair annihilates)")
        axes[1].legend(fontsize=6)
        stem = "bifurcation-slice" if sl else "bifurcation-2d"
        out.append(fig_entry(fig, folder, stem, ("1-D slice" if sl else "d = 2") + f", seed {r['seed']}: number of minima, saddles and maxima of "
                             "H against eps from continuation (lines) and brute force (dots); dotted verticals: folds."))
    return out
