"""Concat: joins channel grids (the ``cat(-x2, x1)`` of rotate_half, partial rotary's pass-through).

A site may end in a Concat (partial rotary: the rotated part joined with the untouched channels).
On integers it joins shape vectors (``[*x.shape[:-1], -1, 2]``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.grid import grid_axis
from rope_onnx.fusion.ops.base import DimsContext, OpRule, ShapeContext, TraceContext, Value
from rope_onnx.fusion.ops.common import TABLE, same_rank
from rope_onnx.fusion.ops.dimnames import SourceDims
from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.folding import IntValue
from rope_onnx.graph.index import Dim, GraphIndex


def _concat(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    axis = attr_int(node, "axis")
    if axis is None:
        raise NotRope(f"Concat node '{node.name}' has no axis")
    pos = grid_axis(axis, t.rank(node.input[0]), k, node)
    parts = [t.expr(name, k) for name in node.input]
    if len({p.grid.shape[:pos] + p.grid.shape[pos + 1 :] for p in parts}) > 1:
        raise NotRope(f"Concat node '{node.name}' joins channel grids of different shapes")
    grid = np.concatenate([p.grid for p in parts], axis=pos)
    return Expr(grid, frozenset().union(*(p.nodes for p in parts)))


def _concat_width(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """Joined on the last axis: the sum of the parts' widths; on another axis: the first part's."""
    rank = ctx.rank_of(name)
    axis = attr_int(node, "axis")
    if rank is None or axis is None:
        return None
    if axis % rank != rank - 1:
        return ctx.width_of(node.input[0])
    parts = [ctx.width_of(i) for i in node.input if i]
    return None if None in parts else sum(p for p in parts if p is not None)


def _concat_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """The joined axis: the sum of static parts; every other axis: what any part proves (Concat
    runs only when the parts agree there)."""
    parts = [ctx.dims_of(i) for i in node.input if i]
    axis = attr_int(node, "axis")
    if not parts or axis is None or any(p is None for p in parts) or len({len(p or ()) for p in parts}) != 1:
        return None
    rank = len(parts[0] or ())
    if not -rank <= axis < rank:
        return None
    out: SourceDims = []
    for k in range(rank):
        column = [p[k] for p in parts if p is not None]
        if k == axis % rank:
            static = [c for c in column if isinstance(c, int)]
            out.append(sum(static) if len(static) == len(column) else None)
        else:
            known = [c for c in column if c is not None]
            out.append(next((c for c in known if isinstance(c, int)), known[0] if known else None))
    return out


def _fold_concat(
    index: GraphIndex, node: NodeProto, node_id: int, arg: Callable[[int], IntValue]
) -> tuple[list[Dim], bool, frozenset[int]]:
    values: list[Dim] = []
    used: frozenset[int] = frozenset()
    for i in range(len(node.input)):
        part = arg(i)
        values.extend(part.values)
        used |= part.nodes
    return values, False, used


RULES = (
    OpRule(
        "Concat",
        trace=_concat,
        rank=same_rank,
        width=_concat_width,
        fold=_fold_concat,
        dims=_concat_dims,
        anchor=True,
        roles=TABLE,
    ),
)
