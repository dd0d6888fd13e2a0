"""Ranks and channel widths where ONNX shape inference gave up.

Shape inference stops at the first node it cannot type — a TorchScript ``If`` whose branches
declare different ranks, say — and every tensor after it has no shape.  The proof needs ranks
(to tell channel axes from leading ones), not sizes, and ranks follow from simple rules per op
(the ``rank`` and ``width`` members of :mod:`rope_onnx.fusion.ops` rules).  :func:`infer_rank`
applies them backwards on demand, memoised by the caller; :func:`infer_width` does the same for
the last dim of a tensor that becomes a site input (a cos table computed in-graph by
stack+flatten, say), which the proof must know statically.
"""

from __future__ import annotations

from rope_onnx.fusion.ops.base import RankOf, ShapeContext, WidthOf
from rope_onnx.fusion.ops.registry import fold_ints, rule_for
from rope_onnx.graph.folding import NotStatic
from rope_onnx.graph.index import GraphIndex

__all__ = ["infer_rank", "infer_width"]


def _context(index: GraphIndex, rank_of: RankOf, width_of: WidthOf) -> ShapeContext:
    return ShapeContext(index, rank_of, width_of, lambda name: fold_ints(index, name))


def infer_rank(index: GraphIndex, name: str, rank_of: RankOf) -> int | None:
    """The rank of ``name`` from its producer's rule, or None; ``rank_of`` answers for inputs."""
    node_id = index.producer.get(name)
    if node_id is None:
        return None
    node = index.nodes[node_id]
    rule = rule_for(node.op_type, node.domain)
    if rule is None or rule.rank is None:
        return None
    try:
        return rule.rank(_context(index, rank_of, lambda _: None), node, name)
    except NotStatic:
        return None


def infer_width(index: GraphIndex, name: str, width_of: WidthOf, rank_of: RankOf) -> int | None:
    """The static last dim of ``name``: inferred, else by its producer's rule, else None."""
    dims = index.dims(name)
    if dims and isinstance(dims[-1], int):
        return dims[-1]
    node_id = index.producer.get(name)
    if node_id is None:
        return None
    node = index.nodes[node_id]
    rule = rule_for(node.op_type, node.domain)
    if rule is None or rule.width is None:
        return None
    try:
        return rule.width(_context(index, rank_of, width_of), node, name)
    except NotStatic:
        return None
