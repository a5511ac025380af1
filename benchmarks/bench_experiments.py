"""Benchmark of the bifurcation experiment: pseudo-arclength continuation against brute force.

Both find the critical points of the attribution entropy of the two-cluster LSE layer (d = 2,
N = 16) on the same grid of eps values and must give the same counts of minima, saddles and
maxima (on at least 95 % of the levels, where a brute force with twice the starts per axis decides
the levels on which the two differ); the ratio is continuation time (median of six, around the brute
force) / brute-force time, both measured in the same run (limit 1/20: continuation at least 20x faster).

Run with ``hjsym bench --only bifurcation_continuation``.
"""

from __future__ import annotations


def bench_bifurcation_continuation(quick: bool) -> dict:
    import torch

    from hjsym.experiments import bifurcation

    st = bifurcation.settings(quick)
    r = bifurcation.one({"seed": 0, "quick": quick, "slice": False, "levels": st["levels"], "starts": st["starts_2d"]})
    ratio = r["continuation_s"] / r["brute_force_s"]
    return {"name": "bifurcation_continuation", "ratio": ratio, "limit": 1 / 20, "passed": ratio <= 1 / 20 and r["agree_fraction_after_dense"] >= 0.95,
            "speedup": 1 / ratio, "continuation_s": r["continuation_s"], "brute_force_s": r["brute_force_s"],
            "levels_agreeing": r["agree_fraction"], "levels_agreeing_after_dense_recheck": r["agree_fraction_after_dense"], "folds": len(r["folds"]), "size": f"{st['levels']} eps levels, "
            f"{st['starts_2d']}^2 brute-force starts per level", "threads": torch.get_num_threads()}


BENCHMARKS = [bench_bifurcation_continuation]
