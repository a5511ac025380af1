"""The experiment machinery: every experiment's quick run, the config map (serial, processes,
Dask), the statistics, the closed forms behind the experiments, the pages and the CLI.

The quick runs assert that results are finite and shaped right, never what they conclude; the
full-size runs are marked slow.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from hjsym.experiments import EXPERIMENTS, Mapper, get, run_experiment
from hjsym.experiments._stats import bound_verdict, combine, fit_slope, mean_ci, spearman, verdict

VERDICTS = {"holds", "does not hold", "inconclusive"}


def _square(cfg):
    return {"y": cfg["x"] ** 2}


def _finite(obj):
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite(v) for v in obj)
    return True


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments")
    with Mapper(workers=0) as mapper:
        results = {name: run_experiment(name, quick=True, out=out, mapper=mapper) for name in EXPERIMENTS}
    return out, results


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_run_writes_a_page_with_claim_measurement_and_verdict(quick_results, name):
    out, results = quick_results
    r = results[name]
    assert r["verdict"] in VERDICTS and r["claim"] and r["measurement"]
    assert r["rows"] and all(row["verdict"] in VERDICTS for row in r["rows"])
    measured = [row["measured"] for row in r["rows"]]  # None: undefined (e.g. a share of zero folds)
    assert all(v is None or (isinstance(v, (int, float)) and math.isfinite(v)) for v in measured), measured
    assert any(v is not None for v in measured)
    folder = out / name
    for f in ("index.html", f"{name}.tex", "result.json", "summary.json"):
        assert (folder / f).is_file(), f
    assert r["figures"] and all((folder / fig.get("png", fig.get("gif", ""))).is_file() for fig in r["figures"])
    assert all((folder / fig["pdf"]).is_file() for fig in r["figures"] if "pdf" in fig)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["kind"] == "experiment" and summary["classification"] == r["verdict"] and summary["statement"]
    result = json.loads((folder / "result.json").read_text())
    assert {"config", "seeds", "timings", "provenance", "data", "rows"} <= set(result)
    assert {"torch", "sympy"} <= set(result["provenance"]["versions"]) and "git_revision" in result["provenance"]
    html = (folder / "index.html").read_text()
    assert "the paper's claim" in html and "95 % CI" in html and r["verdict"] in html
    assert f'<a href="{name}/index.html">' in (out / "index.html").read_text()  # listed next to the architectures


def test_quick_numbers_are_finite_and_shaped(quick_results):
    _, res = quick_results
    q = res["quadrature"]["data"]
    for d in (1, 2, 4):
        D = q[f"d{d}"]
        assert len(D["viscous"]) == len(res["quadrature"]["seeds"]) and len(D["viscous"][0]) == len(D["N"])
        assert _finite(D["viscous"]) and _finite(D["tropical"]) and min(min(row) for row in D["tropical"]) > 0
    b = res["bifurcation"]["data"]["runs"]
    assert all(len(r["traced"]) == len(r["brute"]) == len(r["eps"]) and all(len(c) == 3 for c in r["traced"]) for r in b)
    assert all(f["turn"] in ("annihilation", "creation") for r in b for f in r["folds"])
    assert res["influence"]["rows"][0]["measured"] < 1e-12  # pi_j = df/db_j exactly
    assert res["robustness"]["rows"][0]["measured"] < 1e-8  # Hess = w2 Cov/eps exactly
    for r in res["recovery"]["data"]["runs"]:
        assert [p["eps"] for p in r["path"]] == list(res["recovery"]["data"]["schedule"]) and _finite(r["path"])


def test_entropy_closed_forms_match_autograd():
    """Route A: autograd through H(softmax((Wx+b)/eps)); route B: the closed forms of the bifurcation experiment."""
    from torch.func import hessian, jacfwd

    from hjsym.experiments.bifurcation import entropy_terms, two_clusters

    _, _, W, b = two_clusters(3)
    x = torch.tensor([[0.3, -0.2], [-1.1, 0.4], [0.05, 0.9]], dtype=torch.float64)
    lam = torch.log(torch.tensor([0.07, 0.3, 1.2], dtype=torch.float64))

    def H(xx, ll):
        p = torch.softmax((W @ xx + b) / ll.exp(), -1)
        return -(p * torch.log(p)).sum()

    G, Gx, Gl, Hv = entropy_terms(x, lam, W, b)
    eps = lam.exp()
    for i in range(len(x)):
        grad = torch.func.grad(H)(x[i], lam[i])
        assert torch.allclose(Hv[i], H(x[i], lam[i]), atol=1e-12)
        assert torch.allclose(G[i] / eps[i], grad, atol=1e-10)
        # G_x = d(eps grad H)/dx and G_lambda = d(eps grad H)/dlambda
        assert torch.allclose(Gx[i], jacfwd(lambda xx: eps[i] * torch.func.grad(H)(xx, lam[i]))(x[i]), atol=1e-9)
        assert torch.allclose(Gl[i], jacfwd(lambda ll: ll.exp() * torch.func.grad(H)(x[i], ll))(lam[i]), atol=1e-9)
        assert torch.allclose(Gx[i] / eps[i], hessian(H)(x[i], lam[i]), atol=1e-8) or not torch.allclose(G[i], torch.zeros(2))


def _slice_layer(seed: int = 0):
    """The bifurcation experiment's 1-D slice x = (s, 0): weights ``(N, 1)`` and biases ``(N,)``."""
    from hjsym.experiments.bifurcation import two_clusters

    _, _, W, b = two_clusters(seed)
    return W[:, :1].contiguous(), b


