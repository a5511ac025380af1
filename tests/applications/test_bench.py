"""The benchmark machinery runs (timings are reported by `hjsym bench`, never asserted here)."""

from hjsym._bench import format_table, run_benchmarks


def test_quick_benchmark_reports_ratios():
    results = run_benchmarks(quick=True, only=["hopf_cole_u"])
    (r,) = results["benchmarks"]
    assert r["name"] == "hopf_cole_u" and r["ratio"] > 0 and "limit" in r and "passed" in r
    assert r["max_abs_difference"] < 1e-9  # the timed functions agree
    assert "hopf_cole_u: ratio" in format_table(results)


def test_quick_attention_benchmark_runs():
    results = run_benchmarks(quick=True, only=["generated_attention"])
    (r,) = results["benchmarks"]
    assert r["name"] == "generated_attention" and r["ratio"] > 0 and r["limit"] == 1.5
    assert r["max_abs_difference"] < 1e-5  # float32: the generated path computes the same attention


def test_quick_control_benchmarks_time_the_same_gradients():
    results = run_benchmarks(quick=True, only=["costate_resnet", "costate_lstm"])
    assert [r["name"] for r in results["benchmarks"]] == ["costate_resnet", "costate_lstm"]
    for r in results["benchmarks"]:
        assert r["ratio"] > 0 and r["limit"] in (1.5, 2.0)
        assert r["max_abs_difference"] < 1e-10  # the two timed routes compute the same gradients


def test_quick_bifurcation_benchmark_compares_counts():
    results = run_benchmarks(quick=True, only=["bifurcation_continuation"])
    (r,) = results["benchmarks"]
    assert r["ratio"] > 0 and r["limit"] == 1 / 20
    assert 0 <= r["levels_agreeing"] <= 1 and r["folds"] >= 0
