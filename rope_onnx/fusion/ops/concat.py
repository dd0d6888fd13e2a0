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
from rope_onnx.fusion.ops.base import OpRule, TraceContext, Value
from rope_onnx.fusion.ops.common import same_rank
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


RULES = (OpRule("Concat", trace=_concat, rank=same_rank, fold=_fold_concat, anchor=True),)
