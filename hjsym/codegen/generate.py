"""Generated torch functions and programs: from a function spec (:mod:`hjsym.ir`) to compiled code.

:func:`generate` takes a :class:`~hjsym.ir.FunctionSpec` (one expression) or a
:class:`~hjsym.ir.ProgramSpec` (named intermediates and several outputs) and returns a
:class:`~hjsym.codegen.generated.GeneratedFunction`. Both kinds share one printer
(:mod:`hjsym.codegen.printer`) and one prologue: the signature, the docstring (argument shapes),
argument validation and the flattening of the batch. Every function also has an ``unchecked``
twin without the validation, for loops that validated their arguments once.

A single expression's reductions over the atoms at its top are *streamed*: the atoms are cut
into chunks whose largest intermediate fits a memory budget, each chunk gives a partial state,
and the states are combined exactly (see :mod:`hjsym.codegen.runtime`).

Called with no tensor argument at all, a generated function computes in ``dtype=`` on
``device=`` (default float64 on the CPU), never in torch's global default dtype.
"""

from __future__ import annotations

import textwrap

import sympy as sp

from .._errors import SpecError
from ..ir import ArgSpec, BatchSum, FunctionSpec, Output, ProgramSpec
from ..symbolic.axes import AXES, axis_of
from ..symbolic.reductions import GibbsMean, LogSumExp, ReduceMax, ReduceMin, Reduction, TopGap
from .generated import GeneratedFunction, compile_function
from .hoist import hoist_logits
from .printer import BATCH, Compiler, _label, wrap

__all__ = ["generate", "function_source", "program_source"]


def _text(e) -> str:
    """An expression as text for docstrings, in SymPy's stored term order (sorting terms costs more than the rest of code generation)."""
    return sp.sstr(e, order="none")


def generate(spec, latex: str = "") -> GeneratedFunction:
    """Generate and compile a :class:`~hjsym.ir.FunctionSpec` or :class:`~hjsym.ir.ProgramSpec`."""
    if isinstance(spec, ProgramSpec):
        return _generate_program(spec, latex)
    if isinstance(spec, FunctionSpec):
        return _generate_function(spec, latex)
    raise TypeError(f"generate() takes a FunctionSpec or a ProgramSpec, got {type(spec).__name__}")


# ----------------------------------------------------------------------------- one expression, streamed over the atoms
_STREAMABLE = (LogSumExp, GibbsMean, ReduceMax, ReduceMin, TopGap)


def _top_reductions(expr, out: list):
    """Reductions over an atom index not nested in another one, in first-seen order."""
    is_atom_sum = isinstance(expr, sp.Sum) and len(expr.limits) == 1 and axis_of(expr.limits[0][0]).name == "atom"
    if is_atom_sum or (isinstance(expr, _STREAMABLE) and axis_of(expr.index).name == "atom"):
        if expr not in out:
            out.append(expr)
        return
    for a in expr.args:
        if not a.is_Atom:
            _top_reductions(a, out)


def _partial(c: Compiler, r):
    """(chunk value code, combine template, finish template) of one streamed reduction."""
    p = c.printer
    var = r.limits[0][0]
    if isinstance(r, LogSumExp):
        return p._print_LogSumExp(r), "_rt.combine_lse({state}, {value})", "{state}"
    if isinstance(r, GibbsMean):
        lse = p._gibbs_chunk(r.logits, var)
        mean = c.fresh("_mean")
        c.emit(mean, p._contraction_of(r))
        lse_axes = tuple(a for a in c.axes(r.logits) if a != _label(var))
        view = c.align("_v", lse_axes, c.axes(r))
        return (
            f"({lse}, {mean})",
            "_rt.combine_gibbs({state}, *{value}, lse_view=lambda _v: " + view + ")",
            "_rt.finish_gibbs({state})",
        )
    if isinstance(r, ReduceMax):
        return p._print_ReduceMax(r), "_rt.combine_max({state}, {value})", "{state}"
    if isinstance(r, ReduceMin):
        return p._print_ReduceMin(r), "_rt.combine_min({state}, {value})", "{state}"
    if isinstance(r, TopGap):
        dim = p._dim(c.axes(r.function), var)
        return (
            f"_rt.top_two({p._print(r.function)}, {dim})",
            "_rt.combine_top_two({state}, {value})",
            "_rt.finish_top_gap({state})",
        )
    return p._print_Sum(r), "_rt.combine_sum({state}, {value})", "{state}"


