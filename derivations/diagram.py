"""The commutative diagram: network, tropical network, viscous HJ, Hopf-Lax, and the convex view.

The spec (hjsym/architectures/diagram.py) is the LSE layer with two more passes: the convex
view (LSE_eps(z) = max over the simplex of <pi, z> + eps Ent(pi), maximiser found by solving the
stationarity condition) and the heat semigroup (for the corners with continuous data sampled on
a grid). hjsym realises every node by its own route on a trained layer, checks every edge and
every path between two nodes, and reports the measured errors against the derived rates.

    python derivations/diagram.py            # prints the graph, the derivation and the checks
    python derivations/diagram.py --report   # also writes reports/diagram/
"""

import sys

import hjsym
from hjsym.architectures.diagram import SPEC as spec

graph = hjsym.diagram_graph()  # a networkx Graph
for a, b, data in graph.edges(data=True):
    print(f"{a:8s} -- {b:8s}  {data['kind']:40s} bound: {data['bound']}")

derivation = hjsym.derive(spec)
print(derivation.text())

result = hjsym.check("diagram", negative_controls=True)
print(result.table())
print("fitted log-log slopes of the eps -> 0 edges (derived rate: eps log N):", result.check("edges").details["fitted_loglog_slopes"])
print("paths:", result.check("paths").details["paths"], "pairs of paths:", result.check("paths").details["pairs_of_paths"])

if "--report" in sys.argv:
    for path in hjsym.report(["diagram"], out="reports"):
        print("wrote", path)
