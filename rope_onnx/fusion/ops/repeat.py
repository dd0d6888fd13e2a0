"""Tile and Expand that repeat only along channel axes (``repeat_interleave`` exports as one).

GPT-J-style tables repeat each frequency twice on the channel axis; repeating a leading axis
(positions, heads, batch) would change what the table means, so it ends the candidate.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import NotRope
from rope_onnx.fusion.ops.base import DimsContext, OpRule, ShapeContext, TraceContext, Value
from rope_onnx.fusion.ops.common import TABLE, same_rank
from rope_onnx.fusion.ops.dimnames import SourceDims, broadcast_dims


def _tile(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    rank = t.rank(node.input[0])
    values, extra = t.ints(node, 1)
    lead, grid_reps = values[: rank - k], values[rank - k :]
    if len(values) != rank or any(r != 1 for r in lead):
        raise NotRope(f"Tile node '{node.name}' repeats a leading axis")
    value = t.expr(node.input[0], k)
    return value.with_grid(np.tile(value.grid, grid_reps), extra)


def _expand(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    rank = t.rank(node.input[0])
    values, extra = t.ints(node, 1)
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
    return value.with_grid(np.array(grid), extra)


def _expand_rank(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    base = ctx.rank_of(node.input[0])
    return None if base is None else max(base, len(ctx.fold(node.input[1]).values))


def _tile_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """A repeat of 1 keeps the dim; static dims and repeats multiply; anything else is not known."""
    data, repeats = ctx.dims_of(node.input[0]), list(ctx.fold(node.input[1]).values)
    if data is None or len(repeats) != len(data):
        return None
    return [
        d if r == 1 else d * r if isinstance(d, int) and isinstance(r, int) else None
        for d, r in zip(data, repeats, strict=True)
    ]


def _expand_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """The broadcast of the input's dims and the target shape (folded, Shape reads included)."""
    data = ctx.dims_of(node.input[0])
    return None if data is None else broadcast_dims(data, list(ctx.fold(node.input[1]).values))


RULES = (
    OpRule("Tile", trace=_tile, rank=same_rank, dims=_tile_dims, roles=TABLE, channel_inputs=1),
    OpRule("Expand", trace=_expand, rank=_expand_rank, dims=_expand_dims, roles=TABLE, channel_inputs=1),
)
