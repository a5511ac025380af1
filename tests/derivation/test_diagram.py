"""The commutative diagram: the graph, the independent convex solver, edges and path compositions."""

import math

import networkx as nx
import pytest
import torch
from helpers import assert_all_pass_and_controls_fail

import hjsym
from hjsym.checks.suites.diagram import EPS_GRID, maximise_entropic
from hjsym.derivation.diagram import EDGES, NODES


def test_graph_has_the_corners_the_convex_view_and_the_quadratures():
    g = hjsym.diagram_graph()
    assert isinstance(g, nx.Graph) and set(g.nodes) == set(NODES) and g.number_of_edges() == len(EDGES)
    kinds = {data["kind"].split(" (")[0] for _, _, data in g.edges(data=True)}
    assert kinds == {"exact identity", "eps -> 0 limit", "variational duality", "N' -> inf quadrature"}
    square = g.subgraph(["f_eps", "f_0", "u_eps", "u_0"])
    assert nx.cycle_basis(square) and square.number_of_edges() == 4
    assert nx.is_connected(g)


@pytest.mark.parametrize("eps", [0.5, 0.1, 0.02])
def test_newton_on_the_simplex_solves_the_entropic_problem(eps):
    z = 2 * torch.randn(16, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    value, iters = maximise_entropic(z, eps)
    torch.testing.assert_close(value, eps * torch.logsumexp(z / eps, -1), rtol=0, atol=1e-12)
    assert iters < 400


def test_checks_pass_and_fail_on_perturbed_networks(diagram_report):
    assert_all_pass_and_controls_fail(diagram_report, ["edges", "paths", "convex_duality"])


def test_edges_follow_the_derived_rate(diagram_report):
    details = diagram_report.check("edges").details
    eps_edges = [t for t in details["table"] if t["kind"].startswith("eps")]
    assert {t["eps"] for t in eps_edges} == set(EPS_GRID)
    for t in eps_edges:
        assert 0 <= t["max_measured"] <= t["bound_value"]
    n_atoms = 16
    limits = [t for t in eps_edges if t["edge"] == "f_eps -- f_0"]
    assert all(t["bound_value"] == pytest.approx(t["eps"] * math.log(n_atoms)) for t in limits)
    # the gap shrinks at least linearly in eps (the sharp bound makes it faster at small eps)
    assert all(s >= 0.9 for s in details["fitted_loglog_slopes"].values())


def test_every_path_and_pair_of_paths_is_composed(diagram_report):
    details = diagram_report.check("paths").details
    g = hjsym.diagram_graph()
    expected = sum(len(list(nx.all_simple_paths(g, a, b))) for a in g for b in g if str(a) < str(b))
    assert details["paths"] == expected and details["pairs_of_paths"] > details["paths"]
    assert details["worst_ratio_measured_over_bound"][0]["ratio"] <= 1