def _materialised(c: Compiler, e, out: list):
    """Subexpressions that generated code holds as tensors (a contraction's summand is not one)."""
    if e.is_Atom or isinstance(e, sp.Tuple):
        return
    out.append(e)
    if isinstance(e, (sp.Sum, GibbsMean)):
        summand = e.value if isinstance(e, GibbsMean) else e.function
        if isinstance(e, GibbsMean):
            _materialised(c, e.logits, out)
        for f in sp.Mul.make_args(summand):
            _materialised(c, f.base if (f.is_Pow and f.exp == 2) else f, out)
        return
    for a in (e.function,) if isinstance(e, Reduction) else e.args:
        _materialised(c, a, out)


def _bytes_per_atom(c: Compiler, exprs, atom_label: str) -> tuple[str, str | None]:
    """Python expressions: bytes per atom of the largest tensor a chunk body materialises, and the
    elements per (batch row, atom) of those that grow with the rows (None when none does)."""
    terms, per_row = set(), set()
    subs: list = []
    for e in exprs:
        _materialised(c, e, subs)
    for sub in subs:
        axes = c.axes(sub)
        if atom_label in axes:
            dims = sorted(c.extent_label(a) for a in axes if a != atom_label)
            terms.add("*".join(dims) or "1")
            if "_M" in dims:
                per_row.add("*".join(x for x in dims if x != "_M") or "1")

    def biggest(ts):
        return "1" if not ts else (next(iter(ts)) if len(ts) == 1 else f"max({', '.join(sorted(ts))})")

    return f"_itemsize * {biggest(terms)}", (biggest(per_row) if per_row else None)


def _hoisted_reduction(c: Compiler, r, label: str, hoisted: list):
    """``r`` with the loop invariants of its logits replaced by precomputed tensors (see :mod:`.hoist`)."""
    if isinstance(r, LogSumExp):
        return LogSumExp(hoist_logits(c, r.logits, label, hoisted), *r.limits)
    if isinstance(r, GibbsMean):
        return GibbsMean(sp.Tuple(r.value, hoist_logits(c, r.logits, label, hoisted)), *r.limits)
    if isinstance(r, (ReduceMax, ReduceMin, TopGap)):
        return type(r)(hoist_logits(c, r.function, label, hoisted), *r.limits)
    return r


