"""Ranks and channel widths where ONNX shape inference gave up.

Shape inference stops at the first node it cannot type — a TorchScript ``If`` whose branches
declare different ranks, say — and every tensor after it has no shape.  The proof needs ranks
(to tell channel axes from leading ones), not sizes, and ranks follow from simple rules per op.
:func:`infer_rank` applies them backwards on demand, memoised by the caller;
:func:`infer_width` does the same for the last dim of a tensor that becomes a site input (a
cos table computed in-graph by stack+flatten, say), which the proof must know statically.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import NotRope
from rope_onnx.fusion.grid import onnx_slice_indices
from rope_onnx.graph.folding import NotStatic, int_values
from rope_onnx.graph.index import Dim, GraphIndex, attr

UNARY = frozenset({"Cast", "Identity", "Neg", "Sin", "Cos", "Sqrt", "Reciprocal", "Exp", "Abs", "Relu"})
BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Pow"})
#: Ops whose output has the rank of their broadcast inputs.
ELEMENTWISE = UNARY | BINARY | {"Where", "Equal", "Sigmoid", "Tanh", "Erf"}
SAME_RANK = frozenset({"Concat", "Slice", "Split", "Tile", "Transpose", "Softmax", "LayerNormalization"})


def _squeeze_axes(index: GraphIndex, node: NodeProto) -> list[int] | None:
    """Axes of an Unsqueeze/Squeeze: its second input (opset 13+) or its attribute."""
    return int_values(index, node.input[1]).ints() if len(node.input) > 1 else attr(node, "axes")


def _rank_hint(index: GraphIndex, rank_of: Callable[[str], int | None]) -> Callable[[str], list[Dim] | None]:
    """Shapes for folding a Reshape target: inferred dims, else one symbol per axis of a known rank
    (``Shape(t)[:-2]`` has rank(t) - 2 entries even when inference lost t's shape)."""

    def dims(name: str) -> list[Dim] | None:
        known = index.dims(name)
        if known is not None:
            return known
        rank = rank_of(name)
        return None if rank is None else [f"dim:{name}:{axis}" for axis in range(rank)]

    return dims


def infer_rank(index: GraphIndex, name: str, rank_of: Callable[[str], int | None]) -> int | None:
    """The rank of ``name`` from its producer's rule, or None; ``rank_of`` answers for inputs."""
    node_id = index.producer.get(name)
    if node_id is None:
        return None
    node = index.nodes[node_id]
    if node.domain not in ("", "ai.onnx"):
        return None
    op = node.op_type
    try:
        if op in ELEMENTWISE:
            ranks = [rank_of(i) for i in node.input if i]
            return None if None in ranks else max(ranks)
        if op in SAME_RANK:
            return rank_of(node.input[0])
        if op in ("Unsqueeze", "Squeeze"):
            axes = _squeeze_axes(index, node)
            base = rank_of(node.input[0])
            if base is None or axes is None:
                return None
            return base + len(axes) if op == "Unsqueeze" else base - len(axes)
        if op == "Reshape":
            return len(int_values(index, node.input[1], _rank_hint(index, rank_of)).values)
        if op == "Expand":
            base = rank_of(node.input[0])
            return None if base is None else max(base, len(int_values(index, node.input[1]).values))
        if op == "If":  # the branch a static condition takes, as that branch declares its output
            condition = int_values(index, node.input[0]).ints()
            branch = attr(node, "then_branch" if condition and condition[0] else "else_branch")
            out = branch.output[list(node.output).index(name)].type.tensor_type
            return len(out.shape.dim) if out.HasField("shape") else None
        if op == "Gather":
            data, indices = rank_of(node.input[0]), rank_of(node.input[1])
            return None if data is None or indices is None else data - 1 + indices
    except NotStatic:
        return None
    return None


def _reshape_width(index: GraphIndex, node: NodeProto, width_of: Callable[[str], int | None]) -> int | None:
    """Last dim of a Reshape's output: static, copied, or the -1 left after cancelling equal dims."""
    source = index.dims(node.input[0])
    target = list(int_values(index, node.input[1]).values)
    last = target[-1]
    if isinstance(last, int) and last > 0:
        return last
    if source is None:
        return None
    if last == 0:
        return width_of(node.input[0]) if len(source) == len(target) else None
    if last != -1:
        return None
    remaining: list[Dim] = list(source)
    for d in target[:-1]:
        if d in remaining:
            remaining.remove(d)
        else:
            return None
    if not all(isinstance(d, int) for d in remaining):
        return None
    return int(np.prod(remaining, dtype=np.int64))


def _slice_width(
    index: GraphIndex,
    node: NodeProto,
    width_of: Callable[[str], int | None],
    rank_of: Callable[[str], int | None],
) -> int | None:
    """Width after a Slice: unchanged unless it cuts the last axis, then counted from the bounds."""
    rank = rank_of(node.input[0])
    axes = int_values(index, node.input[3]).ints() if len(node.input) > 3 and node.input[3] else None
    if rank is None or axes is None:
        return None
    if rank - 1 not in [a % rank for a in axes]:
        return width_of(node.input[0])
    width = width_of(node.input[0])
    if width is None:
        return None
    at = [a % rank for a in axes].index(rank - 1)
    start = int_values(index, node.input[1]).ints()[at]
    end = int_values(index, node.input[2]).ints()[at]
    step = int_values(index, node.input[4]).ints()[at] if len(node.input) > 4 and node.input[4] else 1
    try:
        return len(onnx_slice_indices(width, start, end, step))
    except NotRope:  # step 0: not a valid Slice
        return None


def infer_width(
    index: GraphIndex, name: str, width_of: Callable[[str], int | None], rank_of: Callable[[str], int | None]
) -> int | None:
    """The static last dim of ``name`` by its producer's rule, or None; ``width_of`` recurses."""
    dims = index.dims(name)
    if dims and isinstance(dims[-1], int):
        return dims[-1]
    node_id = index.producer.get(name)
    if node_id is None or index.nodes[node_id].domain not in ("", "ai.onnx"):
        return None
    node = index.nodes[node_id]
    try:
        if node.op_type in UNARY:
            return width_of(node.input[0])
        if node.op_type in BINARY:
            widths = [
                1 if (c := index.constant(i)) is not None and c.size == 1 else width_of(i) for i in node.input
            ]
            if None in widths or len({w for w in widths if w != 1}) > 1:
                return None
            return max(widths)
        if node.op_type in ("Unsqueeze", "Squeeze"):
            axes = _squeeze_axes(index, node)
            rank = rank_of(name if node.op_type == "Unsqueeze" else node.input[0])
            if axes is None or rank is None or any(a % rank == rank - 1 for a in axes):
                return None  # unknown, or it moves the last axis
            return width_of(node.input[0])
        if node.op_type == "Reshape":
            return _reshape_width(index, node, width_of)
        if node.op_type == "Slice":
            return _slice_width(index, node, width_of, rank_of)
        if node.op_type == "Transpose":
            perm = attr(node, "perm")
            rank = rank_of(name)
            if not isinstance(perm, list) or rank is None or perm[-1] % rank != rank - 1:
                return None  # reversed by default, or it moves another axis last
            return width_of(node.input[0])
        if node.op_type == "Concat":
            rank = rank_of(name)
            axis = attr(node, "axis")
            if rank is None or not isinstance(axis, int) or axis % rank != rank - 1:
                return width_of(node.input[0]) if rank is not None and isinstance(axis, int) else None
            parts = [width_of(i) for i in node.input if i]
            return None if None in parts else sum(p for p in parts if p is not None)
    except NotStatic:
        return None
    return None
