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
    assert result["timings"]["cpu_s"] > 0 and result["timings"]["total_s"] > 0
    assert {"torch", "sympy"} <= set(result["provenance"]["versions"]) and "git_revision" in result["provenance"]
    html = (folder / "index.html").read_text()
    assert "the paper's claim" in html and "95 % CI" in html and r["verdict"] in html
    assert f'<a href="{name}/index.html">' in (out / "index.html").read_text()  # listed next to the architectures
    # what the verdict rests on and what would have refuted it, beside the verdict, in both formats and in the data
    f = result["falsifiable"]
    assert f["statistic"] and f["refuted_if"] and f["kind"] in ("evidence", "consistency check") and summary["falsifiable"] == f
    assert 'id="falsifiable"' in html and "The verdict rests on" in html and "would have been refuted by" in html
    tex = (folder / f"{name}.tex").read_text()
    assert "The verdict rests on:" in tex and "It would have been refuted by:" in tex
    kinds = {row.get("kind", "evidence") for row in r["rows"]}
    assert "evidence" in kinds or f["kind"] == "consistency check"
    if "consistency" in kinds:
        assert "consistency check" in html  # a theorem checked is labelled, not passed off as evidence


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
    identity = next(r for r in res["robustness"]["rows"] if r["quantity"].startswith("autograd Hessian"))
    assert identity["measured"] < 1e-8 and identity["kind"] == "consistency"  # Hess = w2 Cov/eps exactly: a theorem, labelled so
    shares = [r for r in res["robustness"]["rows"] if r["quantity"].startswith("share of curves")]
    assert shares and all(0 <= r["lo"] <= r["measured"] <= r["hi"] <= 1 for r in shares)  # monotonicity in eps, with an exact interval
    assert all(r["lo"] >= 0 for r in res["recovery"]["rows"] if r["lo"] is not None and "error" in r["quantity"])  # distances stay >= 0
    assert {r["seed"] for r in res["recovery"]["data"]["runs"]} == set(res["recovery"]["seeds"])
    assert any(r["kind"] == "choice" for r in res["phase"]["rows"])  # threshold crossings: reported as a function of the threshold
    settings = {r["setting"] for r in res["bifurcation"]["data"]["runs"]}
    assert settings == {"paper", "hjsym"}  # the paper's own setting runs beside hjsym's
    assert all(r["kind"] == "consistency" for r in res["critical-eps"]["rows"] if "scaled by" in r["quantity"])
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
    assert all(r["_seconds"] >= 0 and r["_cpu_seconds"] >= 0 for r in a + b) and procs.backend == "local processes (2)"
    assert serial.remote_cpu_seconds == 0 and procs.remote_cpu_seconds == sum(r["_cpu_seconds"] for r in b)  # CPU time of the workers counted


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


# ----------------------------------------------------------------------------- the page interface: falsifiable, row kinds
def _minimal_result(**over):
    from hjsym.experiments._page import falsifiable, row

    base = {"name": "toy", "verdict": "holds", "falsifiable": falsifiable("a slope", "a slope outside -1 ± 0.1"),
            "rows": [row("slope", "-1", {"mean": -1.0, "lo": -1.05, "hi": -0.95, "n": 5}, "holds", "within -1 ± 0.1")]}
    base.update(over)
    return base


def test_a_result_must_say_what_its_verdict_rests_on():
    from hjsym._errors import InputError
    from hjsym.experiments._page import check_result, falsifiable, row

    check_result("toy", _minimal_result())
    with pytest.raises(InputError, match="does not say what its verdict rests on"):
        check_result("toy", _minimal_result(falsifiable=None))
    with pytest.raises(InputError, match="does not say what its verdict rests on"):
        check_result("toy", _minimal_result(falsifiable={"statistic": "a slope", "refuted_if": " "}))
    with pytest.raises(InputError, match="has kind 'theorem'"):
        check_result("toy", _minimal_result(rows=[{**_minimal_result()["rows"][0], "kind": "theorem"}]))
    theorem = [row("identity", "0", 1e-16, "holds", "< 1e-12", kind="consistency")]
    with pytest.raises(InputError, match="no evidence row"):
        check_result("toy", _minimal_result(rows=theorem))
    check_result("toy", _minimal_result(rows=theorem, falsifiable=falsifiable("an identity", "an error above 1e-12", consistency=True)))


