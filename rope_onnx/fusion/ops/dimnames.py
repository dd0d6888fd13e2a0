"""Dims named by their source, and the facts the per-axis table proof may draw from the names.

A proven dim (see the ``dims`` member of :class:`~rope_onnx.fusion.ops.base.OpRule`) is

- a static ``int``;
- a dim symbol: a declared graph-input ``dim_param`` (``"param:seq"``: ONNX gives equal names equal
  values) or a ``Shape`` read (``"dim:<tensor>:<axis>"``: two reads of the same axis of the same
  tensor are the same value); both are sizes, so never negative;
- ``Min(C, s)`` (``"min:<C>:<s>"``), the length of ``t[0:s]`` on an axis of static size ``C`` when
  ``s`` is a dim symbol (``cos_cached[:, :, :seq_len]`` with ``seq_len`` from a ``Shape`` read);
- ``None``: not known.

An opaque result of arithmetic on a symbol (``"expr:<node>:<k>"``, :func:`rope_onnx.graph.folding.opaque`)
names a value only by itself: it may be negative or any other number, so it is no dim symbol.
"""

from __future__ import annotations

from collections.abc import Sequence

from rope_onnx.graph.index import Dim

__all__ = [
    "SourceDims",
    "at_least_one_when_positive",
    "broadcast_dims",
    "is_size_symbol",
    "matmul_shape",
    "min_dim",
    "min_parts",
    "show_dim",
]

#: A tensor's dims as far as they are proven, None where one is not.
SourceDims = list["Dim | None"]

_MIN = "min:"


def is_size_symbol(dim: object) -> bool:
    """A symbol that names a tensor size (never negative): a dim_param, a Shape read, a Min of them."""
    return isinstance(dim, str) and not dim.startswith("expr:")


def min_dim(bound: int, size: Dim) -> Dim:
    """The length of ``[0, size)`` clamped to an axis of static length ``bound``: ``Min(bound, size)``."""
    if isinstance(size, int):
        return max(0, min(bound, size))
    return f"{_MIN}{bound}:{size}"


def min_parts(dim: object) -> tuple[int, Dim] | None:
    """``(C, s)`` for ``Min(C, s)``, else None."""
    if not isinstance(dim, str) or not dim.startswith(_MIN):
        return None
    bound, _, size = dim[len(_MIN) :].partition(":")
    return int(bound), size


def at_least_one_when_positive(table: object, x: object) -> bool:
    """The order fact ``min(1, d) <= t <= d`` for a table dim ``t`` and x's dim ``d``.

    True when ``t`` is ``Min(C, s)`` (nested Mins included) with every ``C >= 1`` and the innermost
    ``s`` the very dim ``d``: ``t <= s = d``, and ``t >= min(1, d)`` because every bound is >= 1.
    """
    parts = min_parts(table)
    if parts is None or parts[0] < 1:
        return False
    inner = parts[1]
    return inner == x or at_least_one_when_positive(inner, x)


def broadcast_dims(first: Sequence[Dim | None], second: Sequence[Dim | None]) -> SourceDims:
    """NumPy broadcasting of two proven shapes, for inputs the op runs on.

    A dim of 1 takes the other; equal names stay; a static size other than 1 wins over a symbol
    (the op runs only if the symbol is 1 or that size).  Two different symbols: unknown.
    """
    rank = max(len(first), len(second))
    a: SourceDims = [1] * (rank - len(first))
    a += first
    b: SourceDims = [1] * (rank - len(second))
    b += second
    out: SourceDims = []
    for x, y in zip(a, b, strict=True):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y or isinstance(x, int):
            out.append(x)
        elif isinstance(y, int):
            out.append(y)
        else:
            out.append(None)
    return out


def matmul_shape(a: Sequence[Dim | None], b: Sequence[Dim | None]) -> SourceDims | None:
    """NumPy matmul of operands of rank >= 2: leading dims broadcast, then A's rows, B's columns."""
    if len(a) < 2 or len(b) < 2:
        return None
    return [*broadcast_dims(a[:-2], b[:-2]), a[-2], b[-1]]


def show_dim(dim: Dim | None) -> str:
    """A dim as a user reads it: ``seq`` for ``param:seq``, ``Min(128, seq)``, ``unknown``."""
    if dim is None:
        return "unknown"
    parts = min_parts(dim)
    if parts is not None:
        return f"Min({parts[0]}, {show_dim(parts[1])})"
    return str(dim).split(":", 1)[1] if isinstance(dim, str) and ":" in dim else str(dim)
