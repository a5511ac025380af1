"""Report figures and artefacts of the exact-family architectures, drawn from their check reports."""

import json

import pytest

import hjsym
from hjsym.reports.figures import figures_for
from hjsym.spec.registry import get

FIGURES = {
    "lse-aniso": ("lse-aniso-metric", "lse-aniso-tropical", "lse-aniso-residual"),
    "softplus-mlp": ("softplus-mlp-activations", "softplus-mlp-table", "softplus-mlp-depth"),
    "attention": ("attention-entropy", "attention-l2-step"),
    "diagram": ("diagram-square",),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("lse-aniso", "softplus-mlp") else n for n in FIGURES])
def test_figures_are_written(name, request, tmp_path):
    fixture = {"lse-aniso": "aniso_report", "softplus-mlp": "softplus_report", "attention": "attention_report",
               "diagram": "diagram_report"}[name]
    report = request.getfixturevalue(fixture)
    arch = get(name)
    figs = figures_for(arch, report, tmp_path, seed=0)
    assert tuple(f["stem"] for f in figs) == FIGURES[name]
    for f in figs:
        assert (tmp_path / f["png"]).stat().st_size > 1000 and (tmp_path / f["pdf"]).is_file() and f["caption"]
    if name == "softplus-mlp":
        rows = json.loads((tmp_path / "activations.json").read_text())
        assert [r["class"] for r in rows] == ["LSE", "tropical", "nabla", "nabla", "open", "open"]
        assert "| softplus |" in (tmp_path / "activations.md").read_text()


def test_registry_lists_the_exact_family():
    names = [a["name"] for a in hjsym.list_architectures()]
    assert names[:5] == ["lse", "lse-aniso", "softplus-mlp", "attention", "diagram"]


def test_command_line(capsys):
    from hjsym._cli import main

    assert main(["check", "lse-aniso", "--only", "identity", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checks"][0]["name"] == "identity"
    assert main(["derive", "softplus-mlp"]) == 0
    out = capsys.readouterr().out
    assert "activation classes" in out and "d/dz LSE_eps(z, -z)" in out
    assert main(["list"]) == 0 and "diagram" in capsys.readouterr().out
