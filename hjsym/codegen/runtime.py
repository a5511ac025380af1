"""Helpers called by generated torch functions: argument validation and streaming over atoms.

Generated code (see :mod:`hjsym.codegen.printer`) stays short and readable by delegating here. A
reduction over the atoms is evaluated in *tiles*: blocks of batch rows times chunks of atoms
whose largest intermediate fits the cache (:data:`DEFAULT_TILE_BYTES`, measured; never more than
the memory ceiling :data:`DEFAULT_CHUNK_BYTES` or ``max_chunk_bytes``), so that the matrix
product writing a tile, the shift, the exponential and the sum read it from cache instead of
streaming a ``(batch x atoms)`` matrix through memory. Each chunk of atoms yields a *partial
state* that is combined exactly:

* log-sum-exp: ``logaddexp`` of the partial values;
* Gibbs average ``E_pi[a]``: ``(lse, mean)`` pairs, reweighted by ``exp(lse_c - lse)``;
* max / min / sum: ``maximum`` / ``minimum`` / ``+``;
* top-two gap: the two largest values so far.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import torch

from .._errors import InputError

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_DTYPE",
    "resolve_dtype_device",
    "tensor_arg",
    "scalar_arg",
    "extent",
    "DEFAULT_TILE_BYTES",
    "tile_budget",
    "row_blocks",
    "atom_slices",
    "put_rows",
    "logsumexp_",
    "cat_constant",
    "combine_lse",
    "gibbs_chunk",
    "combine_gibbs",
    "finish_gibbs",
    "combine_max",
    "combine_min",
    "combine_sum",
    "top_two",
    "combine_top_two",
    "finish_top_gap",
    "spd_inverse",
    "matrix_inverse",
    "logdet_spd",
    "log1pexp",
]

#: Memory ceiling for the largest per-chunk intermediate (bytes); ``HJSYM_CHUNK_BYTES`` overrides.
DEFAULT_CHUNK_BYTES = int(os.environ.get("HJSYM_CHUNK_BYTES", 2**27))

#: Size of one tile's largest intermediate (bytes), chosen for the cache: measured by
#: ``hjsym bench`` (``tile_sweep``: the Hopf-Cole ``u`` at 2^18..2^23 bytes) on a core with 2 MiB of
#: L2; ``HJSYM_TILE_BYTES`` overrides. The memory ceiling above still bounds it.
DEFAULT_TILE_BYTES = int(os.environ.get("HJSYM_TILE_BYTES", 2**21))

#: Fewest batch rows in a tile when the atoms are cut (a matrix product of fewer rows is slow).
MIN_TILE_ROWS = 32


#: The dtype of a generated function called without any tensor argument (and no ``dtype=``).
DEFAULT_DTYPE = torch.float64


def resolve_dtype_device(values: dict, dtype=None, device=None) -> tuple[torch.dtype, torch.device]:
    """dtype and device of the tensor arguments; all tensors must agree.

    Python numbers follow the tensors. With no tensor at all, ``dtype`` (default float64, never
    torch's global default) on ``device`` (default the CPU); a ``dtype`` or ``device`` that
    contradicts the tensors is an error.
    """
    wanted_dtype, wanted_device = dtype, None if device is None else torch.device(device)
    if wanted_dtype is not None and not (isinstance(wanted_dtype, torch.dtype) and wanted_dtype.is_floating_point):
        raise InputError(f"dtype={wanted_dtype!r} is not a floating torch dtype", "pass e.g. dtype=torch.float64")
    dtype = device = None
    first = None
    for name, v in values.items():
        if isinstance(v, torch.Tensor):
            if not (v.is_floating_point() or v.is_complex()) and v.dim() > 0:
                raise InputError(
                    f"argument {name!r} has integer dtype {v.dtype}",
                    f"pass a floating tensor, e.g. {name}.double()",
                )
            if not v.is_floating_point():
                continue
            if dtype is None:
                dtype, device, first = v.dtype, v.device, name
            elif v.dtype != dtype:
                raise InputError(
                    f"argument {name!r} is {v.dtype} but {first!r} is {dtype}",
                    f"cast every tensor argument to one dtype, e.g. {name}.to({first}.dtype)",
                )
            elif v.device != device:
                raise InputError(
                    f"argument {name!r} is on {v.device} but {first!r} is on {device}",
                    f"move every tensor argument to one device, e.g. {name}.to({first}.device)",
                )
    if dtype is None:
        return wanted_dtype or DEFAULT_DTYPE, wanted_device or torch.device("cpu")
    if wanted_dtype is not None and wanted_dtype != dtype:
        raise InputError(f"dtype={wanted_dtype} but {first!r} is {dtype}", f"drop dtype= or cast the tensors, e.g. {first}.to({wanted_dtype})")
    if wanted_device is not None and wanted_device != device:
        raise InputError(f"device={wanted_device} but {first!r} is on {device}", f"drop device= or move the tensors, e.g. {first}.to({str(wanted_device)!r})")
    return dtype, device


def tensor_arg(name: str, value, rank: int, dtype, device, batched: bool) -> torch.Tensor:
    """Convert an argument and check its number of (non-batch) dimensions."""
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"argument {name!r} is not array-like ({type(value).__name__})", "pass a torch.Tensor") from exc
    elif not value.is_floating_point():
        value = value.to(dtype)
    if batched:
        if value.dim() < rank:
            raise InputError(
                f"argument {name!r} has shape {tuple(value.shape)}; expected (*batch, {_dims(rank)})",
                f"give {name} at least {rank} dimension(s), e.g. {name}.reshape(1, -1) for one point",
            )
    elif value.dim() != rank:
        raise InputError(
            f"argument {name!r} has shape {tuple(value.shape)}; expected {rank} dimension(s)",
            f"reshape {name} to {rank} dimension(s)",
        )
    return value


def _dims(rank: int) -> str:
    return ", ".join(["..."] * rank)


def point_batch(values: dict) -> tuple:
    """The batch shape of a function whose per-point scalars carry it: their shapes broadcast together."""
    shapes = [tuple(v.shape) if isinstance(v, torch.Tensor) else () for v in values.values()]
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        listed = ", ".join(f"{n} {s}" for n, s in zip(values, shapes))
        raise InputError(f"the per-point arguments have shapes that do not broadcast ({listed})",
                         "give them one shape (or pass some as plain numbers)") from None


def scalar_arg(name: str, value, dtype, device, positive: bool = False, batch_shape=None, flatten: bool = True) -> torch.Tensor:
    """A scalar parameter (``eps``, ``t``): a number, a 0-d tensor or one value per batch point.

    ``flatten=False``: the scalar carries the batch itself (no batched tensor argument): it is
    broadcast to ``batch_shape`` and keeps that shape.
    """
    v = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=dtype, device=device)
    if not v.is_floating_point():
        v = v.to(dtype)
    if not flatten:
        v = v.expand(tuple(batch_shape))
    elif v.dim() > 0:
        if batch_shape is None or tuple(v.shape) != tuple(batch_shape):
            raise InputError(
                f"argument {name!r} has shape {tuple(v.shape)}; expected a scalar"
                + ("" if batch_shape is None else f" or the batch shape {tuple(batch_shape)}"),
                f"pass {name} as a Python float or a 0-d tensor",
            )
        v = v.reshape(-1)
    if not bool(torch.isfinite(v).all()):
        raise InputError(f"argument {name!r} is not finite ({_show(v)})", f"pass a finite {name}")
    if positive and not bool((v > 0).all()):
        raise InputError(f"argument {name!r} must be > 0, got {_show(v)}", f"pass a positive {name}, e.g. {name}=0.1")
    return v


def _show(v: torch.Tensor) -> str:
    return f"{v.item():g}" if v.numel() == 1 else f"min {v.min().item():g}"


def extent(symbol: str, sources: Sequence[tuple[str, torch.Tensor, int]], given=None) -> int:
    """Read the size ``symbol`` from tensor axes; all readings (and ``given``) must agree."""
    seen = []
    for name, tensor, axis in sources:
        seen.append((name, int(tensor.shape[axis])))
    if given is not None:
        seen.append(("given", int(given)))
    if not seen:
        raise InputError(f"the size {symbol!r} cannot be read from any argument", f"pass {symbol}= explicitly")
    sizes = {s for _, s in seen}
    if len(sizes) > 1:
        detail = ", ".join(f"{n} gives {s}" for n, s in seen)
        raise InputError(f"inconsistent size {symbol}: {detail}", f"make every argument agree on {symbol}")
    (size,) = sizes
    if size < 1:
        raise InputError(f"size {symbol} is {size}", f"pass at least one element along {symbol}")
    return size


def tile_budget(max_chunk_bytes: int | None = None) -> int:
    """Bytes of one tile: the cache-sized default, never above the memory ceiling.

    ``max_chunk_bytes`` (a generated function's keyword; default :data:`DEFAULT_CHUNK_BYTES`) is
    the ceiling; the tile is :data:`DEFAULT_TILE_BYTES` or the ceiling, whichever is smaller.
    """
    ceiling = DEFAULT_CHUNK_BYTES if max_chunk_bytes is None else int(max_chunk_bytes)
    return max(1, min(DEFAULT_TILE_BYTES, ceiling))


def row_blocks(n_rows: int, row_bytes: int, max_chunk_bytes: int | None = None) -> Iterator[slice]:
    """Blocks of batch rows for tiles of :func:`tile_budget` bytes.

    ``row_bytes`` is the size of one row's largest intermediate over *all* atoms. As many rows as
    fit whole rows in a tile; when not even :data:`MIN_TILE_ROWS` rows fit, that many (the atoms
    are then cut by :func:`atom_slices`).
    """
    budget = tile_budget(max_chunk_bytes)
    per = max(1, budget // max(1, int(row_bytes)))
    per = min(n_rows, max(per, MIN_TILE_ROWS))
    if per >= n_rows:
        yield slice(0, n_rows)
        return
    for start in range(0, n_rows, per):
        yield slice(start, min(n_rows, start + per))


def put_rows(out, rows: slice, block: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Write one row block of a result into ``out`` (allocated at the first block; the block itself when it is every row)."""
    if out is None:
        if rows.start == 0 and rows.stop == n_rows:
            return block
        out = block.new_empty((n_rows,) + tuple(block.shape[1:]))
    out[rows] = block
    return out


def logsumexp_(z: torch.Tensor, dim: int) -> torch.Tensor:
    """``logsumexp(z, dim)`` that consumes ``z`` (a tile generated code owns): shift and exponential in place.

    The shift is the row maximum (``-inf`` rows are left unshifted and give ``-inf``, as
    ``torch.logsumexp`` does). A tile that autograd or a ``torch.func`` transform tracks goes
    through ``torch.logsumexp`` instead (its derivative is exact and needs the unmodified logits).
    """
    from torch._C._functorch import is_functorch_wrapped_tensor

    if z.requires_grad or is_functorch_wrapped_tensor(z):
        return torch.logsumexp(z, dim)
    m = torch.amax(z, dim, keepdim=True)
    m.masked_fill_(torch.isinf(m), 0.0)
    z.sub_(m)
    torch.exp(z, out=z)  # the out= kernel (the in-place exp_ was measured slower)
    return torch.log(torch.sum(z, dim)) + m.squeeze(dim)


_CAT_CACHE: dict = {}
_CAT_CACHE_SIZE = 16


def cat_constant(tensors, dim: int) -> torch.Tensor:
    """``torch.cat(tensors, dim)`` of tensors that stay the same from call to call (a cell's weights), cached.

    A step program called once per time step concatenates the same weights every step; the
    result is kept (the last few) and returned while every input is the same tensor object at
    the same version (an in-place change bumps it). Tensors that require grad, or that a
    ``torch.func`` transform wraps, are concatenated afresh.
    """
    from torch._C._functorch import is_functorch_wrapped_tensor

    if (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)) or any(is_functorch_wrapped_tensor(t) for t in tensors):
        return torch.cat(tensors, dim)
    # a view (a transposed weight) is a new object every call: key on the tensor it views and where
    bases = tuple(t if t._base is None else t._base for t in tensors)
    key = (tuple(id(b) for b in bases), tuple((t.data_ptr(), tuple(t.shape), t.stride(), t.dtype, t.device) for t in tensors), dim)
    versions = tuple(t._version for t in tensors)  # views share their base's version counter
    hit = _CAT_CACHE.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], bases)) and hit[1] == versions:
        return hit[2]
    out = torch.cat(tensors, dim)
    if len(_CAT_CACHE) >= _CAT_CACHE_SIZE:
        _CAT_CACHE.pop(next(iter(_CAT_CACHE)))
    _CAT_CACHE[key] = (bases, versions, out)  # the references keep the ids from being reused
    return out


