"""Report figures: one style, a colour-blind-safe palette, PNG and PDF with reproducible bytes.

Every report figure goes through :func:`figure` (the house style: Okabe-Ito colours, 9 pt text,
light grid) and :func:`save` (PNG at 150 dpi and PDF, no timestamps, written atomically), which
refuses a plotted axis without a label: every axis names its quantity (and unit). The derivation
graph of any architecture is drawn by :func:`derivation_graph_figure`, which also returns where
each step's box lies so that pages can link every node to its equation.
"""

from __future__ import annotations

import copy
import io
import json
import math
import textwrap
from pathlib import Path

import sympy as sp
import torch

from ..._cache import atomic_write
from ...checks.api import context
from ...checks.engine import Network
from ...checks.suites.attention import head_entropies, l2_inputs
from ...checks.suites.lse import atoms, autograd_residual
from ...codegen.pipeline import derive
from ...derivation.activations import activation_table, limit_text, structure_form
from ...derivation.diagram import diagram_graph
from ...networks.attention import train_tiny_transformer
from ...networks.lse import scalar_output, set_eps
from ...symbolic.prose import to_text
from ..tables import table_latex, table_markdown

__all__ = ["PALETTE", "STATUS_COLOURS", "figure", "save", "check_labelled", "derivation_graph_figure", "lse_figures",
           "tropical_figure", "residual_figure", "metric_figure", "activation_figures", "attention_figures", "diagram_figure"]

#: Okabe-Ito: distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _mpl():
    import logging

    import matplotlib

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # font-subsetting chatter while writing PDFs

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "svg.hashsalt": "hjsym",
            "pdf.fonttype": 42,
        }
    )
    return plt


def figure(ncols: int = 1, width: float = 5.2, height: float = 3.4):
    """A figure in the house style with ``ncols`` axes side by side (``width`` inches per axes)."""
    plt = _mpl()
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols if ncols > 1 else width, height), layout="constrained")
    return fig, axes


def check_labelled(fig, stem: str) -> None:
    """Raise ``ValueError`` naming the first visible axes of ``fig`` that plots data without axis labels."""
    for n, ax in enumerate(fig.axes, 1):
        if not ax.axison or not (ax.lines or ax.collections or ax.images or ax.patches or ax.containers):
            continue  # a hidden axis (a drawn diagram) or an empty one
        colorbar = getattr(ax, "_colorbar", None)
        if colorbar is not None:  # a colour bar: its long axis names the colour's quantity
            axes = [("y", ax.get_ylabel())] if colorbar.orientation == "vertical" else [("x", ax.get_xlabel())]
        else:
            axes = [("x", ax.get_xlabel()), ("y", ax.get_ylabel())]
        for axis, label in axes:
            if not label.strip():
                raise ValueError(f"figure {stem!r}: axes {n} has no {axis} label; fix: label every axis with its quantity and unit "
                                 f"(ax.set_{axis}label(...))")


def save(fig, out_dir: Path, stem: str) -> dict:
    """Write ``stem.png`` and ``stem.pdf`` atomically, with no timestamps in them.

    Raises ``ValueError`` (before writing anything) when a plotted axis has no label.
    """
    plt = _mpl()
    check_labelled(fig, stem)
    out_dir = Path(out_dir)
    paths = {}
    for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=meta)
        path = out_dir / f"{stem}.{fmt}"
        atomic_write(path, buf.getvalue())
        paths[fmt] = path.name
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------- derivation graph
#: Fill colours of a step's box by its status (Okabe-Ito, light).
STATUS_COLOURS = {"derived": "#56B4E9", "verified": "#009E73", "stated": "#E69F00", "failed": "#D55E00"}


