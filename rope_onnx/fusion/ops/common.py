"""Rank and width rules several op families share (one definition each)."""

from __future__ import annotations

from onnx import NodeProto

from rope_onnx.fusion.ops.base import DimsContext, ShapeContext
from rope_onnx.fusion.ops.dimnames import SourceDims, broadcast_dims
from rope_onnx.graph.attributes import attr_ints

#: Look-alike roles (see ``OpRule.roles``) shared by many rules.
TABLE = frozenset({"table"})


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


def same_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """Output 0 has the shape of input 0 (unary element-wise ops, Cast, normalisations)."""
    if name != node.output[0] or not node.input:
        return None
    return ctx.dims_of(node.input[0])


def broadcast_dims_rule(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """Element-wise ops on several inputs: the NumPy broadcast of their shapes."""
    shapes = [ctx.dims_of(i) for i in node.input if i]
    if not shapes or any(s is None for s in shapes):
        return None
    out: SourceDims = []
    for shape in shapes:
        out = broadcast_dims(out, shape or [])
    return out


def static_ints(ctx: DimsContext, node: NodeProto, position: int, attribute: str) -> list[int] | None:
    """A static int list from input ``position`` (folded) or, for old opsets, an attribute; None when
    it is computed at run time or absent.  May raise NotStatic."""
    if len(node.input) > position and node.input[position]:
        return ctx.fold(node.input[position]).ints()
    return attr_ints(node, attribute)