def atom_slices(n_atoms: int, bytes_per_atom: int, budget: int | None = None) -> Iterator[slice]:
    """Chunks of the atom axis whose largest intermediate fits in a tile (see :func:`tile_budget`)."""
    budget = tile_budget(budget)
    per = max(1, budget // max(1, bytes_per_atom))
    if per >= n_atoms:
        yield slice(0, n_atoms)
        return
    for start in range(0, n_atoms, per):
        yield slice(start, min(n_atoms, start + per))


def combine_lse(state, value):
    return value if state is None else torch.logaddexp(state, value)


def combine_max(state, value):
    return value if state is None else torch.maximum(state, value)


def combine_min(state, value):
    return value if state is None else torch.minimum(state, value)


def combine_sum(state, value):
    return value if state is None else state + value


def gibbs_chunk(z: torch.Tensor, dim: int, whole: bool):
    """``(log-sum-exp, softmax)`` of one chunk of logits along ``dim``.

    The log-sum-exp is only needed to merge chunks: when the chunk is the whole atom axis it is
    None and only the (fused) softmax is computed.
    """
    p = torch.softmax(z, dim)
    return (None if whole else torch.logsumexp(z, dim)), p


def combine_gibbs(state, lse, mean, lse_view):
    """Merge the partial Gibbs average ``(lse, mean)`` of one chunk into ``state``.

    ``lse_view`` broadcasts an lse tensor against ``mean`` (it inserts the value axes); ``lse``
    is None when the chunk is the whole axis (nothing to merge).
    """
    if state is None:
        return lse, mean
    lse0, mean0 = state
    total = torch.logaddexp(lse0, lse)
    return total, mean0 * torch.exp(lse_view(lse0 - total)) + mean * torch.exp(lse_view(lse - total))


def finish_gibbs(state):
    return state[1]


def top_two(z: torch.Tensor, dim: int) -> torch.Tensor:
    """The two largest values along ``dim``; a single atom is its own runner-up (its gap is 0, as ``TopGap`` defines)."""
    if z.shape[dim] >= 2:
        return torch.topk(z, 2, dim=dim).values.movedim(dim, -1)
    top = z.movedim(dim, -1)
    return torch.cat([top, top], dim=-1)


def combine_top_two(state, pair):
    if state is None:
        return pair
    return torch.topk(torch.cat([state, pair], dim=-1), 2, dim=-1).values


def finish_top_gap(state):
    return state[..., 0] - state[..., 1]


# ----------------------------------------------------------------------------- matrices
def _square(name: str, A: torch.Tensor) -> None:
    if A.dim() != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"argument {name!r} has shape {tuple(A.shape)}; expected a square (d, d) matrix", f"pass {name} as a (d, d) tensor")


