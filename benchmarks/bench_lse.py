"""Benchmarks of the LSE layer's generated code and of ``hjsym check lse``.

Every ratio compares a candidate with a baseline measured in the same run:

* ``hopf_cole_u``: the generated Hopf-Cole ``u`` against the hand-written
  ``eps * torch.logsumexp((x @ W.T + b) / eps, -1)`` at M = N = 4096, d = 64, float64
  (limit 1.15);
* ``streaming_u``: the generated ``u`` at M = 4096, N = 262,144, d = 16 streams over atoms with
  peak memory <= 1 GiB; its time per atom against the hand-written one's at a size that fits
  (limit 1.3);
* ``check_cold`` / ``check_warm``: ``hjsym check lse`` in a fresh process with an empty cache
  (limit 10 s) and with a warm one (limit 4 s); the ratio is against the limit.

Run with ``hjsym bench`` (``--quick`` for small sizes).
"""

from __future__ import annotations

import json
import tempfile

from hjsym._bench import run_in_subprocess, timeit


def _inputs(M, N, d, seed=0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(M, d, generator=gen, dtype=torch.float64)
    W = torch.randn(N, d, generator=gen, dtype=torch.float64) / d**0.5
    b = torch.randn(N, generator=gen, dtype=torch.float64)
    return x, W, b


def bench_hopf_cole_u(quick: bool) -> dict:
    import torch

    import hjsym

    M, N, d = (512, 512, 16) if quick else (4096, 4096, 64)
    eps, t = 0.1, 1.0
    x, W, b = _inputs(M, N, d)
    u = hjsym.function("lse", "u")
    y, g = hjsym.function("lse", "atoms_y")(W=W, t=t), hjsym.function("lse", "atoms_g")(W=W, b=b, t=t)

    def hand():
        return eps * torch.logsumexp((x @ W.T + b) / eps, -1)

    def generated():
        return u(x=x, eps=eps, y=y, g=g, t=t)

    # the two compute the same network (f + u = |x|^2/(4t)): check before timing
    err = float(((x * x).sum(-1) / (4 * t) - generated() - hand()).abs().max())
    reps = 5 if quick else 7
    th = timeit(hand, repeat=reps)
    tg = timeit(generated, repeat=reps)
    ratio = tg / th
    return {"name": "hopf_cole_u", "ratio": ratio, "limit": 1.15, "passed": ratio <= 1.15 and err < 1e-9,
            "size": f"M={M} N={N} d={d} float64", "hand_written_s": th, "generated_s": tg, "max_abs_difference": err,
            "threads": torch.get_num_threads()}


_STREAM_CODE = """
import json, time, torch, hjsym
from hjsym._bench import peak_rss_mib, reset_peak_rss, rss_mib
M, N, d, mode = {M}, {N}, {d}, {mode!r}
gen = torch.Generator().manual_seed(0)
x = torch.randn(M, d, generator=gen, dtype=torch.float64)
W = torch.randn(N, d, generator=gen, dtype=torch.float64) / d ** 0.5
b = torch.randn(N, generator=gen, dtype=torch.float64)
eps, t = 0.1, 1.0
u = hjsym.function("lse", "u")
y = hjsym.function("lse", "atoms_y")(W=W, t=t); g = hjsym.function("lse", "atoms_g")(W=W, b=b, t=t)
if mode == "generated":
    run = lambda: u(x=x, eps=eps, y=y, g=g, t=t)
else:
    run = lambda: eps * torch.logsumexp((x @ W.T + b) / eps, -1)
run()  # warm-up (allocator, threads)
reset_peak_rss()
base = rss_mib()
times = []
for _ in range({reps}):
    t0 = time.perf_counter(); out = run(); times.append(time.perf_counter() - t0)
print(json.dumps({{"time": sorted(times)[len(times) // 2], "peak_extra_mib": peak_rss_mib() - base, "checksum": float(out.sum())}}))
"""


def bench_streaming_u(quick: bool) -> dict:
    M, d = (1024, 16) if quick else (4096, 16)
    N_big = 32_768 if quick else 262_144
    N_fit = 4096 if quick else 16_384
    reps = 3
    gen_big = json.loads(run_in_subprocess(_STREAM_CODE.format(M=M, N=N_big, d=d, mode="generated", reps=reps))[0])
    gen_fit = json.loads(run_in_subprocess(_STREAM_CODE.format(M=M, N=N_fit, d=d, mode="generated", reps=reps))[0])
    hand_fit = json.loads(run_in_subprocess(_STREAM_CODE.format(M=M, N=N_fit, d=d, mode="hand", reps=reps))[0])
    per_atom_gen = gen_big["time"] / N_big
    per_atom_hand = hand_fit["time"] / N_fit
    ratio = per_atom_gen / per_atom_hand
    mem_ok = gen_big["peak_extra_mib"] <= 1024
    return {"name": "streaming_u", "ratio": ratio, "limit": 1.3, "passed": ratio <= 1.3 and mem_ok,
            "size": f"M={M} N={N_big} d={d} float64 (hand-written at N={N_fit})",
            "generated_peak_extra_mib": gen_big["peak_extra_mib"], "memory_limit_mib": 1024,
            "hand_written_peak_extra_mib_at_fit": hand_fit["peak_extra_mib"],
            "hand_written_estimated_mib_at_N": hand_fit["peak_extra_mib"] * N_big / N_fit,
            "generated_s_per_atom": per_atom_gen, "hand_written_s_per_atom": per_atom_hand,
            "generated_s_per_atom_at_fit": gen_fit["time"] / N_fit}


def _check_time(cache_dir: str) -> float:
    code = "import sys; from hjsym._cli import main; sys.exit(main(['check', 'lse', '--json']))"
    import subprocess
    import sys
    import time
    import os

    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "HJSYM_CACHE_DIR": cache_dir})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"hjsym check lse failed:\n{proc.stderr[-2000:]}")
    return wall


def bench_check_cold(quick: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="hjsym-bench-cache-") as cache:
        wall = _check_time(cache)
    return {"name": "check_cold", "ratio": wall / 10.0, "limit": 1.0, "passed": wall <= 10.0, "seconds": wall,
            "what": "hjsym check lse, fresh process, empty derivation cache (limit 10 s)"}


def bench_check_warm(quick: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="hjsym-bench-cache-") as cache:
        _check_time(cache)
        walls = [_check_time(cache) for _ in range(1 if quick else 3)]
    wall = sorted(walls)[len(walls) // 2]
    return {"name": "check_warm", "ratio": wall / 4.0, "limit": 1.0, "passed": wall <= 4.0, "seconds": wall,
            "what": "hjsym check lse, fresh process, warm derivation cache (limit 4 s)"}


BENCHMARKS = [bench_hopf_cole_u, bench_streaming_u, bench_check_cold, bench_check_warm]
