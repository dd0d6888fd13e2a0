"""Rank and width rules several op families share (one definition each)."""

from __future__ import annotations

from onnx import NodeProto

from rope_onnx.fusion.ops.base import ShapeContext


def same_rank(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """The output has the rank of the first input (Concat, Slice, Split, Tile, Transpose, …)."""
    return ctx.rank_of(node.input[0])


def broadcast_rank(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """Element-wise ops: the output has the largest rank of their (broadcast) inputs."""
    ranks = [ctx.rank_of(i) for i in node.input if i]
    known = [r for r in ranks if r is not None]
    return max(known) if known and len(known) == len(ranks) else None


def same_width(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """Unary element-wise ops keep the last dim."""
    return ctx.width_of(node.input[0])


def broadcast_width(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """Binary element-wise ops: the one width other than 1 (a scalar constant counts as 1)."""
    widths: list[int] = []
    for i in node.input:
        constant = ctx.index.constant(i)
        width = 1 if constant is not None and constant.size == 1 else ctx.width_of(i)
        if width is None:
            return None
        widths.append(width)
    if len({w for w in widths if w != 1}) > 1:
        return None
    return max(widths)
