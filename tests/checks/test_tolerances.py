"""Tolerances follow the numbers: sweeps over user-style LSE layers in both dtypes.

Every clean layer passes every check, at temperatures from 1e-3 to 1e2, widths 1 to 512, dimensions 1 to 64 and
logits up to 1e3 (up to 1e6 after the temperature); its twin whose output is bumped by a relative 1e-6 (float64) or
1e-2 (float32, the resolution a float32 check states) fails. The default run draws a few layers per dtype; ``-m slow``
draws many more.
"""

import math

import pytest
import torch
from helpers import lse_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hjsym
from hjsym.checks.engine import RESOLUTION

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _layers(max_d: int, max_n: int):
    return st.tuples(
        st.floats(math.log10(1e-3), math.log10(1e2)).map(lambda e: 10.0**e),  # eps
        st.integers(1, max_d),  # d
        st.integers(1, max_n),  # N
        st.floats(-2, 3).map(lambda e: 10.0**e),  # size of the logits W x + b
        st.integers(0, 2**16),  # seed
    )


def _check_sweep(dtype_name, eps, d, N, logits, seed):
    dtype = DTYPES[dtype_name]
    scale = logits / (math.sqrt(d) + 1)  # x ~ N(0, 1): |W x + b| ~ scale (sqrt(d) + 1)
    clean = hjsym.check("lse", lse_module(d, N, eps, seed=seed, dtype=dtype, scale=scale), dtype=dtype_name)
    assert clean.passed, f"eps={eps:g} d={d} N={N} logits={logits:g}\n" + clean.table()
    bumped = hjsym.check("lse", lse_module(d, N, eps, seed=seed, dtype=dtype, scale=scale, bump=RESOLUTION[dtype]), dtype=dtype_name)
    assert not bumped.passed and not bumped.check("identity").passed, bumped.table()


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(layer=_layers(max_d=16, max_n=128))
def test_clean_layers_pass_and_bumped_ones_fail(dtype_name, layer):
    _check_sweep(dtype_name, *layer)


@pytest.mark.slow
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(layer=_layers(max_d=64, max_n=512))
def test_clean_layers_pass_and_bumped_ones_fail_over_the_whole_range(dtype_name, layer):
    _check_sweep(dtype_name, *layer)


@pytest.mark.parametrize("eps", [1e-3, 1e2])
@pytest.mark.parametrize("d, N", [(1, 1), (64, 512), (33, 333)])
def test_the_corners_of_the_range(eps, d, N):
    for dtype_name in DTYPES:
        _check_sweep(dtype_name, eps, d, N, 1e3, seed=7)
