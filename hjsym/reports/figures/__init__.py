"""Report figures, by the suite that checked the architecture (the figures read its networks and its check report).

``figures_for(arch, report, out_dir, seed=...)`` returns ``[{stem, caption, png, pdf}, ...]`` for
an architecture's page; the derivation graph every page has is drawn by
:func:`~hjsym.reports.figures.common.derivation_graph_figure`.
"""

from __future__ import annotations

from ...checks.api import suite_of
from .common import activation_figures, attention_figures, derivation_graph_figure, diagram_figure, lse_figures
from .control import control_figures
from .variational import brachistochrone_figures, fokker_planck_figures, mean_field_figures

__all__ = ["figures_for", "FIGURES", "derivation_graph_figure"]

#: suite name -> figure function ``(arch, report, out_dir, *, seed) -> list[dict]``
FIGURES = {
    "lse": lse_figures,
    "activations": activation_figures,
    "attention": attention_figures,
    "diagram": diagram_figure,
    "control": control_figures,
    "variational": brachistochrone_figures,
    "gradient-flow": fokker_planck_figures,
    "mean-field": mean_field_figures,
}


def figures_for(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    """The figures of an architecture's page (none when no suite checks it)."""
    suite = suite_of(arch)
    fn = FIGURES.get(suite.name) if suite is not None else None
    return [] if fn is None or report is None else fn(arch, report, out_dir, seed=seed)
