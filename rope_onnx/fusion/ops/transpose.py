"""Transpose inside a site: only the one identity ONNX Runtime's transpose optimizer creates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.ops.handlers import Value, _me, _slice
from rope_onnx.graph.index import attr

if TYPE_CHECKING:
    from rope_onnx.fusion.trace import Tracer


def transpose_handler(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    """``Transpose(Slice(v))`` with the last axis kept last and cut only there is ``Slice(T)`` of
    ``T = Transpose(v)`` (same perm), when the graph has that T: ONNX Runtime's transpose optimizer
    moves a partial-rotary pass-through Slice before the Transpose that makes x.  Anything else is
    not followed (a Transpose reorders the leading axes the tables broadcast over)."""
    perm = attr(node, "perm")
    rank = t.rank(node.input[0])
    source_id = t.index.producer.get(node.input[0])
    if not isinstance(perm, list) or perm[-1] != rank - 1 or source_id is None:
        raise NotRope(f"Transpose node '{node.name}' moves the channel axis or its perm is implicit")
    source = t.index.nodes[source_id]
    if source.op_type != "Slice" or len(source.input) < 4:
        raise NotRope(f"Transpose node '{node.name}' reorders the leading axes")
    axes, _ = t.ints(source, 3, "axes")
    if any(a % rank != rank - 1 for a in axes):
        raise NotRope(f"Transpose node '{node.name}': the Slice before it cuts a leading axis")
    for c in t.index.consumers.get(source.input[0], ()):
        twin = t.index.nodes[c]
        if twin.op_type == "Transpose" and attr(twin, "perm") == perm and c != node_id:
            moved = NodeProto()
            moved.CopyFrom(source)
            moved.input[0] = twin.output[0]
            value = _slice(t, moved, source_id, out, k)
            t.aliases.add(source.input[0])  # read only as Transpose(v) = twin: no input of its own
            return value.with_grid(value.grid, _me(node_id)) if isinstance(value, Expr) else value
    raise NotRope(f"Transpose node '{node.name}' reorders the leading axes")
