"""The benchmark machinery runs (timings are reported by `hjsym bench`, never asserted here)."""

from hjsym._bench import format_table, run_benchmarks


def test_quick_benchmark_reports_ratios_against_every_peer():
    results = run_benchmarks(quick=True, only=["hopf_cole_u"])
    assert [r["name"] for r in results["benchmarks"]] == ["hopf_cole_u", "hopf_cole_u_float32"]
    for r in results["benchmarks"]:
        assert r["ratio"] > 0 and r["limit"] == 1.0 and "passed" in r
        assert set(r["peers"]) == {"hand_written", "hand_tuned"} and r["skipped"]  # torch.compile and jax: full runs only
        assert 0 < r["roofline_fraction"] and r["gemm_gflops"] > 0 and r["exp_gelems"] > 0
        tol = 1e-9 if r["name"] == "hopf_cole_u" else 1e-3
        assert max(r["max_abs_difference"].values()) < tol  # the timed functions agree
    assert "hopf_cole_u: ratio" in format_table(results)


def test_quick_lambdify_comparison_finds_its_overflow():
    (r,) = run_benchmarks(quick=True, only=["lambdify_u"])["benchmarks"]
    assert r["lambdify_float32_nonfinite_share"] > 0 and r["hjsym_float32_max_rel_err"] < 1e-5
    assert r["peers"]["sympy_lambdify"] > 0


def test_quick_attention_benchmark_runs():
    results = run_benchmarks(quick=True, only=["generated_attention"])
    (r,) = results["benchmarks"]
    assert r["name"] == "generated_attention" and r["ratio"] > 0 and r["limit"] == 1.5
    assert r["max_abs_difference"] < 1e-5  # float32: the generated path computes the same attention


def test_quick_control_benchmarks_time_the_same_gradients():
    results = run_benchmarks(quick=True, only=["costate_resnet", "costate_lstm"])
    assert [r["name"] for r in results["benchmarks"]] == ["costate_resnet_depth16", "costate_lstm_seq32_hidden32"]
    for r in results["benchmarks"]:
        assert r["ratio"] > 0 and r["limit"] == 1.0 and r["peers"]["autograd"] == r["ratio"]
        assert r["max_abs_difference"] < 1e-10  # the two timed routes compute the same gradients


def test_quick_bifurcation_benchmark_compares_counts():
    results = run_benchmarks(quick=True, only=["bifurcation_continuation"])
    (r,) = results["benchmarks"]
    assert r["ratio"] > 0 and r["limit"] == 1 / 20
    assert 0 <= r["levels_agreeing"] <= 1 and r["folds"] >= 0
