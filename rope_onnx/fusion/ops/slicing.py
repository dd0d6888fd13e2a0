"""Ops that select channels: Slice, Split, Gather (with static indices).

On the channel grid they only pick and reorder polynomials, so a rotation written with two
Slices, a Split, step-2 slices or a Gather of pairs ends as the same polynomials.  A selection
on a leading axis (positions, heads) ends the candidate: that keeps position-dependent tables
as inputs of the fused node.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import NotRope
from rope_onnx.fusion.grid import grid_axis, onnx_slice_indices
from rope_onnx.fusion.ops.base import DimsContext, OpRule, ShapeContext, TraceContext, Value
from rope_onnx.fusion.ops.common import TABLE, same_rank, static_ints
from rope_onnx.fusion.ops.dimnames import SourceDims, is_size_symbol, min_dim
from rope_onnx.graph.attributes import attr_int, attr_ints
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.folding import IntValue, NotStatic
from rope_onnx.graph.index import Dim, GraphIndex

FoldArg = Callable[[int], IntValue]


def _has(node: NodeProto, position: int) -> bool:
    return len(node.input) > position and bool(node.input[position])


# ---------------------------------------------------------------- Slice
def _slice(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    rank = t.rank(node.input[0])
    value = t.expr(node.input[0], k)  # first: its channel widths help fold bounds computed from its shape
    starts, n1 = t.ints(node, 1, "starts")
    ends, n2 = t.ints(node, 2, "ends")
    axes, n3 = t.ints(node, 3, "axes") if _has(node, 3) else (list(range(len(starts))), frozenset())
    steps, n4 = t.ints(node, 4) if _has(node, 4) else ([1] * len(starts), frozenset())
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise NotRope(f"Slice node '{node.name}' has starts/ends/axes/steps of different lengths")
    positions = [grid_axis(a, rank, k, node) for a in axes]
    grid = value.grid
    for pos, start, end, step in zip(positions, starts, ends, steps, strict=True):
        grid = grid.take(onnx_slice_indices(grid.shape[pos], start, end, step), axis=pos)
    return value.with_grid(grid, n1, n2, n3, n4)


def _slice_width(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """Width after a Slice: unchanged unless it cuts the last axis, then counted from the bounds."""
    rank = ctx.rank_of(node.input[0])
    axes = ctx.fold(node.input[3]).ints() if _has(node, 3) else None
    if rank is None or axes is None:
        return None
    if rank - 1 not in [a % rank for a in axes]:
        return ctx.width_of(node.input[0])
    width = ctx.width_of(node.input[0])
    if width is None:
        return None
    at = [a % rank for a in axes].index(rank - 1)
    start = ctx.fold(node.input[1]).ints()[at]
    end = ctx.fold(node.input[2]).ints()[at]
    step = ctx.fold(node.input[4]).ints()[at] if _has(node, 4) else 1
    try:
        return len(onnx_slice_indices(width, start, end, step))
    except NotRope:  # step 0: not a valid Slice
        return None


#: An end at least this large means "to the end" (torch writes INT64_MAX for ``t[a:]``).
_TO_THE_END = 2**63 - 1


def _bounds(ctx: DimsContext, node: NodeProto, position: int, attribute: str) -> list[Dim] | None:
    if _has(node, position):
        return list(ctx.fold(node.input[position]).values)
    listed = attr_ints(node, attribute)
    return None if listed is None else list(listed)


def _sliced_dim(size: Dim | None, start: Dim, end: Dim, step: Dim) -> Dim | None:
    """The length of ``t[start:end:step]`` on an axis of ``size``, where the graph shows it.

    Static everything: counted.  ``[0:s]`` with ``s`` a size symbol: ``Min(size, s)`` on a static
    axis (run-time sliced caches), ``size`` itself when ``s`` is that very dim.  ``[0:INT64_MAX]``:
    the whole axis.  Any other start or step, or an end of opaque arithmetic: not known.
    """
    if not (isinstance(start, int) and isinstance(step, int)):
        return None
    if isinstance(size, int) and isinstance(end, int):
        try:
            return len(onnx_slice_indices(size, start, end, step))
        except NotRope:  # step 0: not a valid Slice
            return None
    if start != 0 or step != 1 or size is None:
        return None
    if end == size or (isinstance(end, int) and end >= _TO_THE_END):
        return size
    if isinstance(size, int) and is_size_symbol(end):
        return min_dim(size, end)
    return None


def _slice_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """Every axis the Slice does not cut keeps its dim; a cut one is what :func:`_sliced_dim` shows."""
    data = ctx.dims_of(node.input[0])
    starts, ends = _bounds(ctx, node, 1, "starts"), _bounds(ctx, node, 2, "ends")
    if data is None or starts is None or ends is None:
        return None
    axes = static_ints(ctx, node, 3, "axes") if _has(node, 3) or attr_ints(node, "axes") else None
    axes = list(range(len(starts))) if axes is None else axes
    steps = list(ctx.fold(node.input[4]).values) if _has(node, 4) else [1] * len(starts)
    rank = len(data)
    if not len(starts) == len(ends) == len(axes) == len(steps) or any(not -rank <= a < rank for a in axes):
        return None
    if len({a % rank for a in axes}) != len(axes):
        return None
    out: SourceDims = list(data)
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        out[axis % rank] = _sliced_dim(data[axis % rank], start, end, step)
    return out


def _fold_slice(
    index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
) -> tuple[list[Dim], bool, frozenset[int]]:
    data = arg(0)
    starts, ends = arg(1).ints(), arg(2).ints()
    axes = arg(3).ints() if _has(node, 3) else [0]
    steps = arg(4).ints() if _has(node, 4) else [1]
    if axes not in ([0], [-1]) or steps != [1] or len(starts) != 1 or len(ends) != 1:
        raise NotStatic(f"Slice node '{node.name}' on a shape is not a plain 1-D slice")
    used = data.nodes | arg(1).nodes | arg(2).nodes
    return list(data.values[slice(starts[0], ends[0])]), False, used


# ---------------------------------------------------------------- Split
def _split(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    rank = t.rank(node.input[0])
    pos = grid_axis(attr_int(node, "axis", 0) or 0, rank, k, node)
    value = t.expr(node.input[0], k)
    dim = value.grid.shape[pos]
    extra: frozenset[int] = frozenset()
    split_attr = attr_ints(node, "split")
    if _has(node, 1):
        sizes, extra = t.ints(node, 1)
    elif split_attr is not None:
        sizes = split_attr
    else:
        parts = len(node.output)
        chunk = -(-dim // parts)  # opset 18 num_outputs: ceil-sized chunks, the last one smaller
        sizes = [min(chunk, dim - i * chunk) for i in range(parts)]
    if sum(sizes) != dim or len(sizes) != len(node.output):
        raise NotRope(f"Split node '{node.name}' sizes {sizes} do not cover {dim} channels")
    which = list(node.output).index(out)
    offset = sum(sizes[:which])
    grid = value.grid.take(list(range(offset, offset + sizes[which])), axis=pos)
    return value.with_grid(grid, extra)


def _split_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """The split axis gets its static part size (when the sizes are listed); the others stay."""
    data = ctx.dims_of(node.input[0])
    if data is None or not data:
        return None
    axis = (attr_int(node, "axis", 0) or 0) % len(data)
    sizes = static_ints(ctx, node, 1, "split")
    out: SourceDims = list(data)
    which = list(node.output).index(name)
    out[axis] = sizes[which] if sizes is not None and len(sizes) == len(node.output) else None
    return out


def _fold_split(
    index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
) -> tuple[list[Dim], bool, frozenset[int]]:
    """A 1-D shape value split into listed parts (ONNX Runtime rewrites Gathers of a shape so): the
    entries of the one output being folded (the only one the folder sees named)."""
    data = arg(0)
    sizes = arg(1).ints() if _has(node, 1) else attr_ints(node, "split")
    if data.scalar or attr_int(node, "axis", 0) not in (0, -1) or sizes is None:
        raise NotStatic(f"Split node '{node.name}' on a shape value has no listed sizes")
    if len(sizes) != len(node.output) or sum(sizes) != len(data.values) or min(sizes) < 0:
        raise NotStatic(f"Split node '{node.name}' sizes {sizes} do not cover {len(data.values)} entries")
    which = next(k for k, out in enumerate(node.output) if out)
    start = sum(sizes[:which])
    used = data.nodes | (arg(1).nodes if _has(node, 1) else frozenset())
    return list(data.values[start : start + sizes[which]]), False, used


# ---------------------------------------------------------------- Gather
def _gather(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    indices = t.index.constant(node.input[1])
    if indices is None or not np.issubdtype(indices.dtype, np.integer):
        raise NotRope(f"Gather node '{node.name}' has data-dependent indices")
    k_in = k + 1 - indices.ndim
    if k_in < 1:
        raise NotRope(f"Gather node '{node.name}' leaves no channel axis")
    pos = grid_axis(attr_int(node, "axis", 0) or 0, t.rank(node.input[0]), k_in, node)
    value = t.expr(node.input[0], k_in)
    dim = value.grid.shape[pos]
    if np.any(indices >= dim) or np.any(indices < -dim):
        raise NotRope(f"Gather node '{node.name}' indexes past {dim} channels")
    grid = value.grid.take(np.where(indices < 0, indices + dim, indices), axis=pos)
    producer = t.index.producer.get(node.input[1])
    return value.with_grid(grid, frozenset() if producer is None else frozenset({producer}))


def _gather_rank(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    data, indices = ctx.rank_of(node.input[0]), ctx.rank_of(node.input[1])
    return None if data is None or indices is None else data - 1 + indices


def _gather_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """The gathered axis is replaced by the indices' dims."""
    data, indices = ctx.dims_of(node.input[0]), ctx.dims_of(node.input[1])
    if data is None or indices is None or not data:
        return None
    axis = attr_int(node, "axis", 0) or 0
    if not -len(data) <= axis < len(data):
        return None
    axis %= len(data)
    return [*data[:axis], *indices, *data[axis + 1 :]]


