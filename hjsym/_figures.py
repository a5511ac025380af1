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
import textwrap
from pathlib import Path

import torch

from ._cache import atomic_write

__all__ = ["PALETTE", "STATUS_COLOURS", "figure", "save", "check_labelled", "derivation_graph_figure", "lse_figures"]

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
    from matplotlib.patches import FancyBboxPatch, Patch
    from matplotlib.path import Path as MPath
    from matplotlib.patches import FancyArrowPatch

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
        wrapped = textwrap.wrap(f"({data.get('number', '?')}) {data.get('title', n)}", 24)
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
    from ._derivation import load_functions
    from ._modules import read_lse, scalar_output, set_eps
    from .suites.lse import T0, Context, autograd_residual, reference_modules

    fns = load_functions(arch.spec)
    nets = {net.linear.in_features: net for net in reference_modules(seed)}
    out = []

    # 1. f_eps on a line, for several eps, against the max-plus network f_0
    r1 = read_lse(nets[1])
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
    out.append({"stem": "lse-slice", "caption": "The trained d = 1 layer evaluated at several temperatures (its Linear weights fixed), "
                "the max-plus network f_0 generated from the tropical-limit step, and the N affine pieces (grey).", **save(fig, out_dir, "lse-slice")})

    # 2. tropical gap against the derived bounds, over a fine eps grid
    fig, ax = figure()
    eps_grid = torch.logspace(-4, 0.5, 28, dtype=torch.float64)
    for n, d in enumerate(sorted(nets)):
        r = read_lse(nets[d])
        gen = torch.Generator().manual_seed(10_000 + seed * 97 + d)
        pts = torch.randn(64, d, generator=gen, dtype=torch.float64)
        f0 = fns["f0"](x=pts, W=r.W, b=r.b)
        m = copy.deepcopy(r.module)
        gaps, sharp = [], []
        for e in eps_grid.tolist():
            set_eps(m, e)
            with torch.no_grad():
                gaps.append(float((scalar_output(m)(pts) - f0).max()))
            sharp.append(float(fns["tropical_bound_sharp"](x=pts, W=r.W, b=r.b, eps=e).max()))
        ax.loglog(eps_grid.numpy(), gaps, "o", ms=3, color=PALETTE[n], label=f"measured max gap, d = {d}")
        ax.loglog(eps_grid.numpy(), sharp, "-", lw=0.8, color=PALETTE[n], alpha=0.7, label=f"sharp bound (max over points), d = {d}")
    n_atoms = read_lse(nets[1]).n_atoms
    ax.loglog(eps_grid.numpy(), [float(fns["tropical_bound"](eps=e, N=n_atoms)) for e in eps_grid.tolist()], "k--", lw=1.2,
              label=f"$\\varepsilon \\log N$, N = {n_atoms}")
    ax.set_ylim(1e-18, 10)
    ax.set_xlabel("temperature / viscosity $\\varepsilon$")
    ax.set_ylabel("$\\max_x\\, f_\\varepsilon(x) - f_0(x)$")
    ax.set_title("Tropical limit: measured gap inside the derived bounds")
    ax.legend(fontsize=7, ncol=1, loc="lower right")
    out.append({"stem": "lse-tropical", "caption": "Largest gap f_eps - f_0 over 64 test points (markers) for the three trained layers, "
                "against eps log N and the sharper top-two-gap bound. The sharp bound falls below 1e-16 at small eps, "
                "where the measured gap is zero to rounding.", **save(fig, out_dir, "lse-tropical")})

    # 3. PDE residual over the domain (d = 2), by autograd through the module
    r2 = read_lse(nets[2])
    y = fns["atoms_y"](W=r2.W, t=T0)
    side = torch.linspace(-2.5, 2.5, 81, dtype=torch.float64)
    gx, gy = torch.meshgrid(side, side, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    res = autograd_residual(Context(fns, torch.float64, seed), r2, pts, T0)
    dev = (res - fns["residual"](eps=r2.eps, t=T0, d=2)).abs().reshape(gx.shape)
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
    ax.set_title(f"PDE residual of the d = 2 layer, t = {T0:g}, $\\varepsilon$ = {r2.eps:g}")
    ax.legend(loc="lower left", fontsize=7)
    out.append({"stem": "lse-residual", "caption": "Deviation of the PDE residual, computed by torch.autograd through the trained d = 2 "
                f"module, from the derived constant -eps d/(2t), on an 81 x 81 grid (max {float(dev.max()):.1e}); "
                "triangles: atoms y_j = 2t W_j read out of the weights (some lie outside the window).", **save(fig, out_dir, "lse-residual")})
    return out