def _layers(graph):
    """Rows of the layered drawing and the route of every edge.

    Rows are the topological generations; an edge spanning several rows gets a waypoint in each
    row it crosses (so it runs in a lane of its own instead of through boxes), and rows are
    ordered by barycentre sweeps to reduce crossings (ties keep the step order).
    Returns ``(rows, routes)``: rows of node ids or waypoint tuples, and ``{(u, v): [u, *waypoints, v]}``.
    """
    import networkx as nx

    number = nx.get_node_attributes(graph, "number")
    layer = {n: k for k, gen in enumerate(nx.topological_generations(graph)) for n in gen}
    rows = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in sorted(graph, key=lambda n: number.get(n, 0)):
        rows[layer[n]].append(n)
    routes, up, down = {}, {}, {}
    for u, v in sorted(graph.edges, key=lambda e: (number.get(e[0], 0), number.get(e[1], 0))):
        path = [u] + [("via", u, v, k) for k in range(layer[u] + 1, layer[v])] + [v]
        for a, b in zip(path, path[1:]):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
        for w in path[1:-1]:
            rows[w[3]].append(w)
        routes[(u, v)] = path

    def order_key(n):
        return number.get(n, 0) if not isinstance(n, tuple) else number.get(n[2], 0) - 0.5

    def barycentre(n, pos, neighbours):
        near = [pos[m] for m in neighbours.get(n, [])]
        return (sum(near) / len(near) if near else pos[n], order_key(n))

    for row in rows:
        row.sort(key=order_key)
    for _ in range(3):  # barycentre sweeps, down then up
        for neighbours, order in ((up, rows[1:]), (down, rows[-2::-1])):
            pos = {n: i for row in rows for i, n in enumerate(row)}
            for row in order:
                row.sort(key=lambda n, pos=pos, nb=neighbours: barycentre(n, pos, nb))
                pos.update({n: i for i, n in enumerate(row)})
    return rows, routes


