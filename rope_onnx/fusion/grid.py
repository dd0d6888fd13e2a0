"""Where a tensor's axes sit in the channel grid, and ONNX's Slice index rule, shared by the op rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope

if TYPE_CHECKING:
    from rope_onnx.fusion.ops.base import TraceContext


def grid_axis(axis: int, rank: int, k: int, node: NodeProto) -> int:
    """Position of ``axis`` inside the trailing-k channel grid; NotRope for a leading axis."""
    axis = axis + rank if axis < 0 else axis
    if not rank - k <= axis < rank:
        raise NotRope(f"{node.op_type} node '{node.name}' acts on axis {axis}, not on the channel axes")
    return axis - (rank - k)


def squeeze_grid(t: TraceContext, data: str, axes: list[int], k: int, node: NodeProto) -> Expr:
    """``data`` with the given axes (of size 1, inside the channel grid) removed; k is the output's."""
    rank_in = t.rank(data)
    k_in = k + len(axes)
    positions = tuple(sorted(grid_axis(a, rank_in, k_in, node) for a in axes))
    value = t.expr(data, k_in)
    if any(value.grid.shape[p] != 1 for p in positions):
        raise NotRope(f"Squeeze node '{node.name}' removes a channel axis that is not of size 1")
    return value.with_grid(value.grid.squeeze(axis=positions))


def onnx_slice_indices(dim: int, start: int, end: int, step: int) -> range:
    """The indices ONNX Slice selects on one axis (clamping rules of the spec), as a lazy range."""
    if step == 0:
        raise NotRope("Slice with step 0")
    start, end = (v + dim if v < 0 else v for v in (start, end))
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return range(start, end, step)
