"""Ranks where ONNX shape inference gave up.

Shape inference stops at the first node it cannot type — a TorchScript ``If`` whose branches
declare different ranks, say — and every tensor after it has no shape.  The proof needs ranks
(to tell channel axes from leading ones), not sizes, and ranks follow from simple rules per op.
:func:`infer_rank` applies them backwards on demand, memoised by the caller.
"""

from __future__ import annotations

from collections.abc import Callable

from .graph_index import GraphIndex, attr
from .symbolic import NotStatic, int_values

ELEMENTWISE = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Neg",
        "Cast",
        "Identity",
        "Sin",
        "Cos",
        "Sqrt",
        "Reciprocal",
        "Where",
        "Equal",
        "Pow",
        "Relu",
        "Sigmoid",
        "Tanh",
        "Erf",
        "Exp",
        "Abs",
    }
)
SAME_RANK = frozenset({"Concat", "Slice", "Split", "Tile", "Transpose", "Softmax", "LayerNormalization"})


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
            axes = int_values(index, node.input[1]).ints() if len(node.input) > 1 else attr(node, "axes")
            base = rank_of(node.input[0])
            if base is None or axes is None:
                return None
            return base + len(axes) if op == "Unsqueeze" else base - len(axes)
        if op == "Reshape":
            return len(int_values(index, node.input[1]).values)
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
