"""Bibliography: the paper and the prior work the derivation steps rely on (BibTeX as data)."""

from __future__ import annotations

__all__ = ["REFERENCES", "bibtex", "cite_text"]

REFERENCES = {
    "hjdl2026": {
        "type": "misc",
        "author": "Mi{\\~n}oza, Jose Marie Antonio and Legara, Erika Fille T. and Monterola, Christopher P.",
        "title": "The {H}amilton--{J}acobi Theory of Deep Learning",
        "year": "2026",
        "note": "arXiv:2605.28983",
        "short": "Miñoza, Legara, Monterola. The Hamilton-Jacobi Theory of Deep Learning. arXiv:2605.28983, 2026.",
    },
    "hopf1950": {
        "type": "article",
        "author": "Hopf, Eberhard",
        "title": "The partial differential equation $u_t + u u_x = \\mu u_{xx}$",
        "journal": "Communications on Pure and Applied Mathematics",
        "volume": "3",
        "pages": "201--230",
        "year": "1950",
        "short": "E. Hopf. The partial differential equation u_t + u u_x = mu u_xx. Comm. Pure Appl. Math. 3, 1950.",
    },
    "cole1951": {
        "type": "article",
        "author": "Cole, Julian D.",
        "title": "On a quasi-linear parabolic equation occurring in aerodynamics",
        "journal": "Quarterly of Applied Mathematics",
        "volume": "9",
        "pages": "225--236",
        "year": "1951",
        "short": "J. D. Cole. On a quasi-linear parabolic equation occurring in aerodynamics. Quart. Appl. Math. 9, 1951.",
    },
    "evans2010": {
        "type": "book",
        "author": "Evans, Lawrence C.",
        "title": "Partial Differential Equations",
        "publisher": "American Mathematical Society",
        "edition": "2",
        "year": "2010",
        "short": "L. C. Evans. Partial Differential Equations, 2nd ed. AMS, 2010 (Hopf-Lax formula: section 3.3; Hopf-Cole: 4.4).",
    },
    "pontryagin1962": {
        "type": "book",
        "author": "Pontryagin, L. S. and Boltyanskii, V. G. and Gamkrelidze, R. V. and Mishchenko, E. F.",
        "title": "The Mathematical Theory of Optimal Processes",
        "publisher": "Interscience",
        "year": "1962",
        "short": "L. S. Pontryagin et al. The Mathematical Theory of Optimal Processes. Interscience, 1962.",
    },
    "vaswani2017": {
        "type": "inproceedings",
        "author": "Vaswani, Ashish and Shazeer, Noam and Parmar, Niki and Uszkoreit, Jakob and Jones, Llion and Gomez, Aidan N. and Kaiser, {\\L}ukasz and Polosukhin, Illia",
        "title": "Attention is All you Need",
        "booktitle": "Advances in Neural Information Processing Systems",
        "volume": "30",
        "year": "2017",
        "short": "A. Vaswani et al. Attention is all you need. NeurIPS 30, 2017.",
    },
    "cuturi2013": {
        "type": "inproceedings",
        "author": "Cuturi, Marco",
        "title": "Sinkhorn Distances: Lightspeed Computation of Optimal Transport",
        "booktitle": "Advances in Neural Information Processing Systems",
        "volume": "26",
        "year": "2013",
        "short": "M. Cuturi. Sinkhorn distances: lightspeed computation of optimal transport. NeurIPS 26, 2013 (entropic regularisation).",
    },
    "maclagan2015": {
        "type": "book",
        "author": "Maclagan, Diane and Sturmfels, Bernd",
        "title": "Introduction to Tropical Geometry",
        "publisher": "American Mathematical Society",
        "year": "2015",
        "short": "D. Maclagan, B. Sturmfels. Introduction to Tropical Geometry. AMS, 2015.",
    },
}


def bibtex(keys=None) -> str:
    """BibTeX entries for ``keys`` (all by default), in a fixed order."""
    out = []
    for key in keys or REFERENCES:
        entry = REFERENCES[key]
        fields = ",\n".join(f"  {k} = {{{v}}}" for k, v in entry.items() if k not in ("type", "short"))
        out.append(f"@{entry['type']}{{{key},\n{fields}\n}}")
    return "\n\n".join(out) + "\n"


def cite_text(key: str) -> str:
    return REFERENCES[key]["short"]