def derivation_graph_figure(graph, out_dir: Path, stem: str, *, title: str = "") -> dict:
    """Draw a derivation graph (a networkx ``DiGraph`` of step ids with ``number``/``title``/``status``).

    Steps are boxes in rows (each step below every step it uses), coloured by status; arrows go
    from a used step to the step that uses it. Returns ``{"stem", "caption", "png", "pdf",
    "aspect", "nodes"}``, where ``nodes`` gives each step's box as fractions of the figure
    (``[left, top, right, bottom]``, origin top left), for links laid over the image.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
    from matplotlib.path import Path as MPath

    plt = _mpl()
    rows, routes = _layers(graph)
    box_w, box_h, lane_w, gap_x, gap_y = 1.32, 0.46, 0.12, 0.16, 0.34  # inches

    def slot(n):
        return lane_w if isinstance(n, tuple) else box_w

    row_widths = [sum(slot(n) for n in row) + gap_x * (len(row) - 1) for row in rows]
    width = max(4.0, max(row_widths, default=0) + 2 * gap_x)
    height = len(rows) * (box_h + gap_y) + gap_y + 0.45  # room for the legend at the bottom
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    centre = {}
    for r, (row, row_w) in enumerate(zip(rows, row_widths)):
        y = height - gap_y - r * (box_h + gap_y) - box_h / 2
        x = (width - row_w) / 2
        for n in row:
            centre[n] = (x + slot(n) / 2, y)
            x += slot(n) + gap_x
    for (u, v), path in routes.items():
        pts = [(centre[u][0], centre[u][1] - box_h / 2)]
        for w in path[1:-1]:  # through each lane: enter at the top of the row, leave at the bottom
            pts += [(centre[w][0], centre[w][1] + box_h / 2), (centre[w][0], centre[w][1] - box_h / 2)]
        pts.append((centre[v][0], centre[v][1] + box_h / 2))
        codes = [MPath.MOVETO] + [MPath.LINETO] * (len(pts) - 1)
        ax.add_patch(FancyArrowPatch(path=MPath(pts, codes), arrowstyle="-|>", color="0.35", lw=0.6, mutation_scale=7,
                                     joinstyle="round", capstyle="round"))
    nodes = []
    for n in sorted((n for n in centre if not isinstance(n, tuple)), key=lambda n: graph.nodes[n].get("number", 0)):
        x, y = centre[n]
        data = graph.nodes[n]
        colour = STATUS_COLOURS.get(data.get("status"), "#BBBBBB")
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0,rounding_size=0.06",
                                    facecolor=colour + "40", edgecolor=colour, lw=0.9))
        wrapped = textwrap.wrap(f"({data.get('number', '?')}) {to_text(data.get('title', n))}", 24)  # Unicode: no mathtext to split
        lines = wrapped[:3]
        if len(wrapped) > 3:
            lines[-1] = lines[-1][:21] + "..."
        ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=6.2, color="#1b1b1b")
        nodes.append({"id": n, "number": data.get("number"), "title": data.get("title", n), "status": data.get("status"),
                      "box": [round((x - box_w / 2) / width, 5), round(1 - (y + box_h / 2) / height, 5),
                              round((x + box_w / 2) / width, 5), round(1 - (y - box_h / 2) / height, 5)]})
    used = [s for s in STATUS_COLOURS if any(graph.nodes[n].get("status") == s for n in graph)]
    ax.legend(handles=[Patch(facecolor=STATUS_COLOURS[s] + "40", edgecolor=STATUS_COLOURS[s], label=s) for s in used],
              loc="lower center", ncol=len(used) or 1, frameon=False, fontsize=7, title=title or None, title_fontsize=7)
    caption = ("The derivation graph: each box is a step (number and title; colour: its status), each arrow goes from a step "
               "to a step that uses it. Every box links to the step's equations.")
    dpi = plt.rcParams["savefig.dpi"]
    return {"stem": stem, "caption": caption, "aspect": round(height / width, 5), "width_px": round(width * dpi),
            "height_px": round(height * dpi), "nodes": nodes, **save(fig, out_dir, stem)}


# ----------------------------------------------------------------------------- LSE layer
def lse_figures(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    """Three figures for the LSE report: a 1-D slice across eps, the tropical gap, the residual map."""
    ctx = context(arch, seed=seed)
    fns = ctx.fns
    nets = {n.readout.d: n for n in reference_networks(ctx, arch)}
    if ctx.spec.input_map:
        return aniso_figures(ctx, nets, out_dir, seed=seed)
    out = []
    if 1 in nets:  # a user's architecture may have no d = 1 (or d = 2) network: those figures are then not drawn
        out.append(_slice_figure(fns, nets[1].readout, out_dir))
    out.append(tropical_figure(fns, [nets[d].readout for d in sorted(nets)], out_dir, "lse-tropical", seed=seed))
    if 2 in nets:  # the PDE residual over a 2-D domain, by autograd through the module
        out.append(residual_figure(ctx, nets[2], out_dir, "lse-residual"))
    return out


def _slice_figure(fns, r1, out_dir) -> dict:
    """f_eps of a d = 1 layer on a line, for several eps, against the max-plus network f_0."""
    x = torch.linspace(-2.5, 2.5, 401, dtype=torch.float64)[:, None]
    fig, ax = figure()
    mod = copy.deepcopy(r1.module)
    for eps in (1.0, r1.eps, 0.2, 0.05):
        set_eps(mod, eps)
        with torch.no_grad():
            ax.plot(x[:, 0].numpy(), scalar_output(mod)(x).numpy(), label=f"$f_\\varepsilon$, $\\varepsilon$ = {eps:g}")
    ax.plot(x[:, 0].numpy(), fns["f0"](x=x, W=r1.W, b=r1.b).numpy(), "k--", lw=1.2, label="$f_0 = \\max_j(W_j x + b_j)$ (generated)")
    with torch.no_grad():
        pieces = x @ r1.W.T + r1.b
    ax.plot(x[:, 0].numpy(), pieces.numpy(), color="0.6", lw=0.5, alpha=0.5)
    lo, hi = float(fns["f0"](x=x, W=r1.W, b=r1.b).min()), float(fns["f0"](x=x, W=r1.W, b=r1.b).max())
    ax.set_ylim(lo - 0.3, hi + 1.2)
    ax.set_xlabel("$x$ (d = 1)")
    ax.set_ylabel("network output")
    ax.set_title(f"Trained LSE layer (N = {r1.n_atoms}) across $\\varepsilon$: smooth $\\to$ max-plus")
    ax.legend(loc="upper center", ncol=2)
    return {"stem": "lse-slice", "caption": "The trained d = 1 layer evaluated at several temperatures (its Linear weights fixed), "
            "the max-plus network f_0 generated from the tropical-limit step, and the N affine pieces (grey).", **save(fig, out_dir, "lse-slice")}


def reference_networks(ctx, arch):
    """The architecture's reference networks, read by its suite (``Network`` entries of the check engine)."""
    return [Network(label, ctx.suite.read(ctx, m)) for label, m in arch.networks(ctx.seed, ctx.dtype).items()]


