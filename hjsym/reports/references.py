"""Bibliography: the paper and the prior work the derivation steps rely on (BibTeX as data).

``REFERENCES`` holds the entries; ``STEP_CITATIONS`` says which of them a derivation step relies
on (matched on the step's id and title, so it serves every architecture whose passes produce such
a step), with the theorem or section where the result is found.
"""

from __future__ import annotations

import re

__all__ = ["REFERENCES", "STEP_CITATIONS", "bibtex", "cite_text", "step_citations"]

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
    # ------------------------------------------------------------------ prior work cited per step
    "litvinov2007": {
        "type": "article",
        "author": "Litvinov, G. L.",
        "title": "Maslov dequantization, idempotent and tropical mathematics: a brief introduction",
        "journal": "Journal of Mathematical Sciences",
        "volume": "140",
        "number": "3",
        "pages": "426--444",
        "year": "2007",
        "short": "G. L. Litvinov. Maslov dequantization, idempotent and tropical mathematics: a brief introduction. "
        "J. Math. Sci. 140, 2007.",
    },
    "crandall1983": {
        "type": "article",
        "author": "Crandall, Michael G. and Lions, Pierre-Louis",
        "title": "Viscosity solutions of {H}amilton--{J}acobi equations",
        "journal": "Transactions of the American Mathematical Society",
        "volume": "277",
        "number": "1",
        "pages": "1--42",
        "year": "1983",
        "short": "M. G. Crandall, P.-L. Lions. Viscosity solutions of Hamilton-Jacobi equations. Trans. AMS 277, 1983.",
    },
    "bellman1957": {
        "type": "book",
        "author": "Bellman, Richard",
        "title": "Dynamic Programming",
        "publisher": "Princeton University Press",
        "year": "1957",
        "short": "R. Bellman. Dynamic Programming. Princeton University Press, 1957.",
    },
    "fleming2006": {
        "type": "book",
        "author": "Fleming, Wendell H. and Soner, H. Mete",
        "title": "Controlled {M}arkov Processes and Viscosity Solutions",
        "publisher": "Springer",
        "edition": "2",
        "year": "2006",
        "short": "W. H. Fleming, H. M. Soner. Controlled Markov Processes and Viscosity Solutions, 2nd ed. Springer, 2006.",
    },
    "kalman1960": {
        "type": "article",
        "author": "Kalman, R. E.",
        "title": "Contributions to the theory of optimal control",
        "journal": "Boletin de la Sociedad Matematica Mexicana",
        "volume": "5",
        "pages": "102--119",
        "year": "1960",
        "short": "R. E. Kalman. Contributions to the theory of optimal control. Bol. Soc. Mat. Mexicana 5, 1960.",
    },
    "lecun1988": {
        "type": "inproceedings",
        "author": "LeCun, Yann",
        "title": "A theoretical framework for back-propagation",
        "booktitle": "Proceedings of the 1988 Connectionist Models Summer School",
        "pages": "21--28",
        "year": "1988",
        "short": "Y. LeCun. A theoretical framework for back-propagation. Connectionist Models Summer School, 1988.",
    },
    "e2017": {
        "type": "article",
        "author": "E, Weinan",
        "title": "A proposal on machine learning via dynamical systems",
        "journal": "Communications in Mathematics and Statistics",
        "volume": "5",
        "number": "1",
        "pages": "1--11",
        "year": "2017",
        "short": "W. E. A proposal on machine learning via dynamical systems. Commun. Math. Stat. 5, 2017.",
    },
    "li2018": {
        "type": "article",
        "author": "Li, Qianxiao and Chen, Long and Tai, Cheng and E, Weinan",
        "title": "Maximum Principle Based Algorithms for Deep Learning",
        "journal": "Journal of Machine Learning Research",
        "volume": "18",
        "number": "165",
        "pages": "1--29",
        "year": "2018",
        "short": "Q. Li, L. Chen, C. Tai, W. E. Maximum principle based algorithms for deep learning. JMLR 18(165), 2018.",
    },
    "woodworth2020": {
        "type": "inproceedings",
        "author": "Woodworth, Blake and Gunasekar, Suriya and Lee, Jason D. and Moroshko, Edward and Savarese, Pedro and Golan, Itay "
                  "and Soudry, Daniel and Srebro, Nathan",
        "title": "Kernel and Rich Regimes in Overparametrized Models",
        "booktitle": "Proceedings of the 33rd Conference on Learning Theory (COLT)",
        "series": "PMLR",
        "volume": "125",
        "pages": "3635--3673",
        "year": "2020",
        "short": "B. Woodworth et al. Kernel and rich regimes in overparametrized models. COLT 2020, PMLR 125.",
    },
    "yang2019": {
        "type": "inproceedings",
        "author": "Yang, Greg",
        "title": "Wide Feedforward or Recurrent Neural Networks of Any Architecture are {G}aussian Processes",
        "booktitle": "Advances in Neural Information Processing Systems",
        "volume": "32",
        "year": "2019",
        "short": "G. Yang. Wide feedforward or recurrent neural networks of any architecture are Gaussian processes "
                 "(Tensor Programs I). NeurIPS 32, 2019.",
    },
    # ------------------------------------------------------------------ the variational family (seed 004)
    "bernoulli1696": {
        "type": "article",
        "author": "Bernoulli, Johann",
        "title": "Problema novum ad cujus solutionem Mathematici invitantur",
        "journal": "Acta Eruditorum",
        "pages": "269",
        "year": "1696",
        "short": "Joh. Bernoulli. Problema novum ad cujus solutionem mathematici invitantur. Acta Eruditorum, 1696 (the brachistochrone).",
    },
    "gelfand1963": {
        "type": "book",
        "author": "Gelfand, I. M. and Fomin, S. V.",
        "title": "Calculus of Variations",
        "publisher": "Prentice-Hall",
        "year": "1963",
        "short": "I. M. Gelfand, S. V. Fomin. Calculus of Variations. Prentice-Hall, 1963 (Euler-Lagrange: Sec. 1.4; Beltrami: 1.4; "
        "canonical equations and Hamilton-Jacobi: Ch. 4).",
    },
    "goldstein2002": {
        "type": "book",
        "author": "Goldstein, Herbert and Poole, Charles and Safko, John",
        "title": "Classical Mechanics",
        "publisher": "Addison Wesley",
        "edition": "3",
        "year": "2002",
        "short": "H. Goldstein, C. Poole, J. Safko. Classical Mechanics, 3rd ed. Addison Wesley, 2002 (Legendre transform: Sec. 8.1).",
    },
    "jko1998": {
        "type": "article",
        "author": "Jordan, Richard and Kinderlehrer, David and Otto, Felix",
        "title": "The variational formulation of the {F}okker--{P}lanck equation",
        "journal": "SIAM Journal on Mathematical Analysis",
        "volume": "29",
        "number": "1",
        "pages": "1--17",
        "year": "1998",
        "short": "R. Jordan, D. Kinderlehrer, F. Otto. The variational formulation of the Fokker-Planck equation. SIAM J. Math. Anal. 29, 1998.",
    },
    "otto2001": {
        "type": "article",
        "author": "Otto, Felix",
        "title": "The geometry of dissipative evolution equations: the porous medium equation",
        "journal": "Communications in Partial Differential Equations",
        "volume": "26",
        "pages": "101--174",
        "year": "2001",
        "short": "F. Otto. The geometry of dissipative evolution equations: the porous medium equation. Comm. PDE 26, 2001.",
    },
    "villani2009": {
        "type": "book",
        "author": "Villani, C{\\'e}dric",
        "title": "Optimal Transport: Old and New",
        "publisher": "Springer",
        "year": "2009",
        "short": "C. Villani. Optimal Transport: Old and New. Springer, 2009.",
    },
    "ambrosio2008": {
        "type": "book",
        "author": "Ambrosio, Luigi and Gigli, Nicola and Savar{\\'e}, Giuseppe",
        "title": "Gradient Flows in Metric Spaces and in the Space of Probability Measures",
        "publisher": "Birkh{\\\"a}user",
        "edition": "2",
        "year": "2008",
        "short": "L. Ambrosio, N. Gigli, G. Savaré. Gradient Flows in Metric Spaces and in the Space of Probability Measures. Birkhäuser, 2008.",
    },
    "mei2018": {
        "type": "article",
        "author": "Mei, Song and Montanari, Andrea and Nguyen, Phan-Minh",
        "title": "A mean field view of the landscape of two-layer neural networks",
        "journal": "Proceedings of the National Academy of Sciences",
        "volume": "115",
        "number": "33",
        "pages": "E7665--E7671",
        "year": "2018",
        "short": "S. Mei, A. Montanari, P.-M. Nguyen. A mean field view of the landscape of two-layer neural networks. PNAS 115, 2018.",
    },
    "chizat2018": {
        "type": "inproceedings",
        "author": "Chizat, L{\\'e}na{\\\"\\i}c and Bach, Francis",
        "title": "On the global convergence of gradient descent for over-parameterized models using optimal transport",
        "booktitle": "Advances in Neural Information Processing Systems",
        "volume": "31",
        "year": "2018",
        "short": "L. Chizat, F. Bach. On the global convergence of gradient descent for over-parameterized models using optimal transport. "
        "NeurIPS 31, 2018.",
    },
    "rotskoff2018": {
        "type": "misc",
        "author": "Rotskoff, Grant M. and Vanden-Eijnden, Eric",
        "title": "Neural networks as interacting particle systems: asymptotic convexity of the loss landscape and universal scaling of "
                 "the approximation error",
        "year": "2018",
        "note": "arXiv:1805.00915",
        "short": "G. M. Rotskoff, E. Vanden-Eijnden. Neural networks as interacting particle systems. arXiv:1805.00915, 2018.",
    },
    "sirignano2020": {
        "type": "article",
        "author": "Sirignano, Justin and Spiliopoulos, Konstantinos",
        "title": "Mean field analysis of neural networks: a central limit theorem",
        "journal": "Stochastic Processes and their Applications",
        "volume": "130",
        "number": "3",
        "pages": "1820--1852",
        "year": "2020",
        "short": "J. Sirignano, K. Spiliopoulos. Mean field analysis of neural networks: a central limit theorem. Stoch. Proc. Appl. 130, 2020.",
    },
    "jacot2018": {
        "type": "inproceedings",
        "author": "Jacot, Arthur and Gabriel, Franck and Hongler, Cl{\\'e}ment",
        "title": "Neural tangent kernel: convergence and generalization in neural networks",
        "booktitle": "Advances in Neural Information Processing Systems",
        "volume": "31",
        "year": "2018",
        "short": "A. Jacot, F. Gabriel, C. Hongler. Neural tangent kernel: convergence and generalization in neural networks. NeurIPS 31, 2018.",
    },
    "chizat2019": {
        "type": "inproceedings",
        "author": "Chizat, L{\\'e}na{\\\"\\i}c and Oyallon, Edouard and Bach, Francis",
        "title": "On lazy training in differentiable programming",
        "booktitle": "Advances in Neural Information Processing Systems",
        "volume": "32",
        "year": "2019",
        "short": "L. Chizat, E. Oyallon, F. Bach. On lazy training in differentiable programming. NeurIPS 32, 2019.",
    },
    "flamary2021": {
        "type": "article",
        "author": "Flamary, R{\\'e}mi and others",
        "title": "{POT}: Python Optimal Transport",
        "journal": "Journal of Machine Learning Research",
        "volume": "22",
        "number": "78",
        "pages": "1--8",
        "year": "2021",
        "short": "R. Flamary et al. POT: Python Optimal Transport. JMLR 22, 2021.",
    },
    "cohen2021": {
        "type": "inproceedings",
        "author": "Cohen, Jeremy and Kaur, Simran and Li, Yuanzhi and Kolter, J. Zico and Talwalkar, Ameet",
        "title": "Gradient descent on neural networks typically occurs at the edge of stability",
        "booktitle": "International Conference on Learning Representations",
        "year": "2021",
        "short": "J. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar. Gradient descent on neural networks typically occurs at the edge of "
        "stability. ICLR, 2021.",
    },
}

