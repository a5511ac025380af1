"""Plot helpers shared by the experiment figures (on top of :mod:`hjsym.reports.figures.common`)."""

from __future__ import annotations

import torch

from ..reports.figures.common import PALETTE, figure, save

__all__ = ["band", "ci_panel", "figure", "save", "PALETTE", "fig_entry"]


def band(ax, x, ys, label: str, color: str, *, loglog: bool = True, marker: str = "o") -> None:
    """Mean over seeds (line and markers) and the seeds' min-max range (shaded). ``ys``: ``(seeds, len(x))``."""
    ys = torch.as_tensor(ys, dtype=torch.float64)
    x = torch.as_tensor(x, dtype=torch.float64)
    mean = ys.mean(0)
    ax.plot(x.numpy(), mean.numpy(), marker=marker, ms=3.5, color=color, label=label)
    if ys.shape[0] > 1:
        ax.fill_between(x.numpy(), ys.min(0).values.numpy(), ys.max(0).values.numpy(), color=color, alpha=0.18, lw=0)
    if loglog:
        ax.set_xscale("log")
        ax.set_yscale("log")


def ci_panel(ax, labels, cis, targets=None, *, xlabel: str, ylabel: str) -> None:
    """Horizontal 95 % intervals (mean, lo, hi dicts) per label, with the paper's values as crosses."""
    for k, (lab, ci) in enumerate(zip(labels, cis)):
        ax.errorbar([ci["mean"]], [k], xerr=[[ci["mean"] - ci["lo"]], [ci["hi"] - ci["mean"]]], fmt="o", color=PALETTE[0], capsize=3,
                    label="measured (95 % CI)" if k == 0 else None)
        if targets is not None and targets[k] is not None:
            ax.plot([targets[k]], [k], "x", color=PALETTE[3], ms=8, mew=2, label="paper" if k == 0 else None)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best")


def fig_entry(fig, folder, stem: str, caption: str) -> dict:
    """Save ``fig`` as ``stem.png``/``stem.pdf`` and return its page entry.

    ``stem`` must differ from the folder's name: ``NAME.pdf`` is the page's compiled LaTeX.
    """
    from pathlib import Path

    if stem == Path(folder).name:
        raise ValueError(f"figure {stem!r} would overwrite the page's own {stem}.pdf; fix: name the figure after what it shows "
                         f"(e.g. {stem + '-rates'!r})")
    return {"stem": stem, "caption": caption, **save(fig, folder, stem)}