def aniso_figures(ctx, nets, out_dir, *, seed: int = 0) -> list[dict]:
    """The kernel metric over the learned layer, the tropical gap and the residual map."""
    return [
        metric_figure(ctx, nets[2], out_dir, f"{ctx.spec.name}-metric"),
        tropical_figure(ctx.fns, [nets[d].readout for d in sorted(nets)], out_dir, f"{ctx.spec.name}-tropical", seed=seed),
        residual_figure(ctx, nets[2], out_dir, f"{ctx.spec.name}-residual", n=41),
    ]


def tropical_figure(fns, rs, out_dir, stem: str, *, seed: int = 0) -> dict:
    """The measured gap ``max_x f_eps - f_0`` over eps against ``eps log N`` and the sharp bound."""
    fig, ax = figure()
    eps_grid = torch.logspace(-4, 0.5, 28, dtype=torch.float64)
    for n, r in enumerate(rs):
        gen = torch.Generator().manual_seed(10_000 + seed * 97 + r.d)
        pts = torch.randn(64, r.d, generator=gen, dtype=torch.float64)
        names = {**{"W": "W", "b": "b", "eps": "eps"}, **r.names}  # the spec's names (a user's temperature may be tau)
        f0 = fns["f0"](x=pts, **{names["W"]: r.W, names["b"]: r.b})
        m = copy.deepcopy(r.module)
        gaps, sharp = [], []
        for e in eps_grid.tolist():
            set_eps(m, e)
            with torch.no_grad():
                gaps.append(float((scalar_output(m)(pts) - f0).max()))
            sharp.append(float(fns["tropical_bound_sharp"](x=pts, **{names["W"]: r.W, names["b"]: r.b, names["eps"]: e}).max()))
        ax.loglog(eps_grid.numpy(), gaps, "o", ms=3, color=PALETTE[n], label=f"measured max gap, d = {r.d}")
        ax.loglog(eps_grid.numpy(), sharp, "-", lw=0.8, color=PALETTE[n], alpha=0.7, label=f"sharp bound (max over points), d = {r.d}")
    n_atoms = rs[0].n_atoms
    eps_name = {"eps": "eps", **rs[0].names}["eps"]
    ax.loglog(eps_grid.numpy(), [float(fns["tropical_bound"](**{eps_name: e}, N=n_atoms)) for e in eps_grid.tolist()], "k--", lw=1.2,
              label=f"$\\varepsilon \\log N$, N = {n_atoms}")
    ax.set_ylim(1e-18, 10)
    ax.set_xlabel("temperature / viscosity $\\varepsilon$")
    ax.set_ylabel("$\\max_x\\, f_\\varepsilon(x) - f_0(x)$")
    ax.set_title("Tropical limit: measured gap inside the derived bounds")
    ax.legend(fontsize=7, ncol=1, loc="lower right")
    return {"stem": stem, "caption": f"Largest gap f_eps - f_0 over 64 test points (markers) for the {len(rs)} trained layers, "
            "against eps log N and the sharper top-two-gap bound. The sharp bound falls below 1e-16 at small eps, "
            "where the measured gap is zero to rounding.", **save(fig, out_dir, stem)}


