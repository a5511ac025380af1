"""The registry: names, Specs, spec files and third-party plugins (the ``hjsym.architectures`` entry points)."""

import sys
import textwrap

import pytest

import hjsym
from hjsym import InputError, SpecError, UnknownArchitectureError
from hjsym.spec import registry
from hjsym.spec.registry import Architecture, get, load_spec_file

CELL = '''
import hjsym
from hjsym import Dynamics, Scalar, Spec, Tensor

SPEC = Spec(name="{name}", title="A leaky tanh cell", family="control", state="s",
    symbols=(Scalar("h"), Tensor("x", ("input",)), Tensor("W", ("dim", "dim")), Tensor("U", ("dim", "input")), Tensor("b", ("dim",))),
    dynamics=Dynamics(field="tanh(W @ s + U @ x + b) - s", controls=("W", "U", "b"), step_size="h", inputs=("x",)))
'''


def test_get_takes_a_name_an_architecture_a_spec_and_a_path(tmp_path):
    lse = get("lse")
    assert get(lse) is lse
    assert get(lse.spec).spec is lse.spec and get(lse.spec).networks is None
    path = tmp_path / "cell.py"
    path.write_text(CELL.format(name="my-cell"))
    arch = get(str(path))
    assert arch.name == "my-cell" and arch.source == str(path) and arch.ref == str(path) and arch.source_key
    assert get(path) is arch  # a file is run once per content
    path.write_text(CELL.format(name="my-cell-2"))
    assert get(str(path)).name == "my-cell-2"


def test_a_spec_file_with_an_architecture(tmp_path):
    path = tmp_path / "lse_file.py"
    path.write_text("import dataclasses\nimport hjsym\nfrom hjsym.architectures.lse import SPEC as LSE\n"
                    "SPEC = dataclasses.replace(LSE, name='my-lse')\n"
                    "ARCHITECTURE = hjsym.Architecture(SPEC, networks=lambda seed, dtype: {'one': hjsym.train_lse_layer(d=2, seed=seed)})\n")
    arch = load_spec_file(path)
    assert arch.name == "my-lse" and arch.networks is not None


@pytest.mark.parametrize("body, error, message", [
    ("x = 1\n", SpecError, "defines neither SPEC nor ARCHITECTURE"),
    ("SPEC = 3\n", SpecError, "SPEC in"),
    ("raise RuntimeError('boom')\n", InputError, "importing the spec file"),
])
def test_bad_spec_files_are_named(tmp_path, body, error, message):
    path = tmp_path / "bad.py"
    path.write_text(body)
    with pytest.raises(error, match=message):
        get(str(path))


def test_missing_files_and_names():
    with pytest.raises(InputError, match="does not exist"):
        get("./nowhere.py")
    with pytest.raises(UnknownArchitectureError, match="spec file"):
        get("nope")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed distribution 'hjsym-plugin-demo' whose entry point registers a spec (a .dist-info on sys.path)."""
    pkg = tmp_path / "demo_plugin.py"
    pkg.write_text(CELL.format(name="plugin-cell"))
    info = tmp_path / "hjsym_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hjsym-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hjsym.architectures]\nplugin-cell = demo_plugin:SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._discover.cache_clear()
    yield info
    sys.modules.pop("demo_plugin", None)
    registry._discover.cache_clear()


def test_entry_point_plugins_are_registered(plugin):
    assert "plugin-cell" in registry.names()
    arch = get("plugin-cell")
    assert arch.source == "entry point plugin-cell (hjsym-plugin-demo)" and arch.ref == "plugin-cell"
    assert any(r["name"] == "plugin-cell" for r in hjsym.list_architectures())
    d = hjsym.derive("plugin-cell")
    assert d.spec.name == "plugin-cell"


def test_a_broken_or_clashing_plugin_is_named(plugin):
    (plugin / "entry_points.txt").write_text("[hjsym.architectures]\nbroken = demo_plugin:NOTHING\n")
    registry._discover.cache_clear()
    with pytest.raises(InputError, match="hjsym-plugin-demo"):
        registry.names()
    (plugin.parent / "demo_plugin.py").write_text(CELL.format(name="lse"))
    (plugin / "entry_points.txt").write_text("[hjsym.architectures]\nclash = demo_plugin:SPEC\n")
    sys.modules.pop("demo_plugin", None)
    registry._discover.cache_clear()
    with pytest.raises(InputError, match="also defined by"):
        registry.names()


def test_check_takes_a_spec_directly():
    import torch
    spec = load_spec_file_from_text(CELL.format(name="direct-cell"))

    class Cell(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.W = torch.nn.Parameter(0.3 * torch.randn(4, 4, generator=g))
            self.U = torch.nn.Parameter(torch.randn(4, 2, generator=g))
            self.b = torch.nn.Parameter(torch.randn(4, generator=g))

        def forward(self, x, s0):
            s, out = s0, []
            for k in range(x.shape[1]):
                s = torch.tanh(s @ self.W.T + x[:, k] @ self.U.T + self.b)
                out.append(s)
            return torch.stack(out, 1)

    report = hjsym.check(spec, module=Cell(), only=["forward", "costates"])
    assert report.passed and report.architecture == "direct-cell"


def load_spec_file_from_text(text):
    ns = {}
    exec(textwrap.dedent(text), ns)  # the test's own spec text
    return ns["SPEC"]


def test_architecture_of_a_module_or_a_spec():
    from hjsym.architectures import lse

    assert registry._architecture_of(lse, "here").name == "lse"
    assert registry._architecture_of(lse.SPEC, "here").networks is None
    assert registry._architecture_of(3, "here") is None
    assert isinstance(get("lse"), Architecture)
