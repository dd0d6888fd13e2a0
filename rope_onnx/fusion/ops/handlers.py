"""What each op does to the channel grid: one small handler per op type.

A handler receives the node producing the wanted tensor and ``k``, the number of trailing axes the
caller treats as channels, and returns the tensor as an :class:`~rope_onnx.fusion.channels.Expr` (or a
:class:`~rope_onnx.fusion.channels.Scalar`).  It raises ``NotRope`` with a precise reason for anything it
cannot model exactly.  Leading axes (batch, heads, positions) are never touched by a handler: an
op that acts on them ends the candidate there, which is what keeps position-dependent tables as
inputs of the fused node (docs/op-contract.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope, Scalar, add, mul, scale
from rope_onnx.fusion.grid import grid_axis, onnx_slice_indices, squeeze_grid
from rope_onnx.graph.index import attr

if TYPE_CHECKING:
    from rope_onnx.fusion.trace import Tracer

Value = Expr | Scalar
Handler = Callable[["Tracer", NodeProto, int, str, int], Value]


def _me(node_id: int) -> frozenset[int]:
    return frozenset({node_id})


def _operand(t: Tracer, name: str, k: int) -> Value:
    """An element-wise operand: a scalar constant, or a tensor with at least k axes."""
    value = t.eval(name, k)  # first: evaluating may establish the rank (see branches.py)
    if isinstance(value, Expr) and t.rank(name) < k:
        raise NotRope(f"'{name}' has fewer axes than the channel grid")
    return value


def _mul(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    a, b = (_operand(t, name, k) for name in node.input)
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return Scalar(a.value * b.value, a.nodes | b.nodes | _me(node_id))
    if isinstance(a, Scalar):
        a, b = b, a
    if isinstance(b, Scalar):
        return scale(a, b.value, b.nodes | _me(node_id))
    return mul(a, b, _me(node_id))


def _add_sub(sign: float) -> Handler:
    def handler(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
        a, b = (_operand(t, name, k) for name in node.input)
        if isinstance(a, Scalar) or isinstance(b, Scalar):
            raise NotRope(f"{node.op_type} node '{node.name}' adds a constant")
        if k == 1 and _mix_of_two_inputs(t, a, b):
            with contextlib.suppress(NotRope):  # out's width unknown: let the general path say so
                return t.leaf(out)
        return add(a, b, sign, _me(node_id))

    return handler


def _mix_of_two_inputs(t: Tracer, a: Expr, b: Expr) -> bool:
    """a ± b of two different plain leaves: Tracer.eval would turn the sum into a leaf anyway.

    Shortcut for the residual stream of models whose hidden size is head-sized: building the
    sum of two hidden-wide leaves only to discard it cost milliseconds per layer.
    """
    names = t.leaf_name(a), t.leaf_name(b)
    if None in names or names[0] == names[1]:
        return False
    try:
        np.broadcast_shapes(a.grid.shape, b.grid.shape)
    except ValueError:
        return False
    return True


def _neg(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    value = t.eval(node.input[0], k)
    if isinstance(value, Scalar):
        return Scalar(-value.value, value.nodes | _me(node_id))
    return scale(value, -1.0, _me(node_id))


def _identity(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    value = t.eval(node.input[0], k)
    if isinstance(value, Scalar):
        return Scalar(value.value, value.nodes | _me(node_id))
    return value.with_grid(value.grid, _me(node_id))


def _cast(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    source = t.index.elem_type(node.input[0])
    if not source or attr(node, "to") != source:
        raise NotRope(f"Cast node '{node.name}' changes the element type")
    return _identity(t, node, node_id, out, k)


def _slice(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    rank = t.rank(node.input[0])
    value = t.expr(node.input[0], k)  # first: its channel widths help fold bounds computed from its shape
    starts, n1 = t.ints(node, 1, "starts")
    ends, n2 = t.ints(node, 2, "ends")
    axes, n3 = (
        t.ints(node, 3, "axes")
        if len(node.input) > 3 and node.input[3]
        else (list(range(len(starts))), frozenset())
    )
    steps, n4 = t.ints(node, 4) if len(node.input) > 4 and node.input[4] else ([1] * len(starts), frozenset())
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise NotRope(f"Slice node '{node.name}' has starts/ends/axes/steps of different lengths")
    positions = [grid_axis(a, rank, k, node) for a in axes]
    grid = value.grid
    for pos, start, end, step in zip(positions, starts, ends, steps, strict=True):
        grid = grid.take(onnx_slice_indices(grid.shape[pos], start, end, step), axis=pos)
    return value.with_grid(grid, n1, n2, n3, n4, _me(node_id))


def _split(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    rank = t.rank(node.input[0])
    pos = grid_axis(int(attr(node, "axis", 0)), rank, k, node)
    value = t.expr(node.input[0], k)
    dim = value.grid.shape[pos]
    extra: frozenset[int] = frozenset()
    if len(node.input) > 1 and node.input[1]:
        sizes, extra = t.ints(node, 1)
    elif attr(node, "split") is not None:
        sizes = list(attr(node, "split"))
    else:
        parts = len(node.output)
        chunk = -(-dim // parts)  # opset 18 num_outputs: ceil-sized chunks, the last one smaller
        sizes = [min(chunk, dim - i * chunk) for i in range(parts)]
    if sum(sizes) != dim or len(sizes) != len(node.output):
        raise NotRope(f"Split node '{node.name}' sizes {sizes} do not cover {dim} channels")
    which = list(node.output).index(out)
    offset = sum(sizes[:which])
    grid = value.grid.take(list(range(offset, offset + sizes[which])), axis=pos)
    return value.with_grid(grid, extra, _me(node_id))


def _concat(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    rank = t.rank(node.input[0])
    pos = grid_axis(int(attr(node, "axis")), rank, k, node)
    parts = [t.expr(name, k) for name in node.input]
    if len({p.grid.shape[:pos] + p.grid.shape[pos + 1 :] for p in parts}) > 1:
        raise NotRope(f"Concat node '{node.name}' joins channel grids of different shapes")
    grid = np.concatenate([p.grid for p in parts], axis=pos)
    return Expr(grid, frozenset().union(*(p.nodes for p in parts)) | _me(node_id))


def _gather(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    indices = t.index.constant(node.input[1])
    if indices is None or not np.issubdtype(indices.dtype, np.integer):
        raise NotRope(f"Gather node '{node.name}' has data-dependent indices")
    k_in = k + 1 - indices.ndim
    if k_in < 1:
        raise NotRope(f"Gather node '{node.name}' leaves no channel axis")
    pos = grid_axis(int(attr(node, "axis", 0)), t.rank(node.input[0]), k_in, node)
    value = t.expr(node.input[0], k_in)
    dim = value.grid.shape[pos]
    if np.any(indices >= dim) or np.any(indices < -dim):
        raise NotRope(f"Gather node '{node.name}' indexes past {dim} channels")
    grid = value.grid.take(np.where(indices < 0, indices + dim, indices), axis=pos)
    producer = t.index.producer.get(node.input[1])
    return value.with_grid(grid, frozenset() if producer is None else _me(producer), _me(node_id))


def _axes(t: Tracer, node: NodeProto) -> tuple[list[int], frozenset[int]]:
    if len(node.input) > 1 and node.input[1]:
        return t.ints(node, 1)
    if attr(node, "axes") is None:
        raise NotRope(f"{node.op_type} node '{node.name}' has no explicit axes")
    return list(attr(node, "axes")), frozenset()


def _squeeze(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    axes, extra = _axes(t, node)
    value = squeeze_grid(t, node.input[0], axes, k, node)
    return value.with_grid(value.grid, extra, _me(node_id))


def _unsqueeze(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    axes, extra = _axes(t, node)
    rank_out = t.rank(node.input[0]) + len(axes)
    k_in = k - len(axes)
    if k_in < 1:
        raise NotRope(f"Unsqueeze node '{node.name}' adds a leading axis")
    positions = tuple(sorted(grid_axis(a, rank_out, k, node) for a in axes))
    value = t.expr(node.input[0], k_in)
    return value.with_grid(np.expand_dims(value.grid, positions), extra, _me(node_id))


def _repeat(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    """Tile / Expand that repeat only along channel axes (repeat_interleave exports as one)."""
    rank = t.rank(node.input[0])
    values, extra = t.ints(node, 1)
    if node.op_type == "Tile":
        lead, grid_reps = values[: rank - k], values[rank - k :]
        if len(values) != rank or any(r != 1 for r in lead):
            raise NotRope(f"Tile node '{node.name}' repeats a leading axis")
        value = t.expr(node.input[0], k)
        return value.with_grid(np.tile(value.grid, grid_reps), extra, _me(node_id))
    dims = t.dims(node.input[0]) or []
    lead_dims = dims[rank - len(values) : rank - k]  # Expand aligns its shape to the right
    if len(values) > rank or any(
        v not in (1, d) for v, d in zip(values[: len(values) - k], lead_dims, strict=True)
    ):
        raise NotRope(f"Expand node '{node.name}' may grow a leading axis")
    value = t.expr(node.input[0], k)
    target = tuple(values[len(values) - k :]) if len(values) >= k else ()
    try:
        grid = np.broadcast_to(value.grid, np.broadcast_shapes(value.grid.shape, target))
    except ValueError as why:
        raise NotRope(f"Expand node '{node.name}': {why}") from why
    return value.with_grid(np.array(grid), extra, _me(node_id))


from rope_onnx.fusion.ops.branches import if_handler  # noqa: E402  (kept apart: static If needs its own explanation)
from rope_onnx.fusion.ops.reshape import reshape_handler  # noqa: E402  (kept apart: the proof of leading dims is long)

HANDLERS: dict[str, Handler] = {
    "Mul": _mul,
    "Add": _add_sub(1.0),
    "Sub": _add_sub(-1.0),
    "Neg": _neg,
    "Identity": _identity,
    "Cast": _cast,
    "Slice": _slice,
    "Split": _split,
    "Concat": _concat,
    "Gather": _gather,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Reshape": reshape_handler,
    "Tile": _repeat,
    "If": if_handler,
    "Expand": _repeat,
}