def function_source(fspec: FunctionSpec) -> str:
    """Python source of a torch function computing ``fspec.expr`` (and of its ``unchecked`` twin)."""
    c = Compiler(fspec)
    expr = sp.sympify(fspec.expr)
    for a in fspec.args:
        if not expr.has(a.symbol):
            raise SpecError(f"{fspec.name}: argument {a.name!r} does not occur in the expression", "drop it from args")
    out_axes = c.axes(expr)
    declared = [c.register(ix) for ix in fspec.out_indices]
    free = [a for a in out_axes if a != BATCH]
    if sorted(free) != sorted(declared):
        raise SpecError(
            f"{fspec.name}: the expression has free indices {free} but the output declares {declared}",
            "declare exactly the free indices of the expression as out_indices",
        )
    placeholders: dict = {}
    # Streaming only pays when the output has no atom axis (otherwise it is N-sized anyway).
    reductions: list = []
    if all(c.kinds[a] != "atom" for a in free):
        _top_reductions(expr, reductions)
    groups: dict[str, list] = {}
    for r in reductions:
        groups.setdefault(_label(r.limits[0][0]), []).append(r)
    # loop invariants of the logits (bias, scaled atoms): computed once, before the tiles
    hoisted: list = []
    rewritten = {label: [_hoisted_reduction(c, r, label, hoisted) for r in group] for label, group in groups.items()}
    c.start_block([h.expr for h in hoisted])
    for h in hoisted:
        c.emit(h.name, c.print(h.expr))
    pre = c.lines
    loops: list[str] = []
    row_terms: list[str] = []
    for label, group in groups.items():
        c.start_block(rewritten[label], streamed=group[0].limits[0][0])
        states, finish = [], []
        for r, r_new in zip(group, rewritten[label]):
            ph = sp.Symbol(c.fresh("_r"))
            placeholders[r] = ph
            c.sym_axes[ph] = c.axes(r)
            state = c.fresh("_state")
            value, combine, done = _partial(c, r_new)
            c.lines.append(f"{state} = {combine.format(state=state, value=value)}")
            states.append(state)
            finish.append(f"{ph.name} = {done.format(state=state)}")
        loop_lines = c.lines
        # the largest tensor a chunk materialises: a Gibbs average counts its logits and values
        per_atom, per_row = _bytes_per_atom(c, rewritten[label], label)
        atoms = c.extent_label(label)
        if per_row is not None:
            row_terms.append(f"{atoms} * {per_row}")
        loops += [f"{s} = None" for s in states]
        loops.append(f"for _s in _rt.atom_slices({atoms}, {per_atom}, max_chunk_bytes):")
        loops += ["    " + line for line in loop_lines]
        loops += finish
    outer = expr.xreplace(placeholders)
    c.start_block([outer])
    code = c.print(outer)
    want = [BATCH] * (BATCH in out_axes) + declared
    if list(out_axes) != want:
        code = f"{wrap(code)}.permute({', '.join(str(list(out_axes).index(a)) for a in want)})"
    rows = [a for a in fspec.args if a.batched or a.per_point]
    body = list(pre)
    if BATCH in out_axes and row_terms and rows:
        # tiles: blocks of rows (each row's reductions are independent), chunks of atoms inside
        row_bytes = row_terms[0] if len(row_terms) == 1 else f"max({', '.join(row_terms)})"
        body += [f"_all_{a.name} = {a.name}" for a in rows] + ["_M_all, _out = _M, None"]
        body.append(f"for _b in _rt.row_blocks(_M_all, _itemsize * {row_bytes}, max_chunk_bytes):")
        block = [f"{a.name} = _all_{a.name}[_b]" if a.batched else
                 f"{a.name} = _all_{a.name}[_b] if _all_{a.name}.dim() else _all_{a.name}" for a in rows]
        block += ["_M = _b.stop - _b.start"] + loops + c.lines + [f"_out = _rt.put_rows(_out, _b, {code}, _M_all)"]
        body += ["    " + line for line in block]
    else:
        body += loops + c.lines + [f"_out = {code}"]
    if BATCH in out_axes:
        body.append("return _out.reshape(_batch + tuple(_out.shape[1:]))")
    else:
        shape = "".join(f"{c.extent_label(a)}, " for a in want)
        body.append(f"return torch.as_tensor(_out, dtype=dtype, device=device).expand(({shape}))")
    return _assemble(c, fspec, ["    " + line for line in body], lambda explicit: _function_docstring(fspec, out_axes, explicit))


# ----------------------------------------------------------------------------- programs
def _labels(c: Compiler, indices) -> list[str]:
    return [c.register(ix) for ix in indices]


def _kinds(indices) -> tuple[str, ...]:
    return tuple(axis_of(ix).name for ix in indices)


def _local_name(target) -> str:
    label = target.label.name if isinstance(target, sp.IndexedBase) else target.name
    return "_v_" + "".join(ch if ch.isalnum() else "_" for ch in str(label))


