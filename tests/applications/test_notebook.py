"""The notebook in derivations/ runs end to end and every hjsym object in it renders as rich output."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[2] / "derivations" / "lse_layer.ipynb"


def test_lse_notebook_executes_and_renders_mathematics(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    rich = [o.get("data", {}) for o in outputs if o.get("output_type") == "execute_result"]
    html = "\n".join(d.get("text/html", "") for d in rich)
    assert "Log-sum-exp layer" in html and "$$" in html  # the derivation, its equations typeset by the notebook
    assert "identity" in html and "negative control" in html  # the check table
    assert any("text/latex" in d for d in rich) and any("text/markdown" in d for d in rich)
    assert all(len(d.get("text/plain", "")) < 300 for d in rich)  # a short repr, not a dataclass dump