def _slice_grid(levels: int = 60):
    from hjsym.experiments.bifurcation import EPS_RANGE

    return torch.linspace(math.log(EPS_RANGE[0]), math.log(EPS_RANGE[1]), levels)


def test_continuation_counts_equal_brute_force_and_a_moved_layer_differs():
    """Route A: branches followed by continuation, crossing the grid; route B: multi-start Newton at every level."""
    from hjsym.experiments.bifurcation import brute_force, traced_counts

    W, b = _slice_layer()
    lams = _slice_grid()
    traced, folds, branches = traced_counts(W, b, lams, 100)
    assert folds and branches > 0 and traced.sum() > 0
    assert torch.equal(traced, brute_force(W, b, lams, 100))
    moved = b.clone()
    moved[3] += 0.05  # one atom's value moved: the landscape, and so its counts, change
    assert not torch.equal(traced, brute_force(W, moved, lams, 100))


def test_fold_points_solve_the_fold_system():
    """Route A: folds where the continuation tangent's lambda-component changes sign (interpolated);
    route B: SciPy's root of the fold system {G = 0, G_x = 0} started there. A moved layer's folds are not
    folds of the original layer."""
    from scipy.optimize import root

    from hjsym.experiments.bifurcation import _dedupe_folds, entropy_terms, traced_counts

    W, b = _slice_layer()
    lams = _slice_grid()

    def fold_system(v, bias):
        G, Gx, _, _ = entropy_terms(torch.tensor([[v[0]]]), torch.tensor([v[1]]), W, bias)
        return [float(G[0, 0]), float(Gx[0, 0, 0])]

    def distance_to_fold(fold, bias):
        start = [fold["x"][0], math.log(fold["eps"])]
        sol = root(fold_system, start, args=(bias,), tol=1e-13)
        residual = max(abs(r) for r in fold_system(sol.x, bias))
        return math.dist(start, sol.x) if residual < 1e-10 else math.inf

    folds = _dedupe_folds(traced_counts(W, b, lams, 100)[1], W, b)
    assert len(folds) >= 3
    assert max(distance_to_fold(f, b) for f in folds) < 1e-3
    moved = b.clone()
    moved[3] += 0.05
    moved_folds = _dedupe_folds(traced_counts(W, moved, lams, 100)[1], W, moved)
    assert max(distance_to_fold(f, moved) for f in moved_folds) < 1e-3  # folds of the moved layer itself
    assert max(min(math.dist([f["x"][0], math.log(f["eps"])], [g["x"][0], math.log(g["eps"])]) for g in folds)
               for f in moved_folds) > 1e-2


def test_bank_matches_the_generated_hopf_cole_function():
    import hjsym
    from hjsym.experiments._models import bank_u

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64)
    g = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    eps = torch.tensor([0.3, 0.05], dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, False, True, True, False]])
    u = bank_u(x, y, g, eps, 0.25, mask)
    gen_u = hjsym.function("lse", "u")
    assert torch.allclose(u[0], gen_u(x=x, eps=0.3, y=y[0], g=g[0], t=0.25), atol=1e-12)
    assert torch.allclose(u[1], gen_u(x=x, eps=0.05, y=y[1][mask[1]], g=g[1][mask[1]], t=0.25), atol=1e-12)