def _cholesky(name: str, A: torch.Tensor) -> torch.Tensor:
    _square(name, A)
    asym = float((A - A.transpose(-1, -2)).abs().max()) if A.numel() else 0.0
    scale = float(A.abs().max()) if A.numel() else 1.0
    if asym > 1e3 * torch.finfo(A.dtype).eps * max(1.0, scale):
        raise InputError(
            f"{name} is not symmetric (max |{name} - {name}^T| = {asym:.3g})",
            f"pass a symmetric {name}, e.g. ({name} + {name}.T) / 2",
        )
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) != 0:
        low = float(torch.linalg.eigvalsh(0.5 * (A + A.transpose(-1, -2))).min())
        raise InputError(
            f"{name} is not positive definite (smallest eigenvalue {low:.3g}): H(p) = p^T {name} p is not convex, "
            f"so there is no Lagrangian, no Hopf-Lax formula and no Gaussian kernel",
            f"pass a symmetric positive definite {name} (for a network x -> layer(L x): {name} = (L^T L)^-1 with L invertible)",
        )
    return L


def spd_inverse(name: str, A: torch.Tensor) -> torch.Tensor:
    """``A^{-1}`` of a symmetric positive definite matrix (Cholesky; a clear error otherwise)."""
    inv = torch.cholesky_inverse(_cholesky(name, A))
    return 0.5 * (inv + inv.transpose(-1, -2))  # exactly symmetric, as the derivation assumes


def matrix_inverse(name: str, A: torch.Tensor) -> torch.Tensor:
    """``A^{-1}`` of a square matrix (a clear error when it is singular)."""
    _square(name, A)
    inv, info = torch.linalg.inv_ex(A)
    if int(info) != 0 or not bool(torch.isfinite(inv).all()):
        raise InputError(f"{name} is singular", f"pass an invertible {name}")
    return inv


def logdet_spd(name: str, A: torch.Tensor) -> torch.Tensor:
    """``log det A`` of a symmetric positive definite matrix."""
    return 2 * torch.log(torch.diagonal(_cholesky(name, A))).sum()


def log1pexp(a: torch.Tensor) -> torch.Tensor:
    """``log(1 + e^a)`` without overflow and without softplus's linear cut-off at ``a > 20``."""
    return torch.logaddexp(a, torch.zeros((), dtype=a.dtype, device=a.device))


def heaviside(z, at_zero: float = 0.5) -> torch.Tensor:
    """The step function ``H(z)`` (``H(0) = at_zero``, SymPy's ``Heaviside``): ReLU's derivative."""
    z = torch.as_tensor(z)
    return torch.heaviside(z, torch.tensor(at_zero, dtype=z.dtype, device=z.device))
