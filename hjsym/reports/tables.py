"""Tables a report shows as Markdown and LaTeX (the activation classes of a derivation)."""

from __future__ import annotations

from .texescape import tex_escape

__all__ = ["table_markdown", "table_latex"]


def table_markdown(rows) -> str:
    """The activation table as Markdown (formulas in ``$...$``)."""
    out = ["| activation | torch module | tropical limit | finite-eps structure | class | gap | tropical error |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['name']} | `{r['torch']}` | ${r['tropical']}$ | ${r['structure']}$ | {r['class']} | ${r['gap']}$ | ${r['error']}$ |")
    return "\n".join(out) + "\n"


def table_latex(rows) -> str:
    """The activation table as a LaTeX ``tabular``."""
    out = [r"\begin{tabular}{lllll}", r"activation & tropical limit & finite-$\varepsilon$ structure & class & gap \\ \hline"]
    for r in rows:
        out.append(f"{tex_escape(r['name'])} & ${r['tropical']}$ & ${r['structure']}$ & {r['class']} & ${r['gap']}$ \\\\")
    out.append(r"\end{tabular}")
    return "\n".join(out) + "\n"
