"""The package's layers: every import of hjsym by hjsym goes down the pipeline, and nothing imports in a circle.

The graph is built from the source (``ast``), function-level imports included, with the edges
Python adds itself: importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

import hjsym

PACKAGE = Path(hjsym.__file__).parent

#: The pipeline, lowest layer first. A module may import its own layer and the layers before it.
LAYERS = (
    ("base", ("hjsym._errors", "hjsym._cache", "hjsym._version", "hjsym._workers", "hjsym._resources")),
    ("symbolic", ("hjsym.symbolic",)),
    ("ir", ("hjsym.ir",)),
    ("spec", ("hjsym.spec",)),
    ("derivation", ("hjsym.derivation",)),
    ("codegen", ("hjsym.codegen",)),
    ("networks", ("hjsym.networks",)),
    ("checks", ("hjsym.checks",)),
    ("reports", ("hjsym.reports",)),
    ("verify", ("hjsym.verify",)),
    ("applications", ("hjsym.architectures", "hjsym.experiments", "hjsym._bench", "hjsym._cli", "hjsym.__main__")),
    ("facade", ("hjsym",)),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, rank = -1, None
    for n, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), n
    if rank is None:
        raise AssertionError(f"module {module} belongs to no layer: add it to LAYERS")
    return rank


def _targets(module: str, path: Path, node, known) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
    out = []
    for name in names:
        if name != "hjsym" and not name.startswith("hjsym."):
            continue
        parts = name.split(".")
        # importing a.b.c runs the __init__ of a.b first (that of the root package, the facade, imports nothing)
        out += [".".join(parts[:n]) for n in range(2 if len(parts) > 1 else 1, len(parts) + 1) if ".".join(parts[:n]) in known]
    return out


def import_graph() -> nx.DiGraph:
    known = modules()
    g = nx.DiGraph()
    g.add_nodes_from(known)
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, path, node, known):
                    # a module's own packages are initialised before it runs: not an edge
                    if target != module and not module.startswith(target + "."):
                        g.add_edge(module, target, line=node.lineno, inner=node.col_offset > 0)
    return g


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_imports_only_go_down():
    g = import_graph()
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]}) at line {d['line']}"
              for a, b, d in g.edges(data=True) if layer_of(b) > layer_of(a)]
    assert not upward, "imports that go up the pipeline:\n" + "\n".join(upward)


def test_no_import_circles():
    g = import_graph()
    cycles = list(nx.simple_cycles(g))
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c + [c[0]]) for c in cycles[:20])


def test_the_facade_imports_only_the_version_at_import_time():
    """``import hjsym`` is cheap: the public names are imported when first used."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    imported = [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("hjsym"))]
    assert imported == ["_version"]


def test_top_level_is_small():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 10, top


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS[1:10]])
def test_a_layer_is_a_subpackage(layer):
    assert (PACKAGE / layer / "__init__.py").is_file()
