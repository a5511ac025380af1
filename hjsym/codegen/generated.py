"""A generated torch function: its source, its signature as data, and the compiled callable.

This module needs neither SymPy nor the code generator, so functions cached on disk load fast.
"""

from __future__ import annotations

import hashlib
import inspect
import linecache
from dataclasses import dataclass, field

__all__ = ["GeneratedFunction", "compile_function"]

_HEADER = "import math\nimport torch\nfrom hjsym.codegen import runtime as _rt\n\n"


def compile_function(source: str, name: str):
    """Execute generated source and return the function.

    The source is hjsym's own output: generated in this process, or read from a cache entry that
    :mod:`hjsym._cache` authenticated (HMAC) before parsing it. Never user text.
    """
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    filename = f"<hjsym-generated {name} {digest}>"
    full = _HEADER + source
    linecache.cache[filename] = (len(full), None, full.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(full, filename, "exec"), namespace)  # noqa: S102 - hjsym's generated code
    return namespace[name]


def _docstring(source: str, name: str) -> str:
    """The docstring of ``def name(`` in generated source, as ``inspect.getdoc`` gives it, without compiling.

    The code generator writes it as one triple-quoted literal whose only escapes are doubled backslashes.
    """
    head = source.find(f"def {name}(")
    start = source.find('"""', head) + 3
    end = source.find('"""', start)
    if head < 0 or start < 3 or end < 0:
        return ""
    return inspect.cleandoc(source[start:end].replace("\\\\", "\\"))


@dataclass
class GeneratedFunction:
    """A torch function generated from a symbolic derivation.

    Call it like the function it wraps (its docstring gives argument order and shapes).
    ``signature`` holds the same as data: one ``{"name", "shape", "doc"}`` per argument, in
    call order; ``returns`` is the output shape, ``expression`` the SymPy expression computed
    and ``source`` the generated Python.
    """

    name: str
    source: str
    signature: tuple
    returns: str
    expression: str
    doc: str = ""
    latex: str = ""
    outputs: tuple = ()  # names of the returned tensors when there are several (a generated program)
    _fn: object = field(default=None, repr=False, compare=False)
    _sizes: tuple | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.signature = tuple(dict(s) for s in self.signature)
        self.outputs = tuple(self.outputs)
        # compiled on first use: a check calls a few of an architecture's functions, and compiling
        # all of them was most of a warm ``hjsym check``'s own start-up
        self.__doc__ = _docstring(self.source, self.name) if self._fn is None else inspect.getdoc(self._fn)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fn"] = None  # compiled code objects do not pickle; recompiled on first use
        state["_sizes"] = None
        state.pop("__doc__", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__doc__ = _docstring(self.source, self.name)

    @property
    def fn(self):
        """The compiled function (compiled on first use)."""
        if self._fn is None:
            self._fn = compile_function(self.source, self.name)
        return self._fn

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    @property
    def unchecked(self):
        """The same function without argument validation, where the code generator made one
        (generated programs); otherwise the function itself. For loops that validated once."""
        return getattr(self.fn, "unchecked", self.fn)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(s["name"] for s in self.signature)

    @property
    def size_keywords(self) -> tuple[str, ...]:
        """Sizes the function takes as keywords because no tensor argument carries them (``N=``, ``d=``)."""
        if self._sizes is None:
            params = inspect.signature(self.fn).parameters.values()
            self._sizes = tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name not in ("max_chunk_bytes", "dtype", "device"))
        return self._sizes

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "signature": list(self.signature),
            "returns": self.returns,
            "expression": self.expression,
            "doc": self.doc,
            "latex": self.latex,
            "outputs": list(self.outputs),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "GeneratedFunction":
        return cls(**{k: data[k] for k in ("name", "source", "signature", "returns", "expression", "doc", "latex")},
                   outputs=tuple(data.get("outputs", ())))

    def __repr__(self):
        return f"<generated {self.name}({', '.join(self.arg_names)}) -> {self.returns}>"

    # notebooks: the formula it computes and its signature
    def _repr_latex_(self) -> str:
        return f"$${self.name} = {self.latex}$$" if self.latex else f"$$\\mathrm{{{self.name}}}$$"

    def _repr_markdown_(self) -> str:
        args = ", ".join(f"`{s['name']}`: {s['shape']}" for s in self.signature)
        formula = f"\n\n$${self.latex}$$" if self.latex else ""
        return f"**generated `{self.name}`**({args}) → {self.returns}: {self.doc}{formula}"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td><code>{html.escape(s['name'])}</code></td><td><code>{html.escape(str(s['shape']))}</code></td>"
                       f"<td>{html.escape(str(s.get('doc', '')))}</td></tr>" for s in self.signature)
        formula = f"<p>$${html.escape(self.latex)}$$</p>" if self.latex else ""
        return (f"<div><b>generated <code>{html.escape(self.name)}</code></b> → <code>{html.escape(self.returns)}</code>: "
                f"{html.escape(self.doc)}{formula}<table>{rows}</table></div>")