def _unranked_shape_entries(
    index: GraphIndex, node: NodeProto, idx: IntValue
) -> tuple[list[Dim], frozenset[int]] | None:
    """``Shape(t)[i]`` where the rank of t is unknown (an upstream op inference cannot type, such as
    com.microsoft's): still one dim of t, a symbol of its own.  None when it is not that case."""
    shape_id = index.producer.get(node.input[0])
    shape = None if shape_id is None else index.nodes[shape_id]
    if shape_id is None or shape is None or shape.op_type != "Shape" or not is_default_domain(shape.domain):
        return None
    if attr_int(shape, "end") is not None or attr_int(shape, "start", 0) != 0 or index.dims(shape.input[0]):
        return None
    return [f"dim:{shape.input[0]}:{i}" for i in idx.ints()], frozenset({shape_id})


def _fold_gather(
    index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
) -> tuple[list[Dim], bool, frozenset[int]]:
    try:
        data = arg(0)
    except NotStatic:
        idx = arg(1)
        if attr_int(node, "axis", 0) != 0 or not all(i >= 0 for i in idx.ints()):
            raise
        entries = _unranked_shape_entries(index, node, idx)
        if entries is None:
            raise
        return entries[0], idx.scalar, entries[1] | idx.nodes
    idx = arg(1)
    if attr_int(node, "axis", 0) != 0 or data.scalar:
        raise NotStatic(f"Gather node '{node.name}' is not a 1-D index")
    n = len(data.values)
    wanted = idx.ints()
    if any(not -n <= i < n for i in wanted):
        raise NotStatic(f"Gather node '{node.name}' reads index {wanted} of a value of length {n}")
    picked = [data.values[i + n if i < 0 else i] for i in wanted]
    return picked, idx.scalar, data.nodes | idx.nodes


RULES = (
    OpRule(
        "Slice",
        trace=_slice,
        rank=same_rank,
        width=_slice_width,
        fold=_fold_slice,
        dims=_slice_dims,
        roles=TABLE,
        channel_inputs=1,
    ),
    OpRule(
        "Split",
        trace=_split,
        rank=same_rank,
        fold=_fold_split,
        dims=_split_dims,
        roles=TABLE,
        channel_inputs=1,
    ),
    OpRule(
        "Gather",
        trace=_gather,
        rank=_gather_rank,
        fold=_fold_gather,
        dims=_gather_dims,
        roles=TABLE | {"gather"},
        channel_inputs=1,
    ),
)
