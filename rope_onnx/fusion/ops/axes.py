"""Squeeze and Unsqueeze: add or drop size-1 axes inside the channel grid.

Exporters wrap pair layouts in them (``stack`` → Unsqueeze + Concat, ``x[..., 0]`` → Gather or
Slice + Squeeze).  Adding a leading axis ends the candidate.  Axes come from the second input
(opset 13+) or the ``axes`` attribute (older opsets).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import NotRope
from rope_onnx.fusion.grid import grid_axis, squeeze_grid
from rope_onnx.fusion.ops.base import DimsContext, OpRule, ShapeContext, TraceContext, Value
from rope_onnx.fusion.ops.common import TABLE, static_ints
from rope_onnx.fusion.ops.dimnames import SourceDims
from rope_onnx.graph.attributes import attr_ints
from rope_onnx.graph.folding import IntValue, NotStatic
from rope_onnx.graph.index import Dim, GraphIndex


def _axes(t: TraceContext, node: NodeProto) -> tuple[list[int], frozenset[int]]:
    if len(node.input) > 1 and node.input[1]:
        return t.ints(node, 1)
    axes = attr_ints(node, "axes")
    if axes is None:
        raise NotRope(f"{node.op_type} node '{node.name}' has no explicit axes")
    return axes, frozenset()


def _static_axes(ctx: ShapeContext, node: NodeProto) -> list[int] | None:
    """Axes for rank and width rules: the folded input (opset 13+) or the attribute."""
    return ctx.fold(node.input[1]).ints() if len(node.input) > 1 else attr_ints(node, "axes")


def _squeeze(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    axes, extra = _axes(t, node)
    value = squeeze_grid(t, node.input[0], axes, k, node)
    return value.with_grid(value.grid, extra)


def _unsqueeze(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    axes, extra = _axes(t, node)
    rank_out = t.rank(node.input[0]) + len(axes)
    k_in = k - len(axes)
    if k_in < 1:
        raise NotRope(f"Unsqueeze node '{node.name}' adds a leading axis")
    positions = tuple(sorted(grid_axis(a, rank_out, k, node) for a in axes))
    value = t.expr(node.input[0], k_in)
    return value.with_grid(np.expand_dims(value.grid, positions), extra)


def _rank(grows: bool) -> Callable[[ShapeContext, NodeProto, str], int | None]:
    def rank(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
        axes, base = _static_axes(ctx, node), ctx.rank_of(node.input[0])
        if base is None or axes is None:
            return None
        return base + len(axes) if grows else base - len(axes)

    return rank


def _width(grows: bool) -> Callable[[ShapeContext, NodeProto, str], int | None]:
    def width(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
        axes = _static_axes(ctx, node)
        rank = ctx.rank_of(name if grows else node.input[0])
        if axes is None or rank is None or any(a % rank == rank - 1 for a in axes):
            return None  # unknown, or it moves the last axis
        return ctx.width_of(node.input[0])

    return width


def _unsqueeze_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    data, axes = ctx.dims_of(node.input[0]), static_ints(ctx, node, 1, "axes")
    if data is None or axes is None:
        return None
    rank = len(data) + len(axes)
    if any(not -rank <= a < rank for a in axes) or len({a % rank for a in axes}) != len(axes):
        return None
    out: SourceDims = list(data)
    for axis in sorted(a % rank for a in axes):
        out.insert(axis, 1)
    return out


def _squeeze_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """Drops the listed axes (each runs only with size 1); without axes, only static 1s are known."""
    data = ctx.dims_of(node.input[0])
    if data is None:
        return None
    axes = static_ints(ctx, node, 1, "axes")
    if axes is None:
        return None if any(not isinstance(d, int) for d in data) else [d for d in data if d != 1]
    rank = len(data)
    if any(not -rank <= a < rank for a in axes):
        return None
    dropped = {a % rank for a in axes}
    return [d for k, d in enumerate(data) if k not in dropped]


def _fold_unsqueeze(
    index: GraphIndex, node: NodeProto, node_id: int, arg: Callable[[int], IntValue]
) -> tuple[list[Dim], bool, frozenset[int]]:
    data = arg(0)
    if not data.scalar:
        raise NotStatic(f"Unsqueeze node '{node.name}' on a 1-D shape value")
    return list(data.values), False, data.nodes


def _fold_squeeze(
    index: GraphIndex, node: NodeProto, node_id: int, arg: Callable[[int], IntValue]
) -> tuple[list[Dim], bool, frozenset[int]]:
    data = arg(0)
    if len(data.values) != 1:
        raise NotStatic(f"Squeeze node '{node.name}' on a shape value of length {len(data.values)}")
    return list(data.values), True, data.nodes


RULES = (
    OpRule(
        "Squeeze",
        trace=_squeeze,
        rank=_rank(False),
        width=_width(False),
        fold=_fold_squeeze,
        dims=_squeeze_dims,
        roles=TABLE,
        channel_inputs=1,
    ),
    OpRule(
        "Unsqueeze",
        trace=_unsqueeze,
        rank=_rank(True),
        width=_width(True),
        fold=_fold_unsqueeze,
        dims=_unsqueeze_dims,
        roles=TABLE,
        channel_inputs=1,
    ),
)