def program_source(ps: ProgramSpec) -> str:
    """Python source of a torch function computing every output of ``ps`` (and of its ``unchecked`` twin)."""
    fspec = FunctionSpec(ps.name, sp.Tuple(*[o.expr for o in ps.outputs]), ps.args, (), ps.doc)
    c = Compiler(fspec)
    used = set()
    for e in ps.expressions():
        used |= e.free_symbols | set(e.atoms(sp.IndexedBase))
    for a in ps.args:
        if a.symbol not in used:
            raise SpecError(f"{ps.name}: argument {a.name!r} is used by no output", "drop it from args")
    c.start_block(ps.expressions())
    taken: set[str] = set()
    for let in ps.lets:
        code = c.print(let.expr)
        have = c.axes(let.expr)
        declared = _labels(c, let.indices)
        free = [x for x in have if x != BATCH]
        if sorted(free) != sorted(declared):
            raise SpecError(f"{ps.name}: let {let.target} has free indices {free}, declared {declared}", "declare its free indices")
        want = [BATCH] * (BATCH in have) + declared
        if list(have) != want:
            code = f"{wrap(code)}.permute({', '.join(str(list(have).index(x)) for x in want)})"
        name = _local_name(let.target)
        if name in taken:
            raise SpecError(f"{ps.name}: two intermediates named {name}", "give every intermediate its own name")
        taken.add(name)
        if isinstance(let.target, sp.IndexedBase):
            c.args[let.target] = ArgSpec(name, let.target, _kinds(let.indices), batched=BATCH in have)
        else:
            c.sym_axes[let.target] = (BATCH,) if BATCH in have else ()
            c.printer.locals[let.target] = name
        c.lines.append(f"{name} = {code}")
    results, shapes = [], []
    for n, out in enumerate(ps.outputs):
        expr = BatchSum(out.expr) if out.batch_sum else out.expr
        code = c.print(expr)
        have = list(c.axes(expr))
        declared = _labels(c, out.indices)
        free = [x for x in have if x != BATCH]
        if sorted(free) != sorted(declared):
            raise SpecError(f"{ps.name}: output {out.name} has free indices {free}, declared {declared}", "declare its free indices")
        want = [BATCH] * (BATCH in have) + declared
        if have != want:
            code = f"{wrap(code)}.permute({', '.join(str(have.index(x)) for x in want)})"
        var = f"_out{n}"
        c.lines.append(f"{var} = {code}")
        if BATCH in have:
            results.append(f"{var}.reshape(_batch + tuple({var}.shape[1:]))")
        else:
            shape = "".join(f"{c.extent_label(x)}, " for x in declared)
            results.append(f"torch.as_tensor({var}, dtype=dtype, device=device).expand(({shape}))")
        shapes.append(_shape_text(out, BATCH in have))
    body = ["    " + line for line in c.lines]
    body.append("    return " + (results[0] if len(results) == 1 else "(" + ", ".join(results) + ")"))
    return _assemble(c, fspec, body, lambda explicit: _program_docstring(ps, shapes, explicit))


# ----------------------------------------------------------------------------- the shared prologue
def _assemble(c: Compiler, fspec: FunctionSpec, body: list[str], docstring) -> str:
    """The unchecked function (the body), the checked one (validation, then the body), and ``NAME.unchecked``."""
    lines = prologue(c, fspec, checked=False) + body + [""]
    lines += prologue(c, fspec, docstring)
    explicit = sorted(e for e in c.extents_int if e not in _extent_sources(fspec))
    passed = ", ".join([a.name for a in fspec.args] + [f"{e}={e}" for e in explicit] + ["max_chunk_bytes=max_chunk_bytes",
                                                                                         "dtype=dtype", "device=device"])
    lines.append(f"    return {fspec.name}_unchecked({passed})")
    lines += ["", f"{fspec.name}.unchecked = {fspec.name}_unchecked"]
    return "\n".join(lines) + "\n"