def residual_figure(ctx, net, out_dir, stem: str, t0: float = 1.0, n: int = 81) -> dict:
    """Deviation of the autograd PDE residual of a d = 2 module from the derived constant, on an n x n grid."""
    r = net.readout
    y, _ = atoms(ctx, net, t0)
    side = torch.linspace(-2.5, 2.5, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(side, side, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    res = autograd_residual(ctx, net, pts, t0)
    dev = (res - ctx.call("residual", r.arguments(), t=t0)).abs().reshape(gx.shape)
    fig, ax = figure(width=4.6, height=3.8)
    ax.grid(False)
    im = ax.pcolormesh(gx.numpy(), gy.numpy(), torch.log10(dev + 1e-18).numpy(), shading="auto", cmap="cividis", vmin=-18, vmax=-12,
                       rasterized=True)  # an image inside the PDF: 6,561 vector cells would be slow and large
    fig.colorbar(im, ax=ax, label="$\\log_{10}|\\mathcal{R}_{\\mathrm{autograd}} + \\varepsilon d/(2t)|$")
    ax.plot(y[:, 0].numpy(), y[:, 1].numpy(), "w^", ms=4, mec="k", mew=0.5, label="atoms $y_j$ (read out)")
    ax.set_xlim(-2.5, 2.5)
    ax.set_ylim(-2.5, 2.5)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(f"PDE residual of the d = 2 layer, t = {t0:g}, $\\varepsilon$ = {r.eps:g}")
    ax.legend(loc="lower left", fontsize=7)
    return {"stem": stem, "caption": "Deviation of the PDE residual, computed by torch.autograd through the trained d = 2 "
            f"module, from the derived constant -eps d/(2t), on an {n} x {n} grid (max {float(dev.max()):.1e}); "
            "triangles: atoms y_j read out of the weights (some lie outside the window).", **save(fig, out_dir, stem)}


def metric_figure(ctx, net, out_dir, stem: str, t0: float = 1.0) -> dict:
    """``u_eps`` of a d = 2 anisotropic layer with the heat kernel's level sets around each atom."""
    r = net.readout
    A = r.fn_args[ctx.spec.diffusion]
    y, _ = atoms(ctx, net, t0)
    side = torch.linspace(-3, 3, 121, dtype=torch.float64)
    gx, gy = torch.meshgrid(side, side, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    with torch.no_grad():
        u = (r.sq_norm(pts) / (4 * t0) - scalar_output(r.module)(pts)).reshape(gx.shape)
    fig, ax = figure(width=4.8, height=4.0)
    ax.grid(False)
    cs = ax.contourf(gx.numpy(), gy.numpy(), u.numpy(), levels=24, cmap="cividis")
    fig.colorbar(cs, ax=ax, label="$u_\\varepsilon(x, t) = x^T A^{-1} x/(4t) - f_\\varepsilon(x)$ (module)")
    # the kernel exp(-(x-y)^T A^-1 (x-y)/(4 eps t)) is 1/e of its peak on the ellipse (x-y)^T A^-1 (x-y) = 4 eps t
    evals, evecs = torch.linalg.eigh(A)
    theta = torch.linspace(0, 2 * math.pi, 100, dtype=torch.float64)
    circle = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    ellipse = (circle * torch.sqrt(4 * r.eps * t0 * evals)) @ evecs.T
    for n, c in enumerate(y):
        ax.plot((c[0] + ellipse[:, 0]).numpy(), (c[1] + ellipse[:, 1]).numpy(), color="w", lw=0.7,
                label="kernel level set $(x-y_j)^T A^{-1} (x-y_j) = 4\\varepsilon t$" if n == 0 else None)
    ax.plot(y[:, 0].numpy(), y[:, 1].numpy(), "w^", ms=4, mec="k", mew=0.5, label="atoms $y_j = 2tAW_j$")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(f"Learned metric: eigenvalues of A = {evals[0]:.3g}, {evals[1]:.3g}")
    ax.legend(loc="lower left", fontsize=7)
    return {"stem": stem, "caption": "u_eps of the trained d = 2 anisotropic layer, computed from the module's forward pass, with the "
            "heat kernel's 1/e level sets (metric A^-1 = L^T L read from the learned map) around the atoms read out by the "
            "generated parameter map: the diffusion is stretched along the eigenvectors of A.", **save(fig, out_dir, stem)}


# ----------------------------------------------------------------------------- activations and MLPs
def activation_figures(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    """The activation classes (curves across eps with their tropical limits), the table, and the depth bound."""
    der = derive(arch.spec)
    fns = der.functions
    rows = activation_table(der)
    out_dir = Path(out_dir)
    # the table, generated from the derivation, as Markdown / LaTeX / JSON beside the figures
    atomic_write(out_dir / "activations.md", table_markdown(rows).encode())
    atomic_write(out_dir / "activations.tex", table_latex(rows).encode())
    atomic_write(out_dir / "activations.json", (json.dumps(rows, indent=2, sort_keys=True) + "\n").encode())
    out = []

    # 1. every activation across eps against its derived tropical limit
    plt = _mpl()
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 5.6), layout="constrained")
    z = torch.linspace(-3, 3, 601, dtype=torch.float64)[None, :]
    by_name = {r["name"]: r for r in rows}
    for ax, name in zip(axes.reshape(-1), by_name):
        act = fns[f"act_{name}"]
        for n, eps in enumerate((1.0, 0.5, 0.2) if "eps" in act.arg_names else (1.0,)):
            ax.plot(z[0].numpy(), act(x=z, **({"eps": eps} if "eps" in act.arg_names else {}))[0].numpy(), color=PALETTE[n],
                    label=f"$\\varepsilon$ = {eps:g}")
        ax.plot(z[0].numpy(), fns[f"act0_{name}"](x=z)[0].numpy(), "k--", lw=1.1, label="tropical limit (derived)")
        ax.set_title(f"{name}: {by_name[name]['class']}")
        ax.set_xlabel("z")
        ax.set_ylabel(f"{name}$_\\varepsilon(z)$")
    axes[0, 0].legend(fontsize=7)
    out.append({"stem": "softplus-mlp-activations", "caption": "Each activation at three temperatures (generated from its spec string) "
                "with the tropical limit derived by SymPy (dashed). Titles give the derived class: LSE (one HJ step), nabla (the "
                "gradient of a two-atom log-sum-exp), tropical (the Hopf-Lax step itself) or open.", **save(fig, out_dir, "softplus-mlp-activations")})

    # 2. the table as a figure (plain-text cells; the LaTeX version is activations.tex)
    table = der.results["activation_table"]
    fig, ax = plt.subplots(figsize=(10.5, 2.6), layout="constrained")
    ax.axis("off")
    cells = []
    for name, info in table.items():
        cells.append([name, limit_text(info), _short(structure_form(info, plain=True)), info["cls"],
                      _short(sp.sstr(info["gap"]))])
    tab = ax.table(cellText=cells, colLabels=["activation", "tropical limit", "finite-eps structure", "class", "gap"], loc="center",
                   cellLoc="left", colWidths=[0.08, 0.17, 0.26, 0.07, 0.42])
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1, 1.5)
    out.append({"stem": "softplus-mlp-table", "caption": "The activation table, generated from the derivation's steps (activations.md and "
                "activations.tex beside this page hold the same table with LaTeX formulas).", **save(fig, out_dir, "softplus-mlp-table")})

    # 3. depth: measured tropical error of softplus nets against the derived bound
    curve = report.check("tropical_depth").details.get("curve", []) if any(c.name == "tropical_depth" for c in report.checks) else []
    if curve:
        fig, ax = figure()
        for n, depth in enumerate(sorted({c["depth"] for c in curve})):
            pts = [c for c in curve if c["depth"] == depth]
            eps = [c["eps"] for c in pts]
            ax.loglog(eps, [c["max_gap"] for c in pts], "o-", color=PALETTE[n], ms=4, label=f"measured, depth {depth}")
            ax.loglog(eps, [c["bound"] for c in pts], "--", color=PALETTE[n], lw=1, label=f"derived bound, depth {depth}")
        ax.set_xlabel("$\\varepsilon$ (nn.Softplus(beta = 1/$\\varepsilon$))")
        ax.set_ylabel("$\\max_x |f_\\varepsilon(x) - f_0(x)|$")
        ax.set_title("Softplus network $\\to$ ReLU network: error inside $\\varepsilon \\log 2 \\sum_\\ell \\prod |W|$")
        ax.legend(fontsize=7)
        out.append({"stem": "softplus-mlp-depth", "caption": "Largest |f_eps - f_0| of the trained softplus MLPs (depths 1-3) and their "
                    "ReLU twins, against the derived bound eps log 2 times the propagation factor of the absolute weights.",
                    **save(fig, out_dir, "softplus-mlp-depth")})
    return out


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


# ----------------------------------------------------------------------------- attention
def attention_figures(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    """Per-head entropy and attention maps of the trained transformer; the L2 characteristic step."""
    ctx = context(arch, seed=seed)
    fns = ctx.fns
    model = train_tiny_transformer(seed=seed).to(torch.float64)
    _, H_b, _, per_head, w = head_entropies(ctx, model)
    out = []
    plt = _mpl()
    fig, axes = plt.subplots(1, 1 + len(per_head), figsize=(4.0 + 3.0 * len(per_head), 3.2), layout="constrained")
    ax = axes[0]
    ax.bar([f"head {h}" for h in range(len(per_head))], per_head, color=[PALETTE[h] for h in range(len(per_head))])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("attention head")
    ax.set_ylabel("mean $H(\\pi)/\\log k$ over queries")
    ax.set_title("Particle (0) or wave (1)?")
    for h, v in enumerate(per_head):
        ax.text(h, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
    for h in range(len(per_head)):
        axh = axes[1 + h]
        axh.grid(False)
        im = axh.imshow(w[0, h].numpy(), cmap="cividis", vmin=0, vmax=1)
        axh.set_title(f"head {h}: weights of one sequence")
        axh.set_xlabel("key")
        axh.set_ylabel("query")
    fig.colorbar(im, ax=axes[-1], shrink=0.8, label="attention weight $\\pi$")
    out.append({"stem": "attention-entropy", "caption": "The trained pre-LN transformer (copy the previous token; average the "
                "prefix): normalised entropy of each head's Gibbs weights (from the generated H = LSE(z) - E_pi[z], equal to "
                "-sum pi log pi of the module's weights, see check 'entropy') and the weights of one sequence. One head is a "
                "particle (attends to one key), the other a wave (spreads over all visible keys).",
                **save(fig, out_dir, "attention-entropy")})

    # L2 attention is one characteristic step: arrows from each query to E_pi[k] = q - 2t grad u
    q, k = l2_inputs(ctx, 2)
    x = q.clone().requires_grad_(True)
    u = fns["u"](x=x, eps=1.0, y=k, g=torch.zeros(k.shape[0], dtype=torch.float64), t=1.0)
    (grad,) = torch.autograd.grad(u.sum(), x)
    foot = (q - 2 * grad).detach()
    fig, ax = figure(width=4.8, height=4.2)
    ax.scatter(k[:, 0].numpy(), k[:, 1].numpy(), marker="^", color=PALETTE[1], label="keys = atoms $y_j$", zorder=3)
    ax.scatter(q[:, 0].numpy(), q[:, 1].numpy(), s=12, color=PALETTE[0], label="queries $x$", zorder=3)
    for a, b in zip(q, foot):
        ax.annotate("", xy=(float(b[0]), float(b[1])), xytext=(float(a[0]), float(a[1])),
                    arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.8})
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title("L2 attention = $x - 2t\\nabla u$ (t = 1)")
    ax.legend(fontsize=7, loc="lower left")
    out.append({"stem": "attention-l2-step", "caption": "Each query moves to the Gibbs average of the keys under the scores "
                "-|x - y_j|^2/(4t): the foot of the characteristic of the Hopf-Cole solution u through (x, t), computed as "
                "x - 2t grad u with torch.autograd of the generated u.", **save(fig, out_dir, "attention-l2-step")})
    return out


# ----------------------------------------------------------------------------- the commutative diagram
def diagram_figure(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    """The diagram drawn from its networkx graph, each edge annotated with its measured error and bound."""
    graph = diagram_graph()
    table = report.check("edges").details["table"] if any(c.name == "edges" for c in report.checks) else []
    eps_show = 0.1
    colours = {"exact": PALETTE[2], "eps": PALETTE[0], "variational": PALETTE[4], "N'": PALETTE[1]}
    fig, (ax, ax2) = figure(ncols=2, width=5.4, height=4.4)
    ax.grid(False)
    ax.axis("off")
    pos = {n: graph.nodes[n]["pos"] for n in graph.nodes}
    for a, b, data in graph.edges(data=True):
        kind = data["kind"]
        colour = next((c for k, c in colours.items() if kind.startswith(k)), "0.3")
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.plot([x0, x1], [y0, y1], color=colour, lw=2, zorder=1)
        row = next((t for t in table if t["eps"] == eps_show and t["edge"] in (f"{a} -- {b}", f"{b} -- {a}")), None)
        text = kind.replace("eps -> 0", "ε→0").replace("N' -> inf", "N'→∞")
        if row is not None:
            text += f"\n{row['max_measured']:.1e} ≤ {row['bound_value']:.1e}"
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, text, fontsize=6, ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour, "lw": 0.6}, zorder=2)
    for n, (x, y) in pos.items():
        ax.scatter([x], [y], s=650, color="white", edgecolors="k", zorder=3)
        ax.text(x, y, f"${graph.nodes[n]['tex']}$", ha="center", va="center", fontsize=10, zorder=4)
    ax.set_xlim(-2.1, 4.3)
    ax.set_ylim(-1.0, 3.0)
    ax.set_title(f"The diagram at ε = {eps_show:g} (measured ≤ derived)")
    edges = sorted({t["edge"] for t in table if t["kind"].startswith("eps")})
    for n, name in enumerate(edges):
        pts = [t for t in table if t["edge"] == name]
        ax2.loglog([t["eps"] for t in pts], [t["max_measured"] for t in pts], "o-", ms=4, color=PALETTE[n % len(PALETTE)], label=name)
        ax2.loglog([t["eps"] for t in pts], [t["bound_value"] for t in pts], "--", lw=0.8, color=PALETTE[n % len(PALETTE)])
    ax2.set_xlabel("$\\varepsilon$")
    ax2.set_xticks(sorted({t["eps"] for t in table}), [f"{e:g}" for e in sorted({t["eps"] for t in table})])
    ax2.minorticks_off()
    ax2.set_ylabel("largest measured gap (dashed: derived bound)")
    ax2.set_title("The $\\varepsilon \\to 0$ edges: rate $\\varepsilon \\log N$")
    ax2.legend(fontsize=6)
    paths = report.check("paths").details if any(c.name == "paths" for c in report.checks) else {}
    caption = ("The commutative diagram as hjsym checks it on the trained d = 2 LSE layer: nodes are realised by independent "
               "routes, edges are labelled with the largest measured gap and its derived bound at eps = 0.1; right: the eps -> 0 "
               "edges over eps. ")
    if paths:
        caption += (f"All {paths.get('paths')} simple paths between pairs of nodes and {paths.get('pairs_of_paths')} pairs of "
                    "such paths land within the sum of their edges' bounds (check 'paths').")
    # not "diagram": the LaTeX report diagram.tex would find its own PDF output under that name
    return [{"stem": "diagram-square", "caption": caption, **save(fig, out_dir, "diagram-square")}]