#: Which works a derivation step relies on: (pattern on "step-id title", ((key, where), ...)).
#: Every matching rule contributes, in this order; ``where`` is a theorem or section ("" for the whole work).
STEP_CITATIONS = (
    (r"hj-equation|hamilton-jacobi equation", (("evans2010", "Sec. 3.3"), ("crandall1983", ""))),
    (r"characteristic", (("evans2010", "Sec. 3.2"),)),
    (r"legendre|convexity", (("evans2010", "Sec. 3.3.2"),)),
    (r"hopf-lax", (("evans2010", "Sec. 3.3.2"),)),
    (r"hopf-cole", (("hopf1950", ""), ("cole1951", ""), ("evans2010", "Sec. 4.4.1"))),
    (r"heat-kernel|fundamental solution|linear-equation", (("evans2010", "Sec. 2.3.1"),)),
    (r"atomic-solution|unnormalised-solution|residual", (("hjdl2026", ""),)),
    (r"parameter-map|^identity|network.*identity", (("hjdl2026", "Thm. 4.1"),)),
    (r"hessian|curvature|robustness", (("hjdl2026", "Cor. 8.2"),)),
    (r"attribution|influence", (("hjdl2026", ""),)),
    (r"tropical|max-plus|relu", (("hjdl2026", "Thm. 7.1"), ("litvinov2007", ""), ("maclagan2015", ""))),
    (r"diagram|commut", (("hjdl2026", "Thm. 7.1"),)),
    (r"attention", (("vaswani2017", ""), ("hjdl2026", ""))),
    (r"costate|adjoint|backprop", (("pontryagin1962", ""), ("lecun1988", ""))),
    (r"control hamiltonian|pontryagin|maximum principle", (("pontryagin1962", ""), ("e2017", ""))),
    (r"hjb|bellman|value function|dynamic programming", (("bellman1957", ""), ("fleming2006", ""))),
    (r"riccati|lqr|linear-quadratic", (("kalman1960", ""),)),
    (r"training", (("li2018", ""),)),
    (r"kolmogorov|noise|viscous resnet", (("fleming2006", ""),)),
    (r"continuous depth|continuous limit|euler(?!-lagrange)", (("e2017", ""),)),
    (r"first-variation|euler-lagrange|beltrami|parametric-extremal", (("gelfand1963", "Ch. 1"),)),
    (r"parametric-extremal", (("bernoulli1696", ""),)),
    (r"variational-legendre|variational-hj|free-particle", (("goldstein2002", "Sec. 8.1"), ("gelfand1963", "Ch. 4"))),
    (r"free-energy|wasserstein-flow|gibbs-equilibrium|dissipation|jko", (("jko1998", ""), ("otto2001", ""), ("villani2009", ""))),
    (r"ornstein-uhlenbeck", (("ambrosio2008", ""),)),
    (r"measure-network|measure-first-variation|mean-field-velocity|finite-width-gradient",
     (("mei2018", ""), ("chizat2018", ""), ("rotskoff2018", ""))),
)


def step_citations(step_id: str, title: str = "") -> list[tuple[str, str]]:
    """``[(key, where), ...]`` for a step: every matching :data:`STEP_CITATIONS` rule, without repeats."""
    text = f"{step_id} {title}".lower().replace("_", "-").replace("\u2013", "-")
    out: list[tuple[str, str]] = []
    for pattern, cites in STEP_CITATIONS:
        if re.search(pattern, text):
            out += [c for c in cites if c not in out and c[0] in REFERENCES]
    return out


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