def _extent_sources(fspec: FunctionSpec) -> dict[str, list[tuple[str, int]]]:
    """For every size symbol, the (argument, axis) pairs it can be read from."""
    sources: dict[str, list[tuple[str, int]]] = {}
    for a in fspec.args:
        if a.is_tensor:
            offset = 1 if a.batched else 0
            for n, kind in enumerate(a.axes):
                sources.setdefault(AXES[kind].extent.name, []).append((a.name, n + offset))
    return sources


def prologue(c: Compiler, fspec: FunctionSpec, docstring=None, checked: bool = True) -> list[str]:
    """The signature and argument handling of a generated function (``checked``) or of its unchecked twin.

    The unchecked twin (``NAME.unchecked``) holds the body: it trusts that its tensors agree in
    dtype, device and shape, flattens the batch to ``(_M, ...)`` (the common leading shape is kept
    in ``_batch``) and reads the sizes from the shapes. The checked function validates dtypes,
    devices, shapes, finiteness and signs of its arguments, converts numbers to tensors, and calls
    the twin. ``docstring(explicit)`` returns the docstring given the sizes passed explicitly.
    """
    args = fspec.args
    tensors = [a for a in args if a.is_tensor]
    sources = _extent_sources(fspec)
    explicit = sorted(e for e in c.extents_int if e not in sources)
    kw = ", ".join([f"{e}=None" for e in explicit] + ["max_chunk_bytes=None", "dtype=None", "device=None"])
    sig = ", ".join(a.name for a in args)
    if not checked:
        lines = [f"def {fspec.name}_unchecked({sig}{', ' if sig else ''}*, {kw}):",
                 f'    """{fspec.name} without argument validation (tensors must already agree in dtype, device and shape)."""']
        first = tensors[0].name if tensors else None
        points = _point_batch(args)
        if first:
            lines.append(f"    dtype, device = {first}.dtype, {first}.device")
        else:
            values = ", ".join(f"{a.name!r}: {a.name}" for a in points)
            lines.append(f"    dtype, device = _rt.resolve_dtype_device({{{values}}}, dtype, device)")
        batch_src = next((a for a in tensors if a.batched), None)
        if points:
            # no batched tensor: the per-point scalars (a curve's x, y, y') carry the batch
            for a in points:
                lines.append(f"    {a.name} = {a.name} if isinstance({a.name}, torch.Tensor) else "
                             f"torch.tensor({a.name}, dtype=dtype, device=device)")
            lines.append(f"    _batch = tuple(torch.broadcast_shapes({', '.join(f'{a.name}.shape' for a in points)},))")
            for a in points:
                lines.append(f"    {a.name} = {a.name}.expand(_batch).reshape(-1)")
            lines.append("    _M = math.prod(_batch)")
        elif batch_src is not None:
            lines.append(f"    _batch = tuple({batch_src.name}.shape[:{batch_src.name}.dim() - {len(batch_src.axes)}])")
            for a in tensors:
                if a.batched:
                    k = len(a.axes)
                    lines.append(f"    {a.name} = {a.name}.reshape(-1, *{a.name}.shape[{a.name}.dim() - {k}:])")
            lines.append(f"    _M = {batch_src.name}.shape[0]")
        else:
            lines.append("    _batch, _M = (), 1")
        for a in args:
            if not a.is_tensor:
                lines.append(f"    {a.name} = {a.name} if isinstance({a.name}, torch.Tensor) else "
                             f"torch.tensor({a.name}, dtype=dtype, device=device)")
        for ext in sorted(set(c.extents_int) | set(c.extents_tensor)):
            lines.append(f"    _{ext} = {sources[ext][0][0]}.shape[{sources[ext][0][1]}]" if ext in sources else f"    _{ext} = {ext}")
        for var, code in c.derived:
            lines.append(f"    {var} = {code}")
        for ext in sorted(c.extents_tensor):
            lines.append(f"    _{ext}_t = torch.tensor(float(_{ext}), dtype=dtype, device=device)")
        lines.append("    _itemsize = torch.empty((), dtype=dtype).element_size()")
        return lines
    lines = [f"def {fspec.name}({sig}{', ' if sig else ''}*, {kw}):"]
    lines.append(textwrap.indent(docstring(explicit), "    "))
    values = ", ".join(f"{a.name!r}: {a.name}" for a in args)
    lines.append(f"    dtype, device = _rt.resolve_dtype_device({{{values}}}, dtype, device)")
    for a in tensors:
        lines.append(f"    {a.name} = _rt.tensor_arg({a.name!r}, {a.name}, {len(a.axes)}, dtype, device, batched={a.batched})")
    batch_src = next((a for a in tensors if a.batched), None)
    if batch_src is not None:
        lines.append(f"    _batch = tuple({batch_src.name}.shape[:{batch_src.name}.dim() - {len(batch_src.axes)}])")
        for a in tensors:
            if a.batched and a is not batch_src:
                k = len(a.axes)
                lines.append(f"    if tuple({a.name}.shape[:{a.name}.dim() - {k}]) != _batch:")
                lines.append(
                    f"        raise _rt.InputError(f'{a.name} has batch shape {{tuple({a.name}.shape[:{a.name}.dim() - {k}])}}"
                    f" but {batch_src.name} has {{_batch}}', 'give every batched argument the same leading shape')"
                )
    elif _point_batch(args):
        names = ", ".join(a.name for a in _point_batch(args))
        lines.append(f"    _batch = _rt.point_batch({{{', '.join(f'{a.name!r}: {a.name}' for a in _point_batch(args))}}})  # from {names}")
    else:
        lines.append("    _batch = ()")
    own = bool(_point_batch(args))
    for a in args:
        if not a.is_tensor:
            bs = "_batch" if a.per_point else "None"
            extra = ", flatten=False" if own and a.per_point else ""
            lines.append(f"    {a.name} = _rt.scalar_arg({a.name!r}, {a.name}, dtype, device, positive={a.positive}, batch_shape={bs}{extra})")
    # sizes are read from the trailing (non-batch) axes: the batch is not flattened here
    trailing: dict[str, list[tuple[str, int]]] = {}
    for a in tensors:
        for n, kind in enumerate(a.axes):
            trailing.setdefault(AXES[kind].extent.name, []).append((a.name, n - len(a.axes)))
    for ext in sorted(set(trailing) | set(explicit)):
        given = ext if ext in explicit else "None"
        readings = ", ".join(f"({n!r}, {n}, {axis})" for n, axis in trailing.get(ext, []))
        lines.append(f"    _{ext} = _rt.extent({ext!r}, [{readings}], given={given})")
    return lines


