"""Cast inside a site: the same type is an identity; an exact widening is followed only where the site
ends in one rounding back (ONNX Runtime's ``InsertedPrecisionFreeCast_*`` around fp16 math on CPU).

A narrowing Cast inside the math, or a widening of a value already computed (rounded) in the narrower
type, is not RoPECustomer's "float32 math, one rounding" and is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope, Scalar
from rope_onnx.fusion.ops.handlers import WIDENING, Value, _identity, _me
from rope_onnx.graph.index import attr

if TYPE_CHECKING:
    from rope_onnx.fusion.trace import Tracer


def _moves_channels(value: Expr) -> bool:
    """Each channel is one input channel, maybe negated: data movement, exact in any precision."""
    return all(
        len(poly) == 1 and all(len(m) == 1 and abs(c) == 1.0 for m, c in poly.items())
        for poly in value.grid.flat
    )


def cast_handler(t: Tracer, node: NodeProto, node_id: int, out: str, k: int) -> Value:
    """Same type: identity.  Widening (fp16/bf16 -> fp32) of moved input channels: exact, so the
    site's math runs in fp32 on the inputs' own values (ORT's InsertedPrecisionFreeCast).  A widening
    of a computed value (rounded before it) or any narrowing inside the math is refused."""
    source, to = t.index.elem_type(node.input[0]), attr(node, "to")
    if source and to == source:
        return _identity(t, node, node_id, out, k)
    if (source, to) in WIDENING and t.widen:
        value = t.eval(node.input[0], k)
        if isinstance(value, Scalar):
            return Scalar(value.value, value.nodes | _me(node_id))
        if _moves_channels(value):
            return value.with_grid(value.grid, _me(node_id))
        raise NotRope(f"Cast node '{node.name}' widens a value computed (and rounded) in the narrower type")
    raise NotRope(f"Cast node '{node.name}' changes the element type")
