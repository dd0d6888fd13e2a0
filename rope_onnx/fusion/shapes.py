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

from onnx import NodeProto

from rope_onnx.fusion.ops.base import DimsContext, OpRule, RankOf, ShapeContext, WidthOf
from rope_onnx.fusion.ops.registry import fold_ints, rule_for
from rope_onnx.graph.folding import DimsHint, IntValue, NotStatic
from rope_onnx.graph.index import Dim, GraphIndex

__all__ = ["KeptDims", "infer_rank", "infer_width", "kept_dims"]


def _context(index: GraphIndex, rank_of: RankOf, width_of: WidthOf) -> ShapeContext:
    def fold(name: str, hint: DimsHint | None = None) -> IntValue:
        return fold_ints(index, name, hint)

    return ShapeContext(index, rank_of, width_of, fold)


def _producer_rule(index: GraphIndex, name: str) -> tuple[NodeProto, OpRule] | None:
    """The node producing ``name`` and its op's rule, or None (a graph input, an unknown op)."""
    node_id = index.producer.get(name)
    if node_id is None:
        return None
    node = index.nodes[node_id]
    rule = rule_for(node.op_type, node.domain)
    return None if rule is None else (node, rule)


def infer_rank(index: GraphIndex, name: str, rank_of: RankOf) -> int | None:
    """The rank of ``name`` from its producer's rule, or None; ``rank_of`` answers for inputs."""
    found = _producer_rule(index, name)
    if found is None or found[1].rank is None:
        return None
    try:
        return found[1].rank(_context(index, rank_of, lambda _: None), found[0], name)
    except NotStatic:
        return None


def infer_width(index: GraphIndex, name: str, width_of: WidthOf, rank_of: RankOf) -> int | None:
    """The static last dim of ``name``: inferred, else by its producer's rule, else None."""
    dims = index.dims(name)
    if dims and isinstance(dims[-1], int):
        return dims[-1]
    found = _producer_rule(index, name)
    if found is None or found[1].width is None:
        return None
    try:
        return found[1].width(_context(index, rank_of, width_of), found[0], name)
    except NotStatic:
        return None


def kept_dims(index: GraphIndex, name: str, dims: list[Dim], rank_of: RankOf, width_of: WidthOf) -> list[Dim]:
    """``dims`` of ``name`` with the symbols its producer's ``dims`` rule names better, from its
    inputs' inferred dims (a Slice with a run-time bound keeps every axis it does not cut)."""
    found = _producer_rule(index, name)
    if found is None or found[1].dims is None or all(isinstance(d, int) for d in dims):
        return dims

    def fold(tensor: str) -> IntValue:
        return fold_ints(index, tensor)

    def dims_of(tensor: str) -> list[Dim | None] | None:
        known = index.dims(tensor)
        return None if known is None else list(known)

    try:
        kept = found[1].dims(DimsContext(index, dims_of, fold), found[0], name)
    except NotStatic:
        return dims
    if kept is None or len(kept) != len(dims):
        return dims
    return [d if isinstance(d, int) or k is None else k for d, k in zip(dims, kept, strict=True)]


class KeptDims:
    """:func:`kept_dims`, remembered per tensor for a whole pass (the tracer asks it of each cos/sin
    table once per site, and of every tensor each ``Shape`` read folds).  It reads the graph only:
    the same tensor asked with the same dims gets the same answer (the dims are compared, since a
    rank proven later changes the symbols a rank-only tensor is asked with)."""

    def __init__(self, index: GraphIndex, rank_of: RankOf, width_of: WidthOf) -> None:
        self.index, self.rank_of, self.width_of = index, rank_of, width_of
        self._kept: dict[str, tuple[list[Dim], list[Dim]]] = {}  # tensor -> (dims asked, kept_dims)

    def __call__(self, name: str, dims: list[Dim]) -> list[Dim]:
        """``kept_dims(index, name, dims, …)`` as a fresh list (callers may change it)."""
        found = self._kept.get(name)
        if found is None or found[0] != dims:
            kept = kept_dims(self.index, name, list(dims), self.rank_of, self.width_of)
            found = self._kept[name] = (list(dims), kept)
        return list(found[1])