def _point_batch(args) -> list:
    """The per-point scalars that carry the batch of a function without a batched tensor argument (else ``[]``)."""
    if any(a.is_tensor and a.batched for a in args):
        return []
    return [a for a in args if not a.is_tensor and a.per_point]


def _function_docstring(fspec: FunctionSpec, out_axes, explicit) -> str:
    rows = [f"{a.name}: {a.shape_text()}" + (f" -- {a.doc}" if a.doc else "") for a in fspec.args]
    rows += [f"{e}: int -- size not carried by any tensor argument" for e in explicit]
    out_dims = (["*batch"] if BATCH in out_axes else []) + [
        str(AXES[axis_of(ix).name].extent) for ix in fspec.out_indices
    ]
    ret = ("(" + ", ".join(out_dims) + ("," if len(out_dims) == 1 else "") + ")") if out_dims else "a 0-d tensor"
    doc = [fspec.doc.strip() or fspec.name, "", "Args:"]
    doc += ["    " + r for r in rows]
    doc += ["    max_chunk_bytes: memory budget of one chunk of atoms (default: hjsym's DEFAULT_CHUNK_BYTES)"]
    doc += ["    dtype, device: used when no argument is a tensor (default float64 on the CPU)"]
    doc += ["", f"Returns: {ret}, in the dtype and on the device of the tensor arguments."]
    doc += ["", "Computes: " + _text(fspec.expr)]
    text = "\n".join(doc).replace("\\", "\\\\").replace('"""', "'''")
    return '"""' + text + '\n"""'