def test_stats_intervals_stay_in_range_and_match_independent_routes():
    from scipy.stats import binomtest

    from hjsym.experiments._stats import bootstrap_ci, geometric_ci, log_grid_extremum, proportion_ci

    for k, n in ((0, 12), (3, 12), (12, 12), (17, 20)):
        ci = proportion_ci(k, n)
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")  # route B: SciPy's own exact interval
        assert ci["lo"] == pytest.approx(ref.low, abs=1e-12) and ci["hi"] == pytest.approx(ref.high, abs=1e-12)
    bimodal = [1e-3, 2e-3, 1.5e-3, 1.2e-3, 0.33]  # four recovered seeds and a stuck one
    b = bootstrap_ci(bimodal, "median")
    assert min(bimodal) <= b["lo"] <= b["mean"] <= b["hi"] <= max(bimodal) and b["mean"] == pytest.approx(1.5e-3)
    assert bootstrap_ci(bimodal) == bootstrap_ci(bimodal)  # seeded: deterministic
    assert mean_ci(bimodal)["lo"] < 0 < bootstrap_ci(bimodal)["lo"]  # the t-interval would leave the range of a distance
    g = geometric_ci([2.0, 2.0, 2.0])
    assert g["mean"] == pytest.approx(2.0) and g["lo"] == pytest.approx(2.0)
    x = [math.exp(v) for v in (-2.0, -1.0, 0.0, 1.0, 2.0)]
    y = [math.exp((math.log(e) - 0.3) ** 2) for e in x]  # log y quadratic in log x: the parabola is exact
    best, interior = log_grid_extremum(x, y, "min")
    assert interior and math.log(best) == pytest.approx(0.3)
    assert log_grid_extremum(x, [1 / v for v in x], "min") == (x[-1], False)  # an optimum at the grid's end is only a bound


# ----------------------------------------------------------------------------- building blocks of the experiments
def test_lse_bank_matches_autograd_through_logsumexp():
    """Route A: autograd through torch.logsumexp; route B: the hand-written backward (and the exp floor changes nothing)."""
    from hjsym.experiments._models import lse_bank

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(9, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    W = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = (3 * torch.randn(2, 6, generator=gen, dtype=torch.float64)).requires_grad_(True)
    eps = torch.tensor([0.5, 0.002], dtype=torch.float64)  # the small one makes most weights underflow
    w = torch.randn(2, 9, generator=gen, dtype=torch.float64)
    ref = eps[:, None] * torch.logsumexp((torch.einsum("md,knd->kmn", x, W) + b[:, None]) / eps[:, None, None], -1)
    ga = torch.autograd.grad((ref * w).sum(), (x, W, b))
    out = lse_bank(x, W, b, eps)
    gb = torch.autograd.grad((out * w).sum(), (x, W, b))
    scale = float(ref.detach().abs().max())
    assert float((out - ref).detach().abs().max()) <= 8 * 2.0 ** -53 * scale
    for a, c in zip(ga, gb):
        assert torch.allclose(a, c, rtol=1e-12, atol=1e-12 * float(a.abs().max()))
    assert not torch.allclose(lse_bank(x, W, b + 1e-6 * torch.randn(2, 6, generator=gen, dtype=torch.float64), eps), out, rtol=0, atol=1e-10)


def test_unit_aware_adam_makes_rescaled_training_the_same_problem():
    """The critical-eps consistency check: outputs x a, inputs x s train exactly alike with unit-aware Adam, not with plain Adam."""
    from hjsym.experiments.critical_eps import one

    cfg = {"d": 1, "N": 4, "seed": 0, "steps": 15, "quick": True}
    base = one(cfg)
    for kind, value in (("output", 4.0), ("input", 0.5)):
        a = value if kind == "output" else 1.0
        scaled = one({**cfg, kind: value})
        assert max(abs(v / (a * a * v0) - 1) for v, v0 in zip(scaled["val_mse"], base["val_mse"])) <= 8 * 2.0 ** -53
        plain = one({**cfg, kind: value, "unit_adam": False})  # negative control: one learning rate in every unit system
        assert max(abs(v / (a * a * v0) - 1) for v, v0 in zip(plain["val_mse"], base["val_mse"])) > 1e-6


def test_phase_transition_point_needs_no_threshold():
    from hjsym.experiments.phase import crossing, steepest_rise

    eps = [float(v) for v in torch.logspace(-4, 1, 61, dtype=torch.float64)]
    centre = 1e-2
    h = [1 / (1 + (centre / e) ** 1.5) for e in eps]  # a logistic rise in log eps, steepest at eps = centre
    peak, interior, _ = steepest_rise(eps, h)
    assert interior and peak == pytest.approx(centre, rel=0.02)
    assert crossing(eps, h, 0.5) == pytest.approx(centre, rel=0.05)
    assert crossing(eps, h, 0.1) < crossing(eps, h, 0.9)  # a threshold moves the "transition" with it
    rising = [math.log(e) ** 3 for e in eps]  # steepest at an end of the grid: flagged, not passed off as a transition
    assert steepest_rise(eps, rising)[1] is False


def test_collapse_deviation_is_within_the_sharp_tropical_bound_and_attains_it():
    """f_eps - f_0 <= eps log(1 + (N-1) e^{-Delta/eps}); equality when all N logits tie (the tightness witness)."""
    from hjsym.experiments.hallucination import deviation_and_bound

    gen = torch.Generator().manual_seed(3)
    eps = torch.tensor([0.05, 0.3], dtype=torch.float64)
    z = torch.randn(2, 50, 7, generator=gen, dtype=torch.float64) / eps[:, None, None]
    dev, bound = deviation_and_bound(z, eps)
    assert bool((dev >= 0).all()) and bool((dev <= bound * (1 + 1e-12)).all())
    tied = torch.zeros(2, 1, 7, dtype=torch.float64)
    dev, bound = deviation_and_bound(tied, eps)
    assert torch.allclose(dev, eps[:, None] * math.log(7)) and torch.allclose(dev, bound)
    two = torch.tensor([[[0.0, 0.0, -50.0]], [[0.0, 0.0, -50.0]]], dtype=torch.float64)  # two tied, one far
    dev, bound = deviation_and_bound(two, eps)
    assert torch.allclose(dev, eps[:, None] * math.log(2)) and bool((dev <= bound).all())
    assert bool((dev > eps[:, None] * math.log(1 + 2 * math.exp(-1.0))).all())  # a bound with a gap too large would be violated


def test_curvature_is_the_gibbs_variance_over_eps():
    """Route A: autograd's second derivative of f = x^2/(4t) - u, u = -eps logsumexp(logits); route B: Var_pi(W)/eps."""
    from hjsym.experiments._models import bank_logits
    from hjsym.experiments.double_descent import curvature_profile, weighted_median

    gen = torch.Generator().manual_seed(4)
    y, g, eps, t = torch.randn(6, 1, generator=gen, dtype=torch.float64), torch.randn(6, generator=gen, dtype=torch.float64), 0.2, 0.3
    xs = torch.linspace(-1, 1, 25, dtype=torch.float64)[:, None]
    curv, gap, _ = curvature_profile(xs, y, g, eps, t)

    def f(x):
        e = torch.tensor([eps], dtype=torch.float64)
        return x[0] ** 2 / (4 * t) + eps * torch.logsumexp(bank_logits(x[None], y[None], g[None], e, t)[0, 0], -1)

    second = torch.stack([torch.func.hessian(f)(x)[0, 0] for x in xs])
    assert torch.allclose(curv, second, rtol=1e-9, atol=1e-12)
    assert bool((gap >= 0).all())
    assert weighted_median(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 0.0, 1.0])) == 3.0


