"""Transpose: inside a site only the one identity ONNX Runtime's transpose optimizer creates; for
ranks and widths, a permutation that keeps the last axis last keeps the channel width."""

from __future__ import annotations

from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.ops.base import DimsContext, OpRule, ShapeContext, TraceContext, Value
from rope_onnx.fusion.ops.common import TABLE, same_rank
from rope_onnx.fusion.ops.dimnames import SourceDims
from rope_onnx.fusion.ops.slicing import _slice
from rope_onnx.graph.attributes import attr_ints
from rope_onnx.graph.conventions import is_default_domain


def _transpose(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    """``Transpose(Slice(v))`` with the last axis kept last and cut only there is ``Slice(T)`` of
    ``T = Transpose(v)`` (same perm), when the graph has that T: ONNX Runtime's transpose optimizer
    moves a partial-rotary pass-through Slice before the Transpose that makes x.  Anything else is
    not followed (a Transpose reorders the leading axes the tables broadcast over)."""
    perm = attr_ints(node, "perm")
    rank = t.rank(node.input[0])
    source_id = t.index.producer.get(node.input[0])
    if perm is None or perm[-1] != rank - 1 or source_id is None:
        raise NotRope(f"Transpose node '{node.name}' moves the channel axis or its perm is implicit")
    source = t.index.nodes[source_id]
    if source.op_type != "Slice" or not is_default_domain(source.domain) or len(source.input) < 4:
        raise NotRope(f"Transpose node '{node.name}' reorders the leading axes")
    axes, _ = t.ints(source, 3, "axes")
    if any(a % rank != rank - 1 for a in axes):
        raise NotRope(f"Transpose node '{node.name}': the Slice before it cuts a leading axis")
    for c in t.index.consumers.get(source.input[0], ()):
        twin = t.index.nodes[c]
        if twin.op_type == "Transpose" and attr_ints(twin, "perm") == perm and twin is not node:
            moved = NodeProto()
            moved.CopyFrom(source)
            moved.input[0] = twin.output[0]
            value = _slice(t, moved, out, k)
            t.aliases.add(source.input[0])  # read only as Transpose(v) = twin: no input of its own
            mine = frozenset({source_id})  # the Slice is part of the site (the tracer adds the Transpose)
            return value.with_grid(value.grid, mine) if isinstance(value, Expr) else value
    raise NotRope(f"Transpose node '{node.name}' reorders the leading axes")


def _transpose_width(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """The width of the input when the perm keeps the last axis last (an implicit perm reverses)."""
    perm = attr_ints(node, "perm")
    rank = ctx.rank_of(name)
    if perm is None or rank is None or perm[-1] % rank != rank - 1:
        return None
    return ctx.width_of(node.input[0])


def _transpose_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """The input's dims in ``perm`` order (no perm: reversed)."""
    data = ctx.dims_of(node.input[0])
    if data is None:
        return None
    perm = attr_ints(node, "perm")
    order = list(perm) if perm else list(range(len(data) - 1, -1, -1))
    return [data[p] for p in order] if sorted(order) == list(range(len(data))) else None


RULES = (
    OpRule(
        "Transpose",
        trace=_transpose,
        rank=same_rank,
        width=_transpose_width,
        dims=_transpose_dims,
        roles=TABLE,
    ),
)