def _shape_text(out: Output, batched: bool) -> str:
    dims = (["*batch"] if batched else []) + [str(AXES[axis_of(ix).name].extent) for ix in out.indices]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _program_docstring(ps: ProgramSpec, shapes, explicit) -> str:
    rows = [f"{a.name}: {a.shape_text()}" + (f" -- {a.doc}" if a.doc else "") for a in ps.args]
    rows += [f"{e}: int -- size not carried by any tensor argument" for e in explicit]
    doc = [ps.doc.strip() or ps.name, "", "Args:"]
    doc += ["    " + r for r in rows]
    doc += ["    max_chunk_bytes: unused (accepted for a uniform signature)"]
    doc += ["    dtype, device: used when no argument is a tensor (default float64 on the CPU)"]
    doc += ["", "Returns:" if len(ps.outputs) > 1 else "Returns (one tensor):"]
    for out, shape in zip(ps.outputs, shapes):
        doc.append(f"    {out.name}: {shape}" + (" summed over the batch" if out.batch_sum else "") + (f" -- {out.doc}" if out.doc else ""))
    doc += ["", "in the dtype and on the device of the tensor arguments.", "", "Intermediates:"]
    doc += ["    " + f"{_text(let.target)}{list(map(str, let.indices)) if let.indices else ''} = {_text(let.expr)}" for let in ps.lets]
    doc += ["", "Computes:"]
    doc += ["    " + f"{out.name} = {'sum over the batch of ' if out.batch_sum else ''}{_text(out.expr)}" for out in ps.outputs]
    text = "\n".join(doc).replace("\\", "\\\\").replace('"""', "'''")
    return '"""' + text + '\n"""'


def _generate_function(fspec: FunctionSpec, latex: str = "") -> GeneratedFunction:
    """Generate and compile ``fspec``."""
    src = function_source(fspec)
    out_dims = [str(AXES[axis_of(ix).name].extent) for ix in fspec.out_indices]
    batched = any(a.batched or a.per_point for a in fspec.args)
    returns = "(" + ", ".join((["*batch"] if batched else []) + out_dims) + ")"
    return GeneratedFunction(
        name=fspec.name,
        source=src,
        signature=tuple({"name": a.name, "shape": a.shape_text(), "doc": a.doc} for a in fspec.args),
        returns=returns,
        expression=_text(fspec.expr),
        doc=fspec.doc,
        latex=latex,
        _fn=compile_function(src, fspec.name),  # compiled now: a code generator error surfaces at derive time
    )


def _generate_program(ps: ProgramSpec, latex: str = "") -> GeneratedFunction:
    """Generate and compile ``ps``; ``returns`` lists the output shapes."""
    src = program_source(ps)
    shapes = []
    for out in ps.outputs:
        batched = any(a.batched for a in ps.args) and not out.batch_sum
        shapes.append(_shape_text(out, batched))
    returns = shapes[0] if len(shapes) == 1 else "(" + ", ".join(shapes) + ")"
    return GeneratedFunction(
        name=ps.name,
        source=src,
        signature=tuple({"name": a.name, "shape": a.shape_text(), "doc": a.doc} for a in ps.args),
        returns=returns,
        expression="; ".join(f"{o.name} = {_text(o.expr)}" for o in ps.outputs),
        doc=ps.doc,
        latex=latex,
        _fn=compile_function(src, ps.name),
        outputs=tuple(o.name for o in ps.outputs),
    )