def test_statistics():
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["lo"] == pytest.approx(2 - 4.303 / math.sqrt(3)) and ci["n"] == 3
    assert math.isinf(mean_ci([1.0])["hi"])
    assert mean_ci([0.9, 1.0, 1.0], bounds=(0.0, 1.0))["hi"] == 1.0 and mean_ci([0.9, 1.0, 1.0])["hi"] > 1.0  # a fraction stays in [0, 1]
    x = torch.tensor([1.0, 2.0, 4.0, 8.0])
    assert fit_slope(x, 3 * x ** -0.5)[0] == pytest.approx(-0.5)
    assert verdict({"lo": -0.52, "hi": -0.48}, -0.5, 0.05) == "holds"
    assert verdict({"lo": -1.1, "hi": -0.9}, -0.5, 0.05) == "does not hold"
    assert verdict({"lo": -0.7, "hi": -0.3}, -0.5, 0.05) == "inconclusive"
    assert bound_verdict([0.5, 1.0]) == "holds" and bound_verdict([1.01]) == "does not hold"
    assert combine(["holds", "inconclusive"]) == "inconclusive" and combine(["holds", "does not hold", "inconclusive"]) == "does not hold"
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert float(spearman(a, a ** 3)) == pytest.approx(1.0) and float(spearman(a, -a)) == pytest.approx(-1.0)


def test_mapper_serial_and_local_processes_agree():
    configs = [{"x": k} for k in range(5)]
    with Mapper(workers=0) as serial, Mapper(workers=2) as procs:
        a, b = serial.map(_square, configs), procs.map(_square, configs)
    assert [r["y"] for r in a] == [r["y"] for r in b] == [k * k for k in range(5)]
    assert all(r["_seconds"] >= 0 for r in a + b) and procs.backend == "local processes (2)"


def test_mapper_on_a_dask_local_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1")
        with Mapper(scheduler=cluster.scheduler_address) as mapper:
            out = mapper.map(_square, [{"x": k} for k in range(4)])
            assert mapper.backend.startswith("dask")
    assert [r["y"] for r in out] == [0, 1, 4, 9]


def test_bad_names_and_unreachable_scheduler_are_input_errors(capsys):
    from hjsym._cli import main
    from hjsym._errors import InputError

    with pytest.raises(InputError, match="did you mean 'phase'"):
        get("phse")
    assert main(["experiment", "nonsense", "--quick"]) == 2
    assert "unknown experiment 'nonsense'" in capsys.readouterr().err
    pytest.importorskip("distributed")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"), Mapper(scheduler="tcp://127.0.0.1:9", connect_timeout=2) as m:
        m.map(_square, [{"x": 1}])


def test_cli_json(capsys, tmp_path):
    from hjsym._cli import main

    assert main(["experiment", "intrinsic-dimension", "--quick", "--json", "--workers", "0", "--out", str(tmp_path)]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert r["name"] == "intrinsic-dimension" and r["verdict"] in VERDICTS and r["quick"] is True
    assert (tmp_path / "intrinsic-dimension" / "index.html").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_full_run(tmp_path, name):
    r = run_experiment(name, out=tmp_path)
    assert r["verdict"] in VERDICTS and all(row["n"] >= 1 for row in r["rows"])
    assert all(row["measured"] is None or math.isfinite(row["measured"]) for row in r["rows"])


def test_method_text_is_rendered_not_shown_as_markup():
    from hjsym.experiments._page import method_blocks

    doc = "Title.\n\nData ``g(y)`` on a grid. Two regimes:\n\n  * **viscous** (fixed ``eps``): one;\n  * **tropical**: the\n    limit.\n\nSlopes per seed."
    blocks = method_blocks(doc)
    assert [b["kind"] for b in blocks] == ["p", "ul", "p"]
    assert ("code", "g(y)") in blocks[0]["spans"]
    assert blocks[1]["entries"][0][:2] == [("bold", "viscous"), ("text", " (fixed ")]
    assert blocks[1]["entries"][1] == [("bold", "tropical"), ("text", ": the limit.")]
