"""Mamba's selective scan: the plain-torch reference and mambapy's MambaBlock (its scan checked, the rest named outside)."""

import pytest
import torch

import hjsym
from hjsym import ModuleFormError


def test_the_reference_scan_passes_and_its_perturbed_twin_fails():
    report = hjsym.check("mamba", negative_controls=True)
    assert report.passed, report.table()
    assert all(not c.details["negative_control"]["passed"] for c in report.checks)


def _block():
    mamba = pytest.importorskip("mambapy.mamba", reason="mambapy is not installed (pip install 'hjsym[adapters]')")
    torch.manual_seed(0)
    return mamba, mamba.MambaBlock(mamba.MambaConfig(d_model=4, n_layers=1, d_state=3, expand_factor=2))


def test_a_mambapy_block_s_scan_at_its_own_precision():
    _, block = _block()
    report = hjsym.check("mamba", module=block, dtype="float32", negative_controls=True)
    assert report.passed, report.table()
    assert all(not c.details["negative_control"]["passed"] for c in report.checks)
    assert "initial_state_gradient" not in [c.name for c in report.checks]  # the scan starts from h = 0
    assert any("outside the SSM" in n and "out_proj" in n for n in report.notes)


def test_in_float64_the_block_s_float32_A_shows():
    _, block = _block()
    report = hjsym.check("mamba", module=block, only=["forward"])
    c = report.check("forward")
    assert not c.passed and 1e-11 < c.max_abs_err < 1e-6  # float32 rounding of A = -exp(A_log.float()), not an error of the scan
    assert any("A_log.float()" in n for n in report.notes)


def test_what_is_not_the_scan_is_named():
    mamba, block = _block()
    with pytest.raises(ModuleFormError, match="hjsym check mamba"):
        hjsym.check("ssm-selective", module=block)
    model = mamba.Mamba(mamba.MambaConfig(d_model=4, n_layers=2, d_state=3))
    with pytest.raises(ModuleFormError, match="layers.0.mixer"):
        hjsym.check("mamba", module=model)
