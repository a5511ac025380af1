"""Shared test setup: float64 by default, a private derivation cache, shared fixtures."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import torch

torch.set_default_dtype(torch.float64)

# A cache private to this test session: tests see exactly what a fresh machine sees once, and
# the user's cache is left alone. Set before hjsym reads it.
_CACHE = tempfile.mkdtemp(prefix="hjsym-test-cache-")
_KEYS = tempfile.mkdtemp(prefix="hjsym-test-key-")  # the cache's secret key, outside the cache folder
os.environ["HJSYM_CACHE_DIR"] = _CACHE
os.environ["HJSYM_KEY_FILE"] = os.path.join(_KEYS, "cache-key")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)
    shutil.rmtree(_KEYS, ignore_errors=True)


def require(tool: str, env: str):
    """Skip when ``tool`` is missing, unless ``env=1`` (CI) makes a missing tool a failure."""
    if shutil.which(tool) is None:
        if os.environ.get(env) == "1":
            pytest.fail(f"{tool} is required ({env}=1) but not on PATH")
        pytest.skip(f"{tool} not installed")
    return shutil.which(tool)


@pytest.fixture(scope="session")
def lse_derivation():
    import hjsym

    return hjsym.derive("lse")


@pytest.fixture(scope="session")
def lse_fns(lse_derivation):
    return lse_derivation.functions


@pytest.fixture(scope="session")
def reference_nets():
    """The lse architecture's reference layers (d = 1, 2, 8)."""
    from hjsym.networks.lse import lse_references

    return list(lse_references(seed=0).values())


@pytest.fixture(scope="session")
def lse_ctx():
    """The check engine's context for lse in float64."""
    from hjsym.checks.api import context

    return context("lse")


@pytest.fixture(scope="session")
def lse_report():
    import hjsym

    return hjsym.check("lse", negative_controls=True)


# ----------------------------------------------------------------------------- the exact family
def _report(name):
    import hjsym

    return hjsym.check(name, negative_controls=True)


@pytest.fixture(scope="session")
def aniso_report():
    return _report("lse-aniso")


@pytest.fixture(scope="session")
def softplus_report():
    return _report("softplus-mlp")


@pytest.fixture(scope="session")
def attention_report():
    return _report("attention")


@pytest.fixture(scope="session")
def diagram_report():
    return _report("diagram")
