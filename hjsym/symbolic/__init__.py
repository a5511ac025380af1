"""The symbolic layer: index calculus on SymPy expressions.

Axes and ranged indices (:mod:`.axes`), reductions over one index with their derivative rules
(log-sum-exp, Gibbs averages and weights, max/min, top-two gap; :mod:`.reductions`), symmetric and
inverse matrices (:mod:`.matrices`), the canonical form that derives identities by reducing a
difference to zero (:mod:`.calculus`), jets of an unknown function (:mod:`.jets`), gate functions
whose derivatives stay one node (:mod:`.gates`), the LaTeX printer (:mod:`.latex`) and the
magnitude of an expression's terms, the scale of its rounding error (:mod:`.magnitude`).
"""