def test_cost_exponent_separates_overhead_from_the_power_law():
    from hjsym.experiments.influence import cost_exponent

    N = [16, 64, 256, 1024, 4096, 16384, 65536, 100000]
    fit = cost_exponent(N, [1e-4 + 2e-9 * n for n in N])  # a fixed overhead, then linear
    assert fit["p"] == pytest.approx(1.0, abs=0.02) and fit["a"] == pytest.approx(1e-4, rel=0.05)
    assert cost_exponent(N, [1e-4 + 2e-12 * n ** 1.5 for n in N])["p"] == pytest.approx(1.5, abs=0.05)


def test_head_entropy_is_normalised_between_particle_and_wave():
    from hjsym.experiments.head_entropy import normalised_entropy

    T = 8
    causal = torch.ones(T, T).tril()
    uniform = (causal / causal.sum(-1, keepdim=True))[None, None]  # every query spreads over all its keys: a wave
    assert torch.allclose(normalised_entropy(uniform), torch.ones(1))
    one_key = torch.eye(T)[None, None]  # every query attends to itself only: a particle
    assert torch.allclose(normalised_entropy(one_key), torch.zeros(1), atol=1e-6)


def test_bifurcation_paper_setting_is_the_papers_draw():
    """Seed 42 reproduces the paper's NumPy draw: clusters of 8 around (-1, -1) and (1, 1), values 0 and 1."""
    import numpy as np

    from hjsym.experiments.bifurcation import SETTINGS, paper_clusters

    y, g, W, b = paper_clusters(42)
    rs = np.random.RandomState(42)  # what the paper's np.random.seed(42); np.random.randn(...) draws
    expected = np.vstack([rs.randn(8, 2) * 0.4 + np.array([-1.0, -1.0]), rs.randn(8, 2) * 0.4 + np.array([1.0, 1.0])])
    assert torch.allclose(y, torch.from_numpy(expected), atol=1e-15)
    assert g.tolist() == [0.0] * 8 + [1.0] * 8 and SETTINGS["paper"]["box"] == 2.9
    assert not torch.allclose(paper_clusters(1)[0], y)
