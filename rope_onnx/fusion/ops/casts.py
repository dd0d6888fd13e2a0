"""Cast and CastLike: the same type is an identity; an exact widening is followed only where the site
ends in one rounding back (ONNX Runtime's ``InsertedPrecisionFreeCast_*`` around fp16 math on CPU).

A narrowing Cast inside the math, or a widening of a value already computed (rounded) in the narrower
type, is not RoPECustomer's "float32 math, one rounding" and is refused.  On integers (shapes and
bounds) a Cast to an integer type, and onnxscript's ``CastLike(literal, integer operand)``, keep the
small values as they are.
"""

from __future__ import annotations

from collections.abc import Callable

from onnx import NodeProto, TensorProto

from rope_onnx.fusion.channels import Expr, NotRope, Scalar
from rope_onnx.fusion.ops.base import OpRule, TraceContext, Value
from rope_onnx.fusion.ops.common import TABLE, broadcast_rank, same_dims, same_rank, same_width
from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.folding import IntValue, NotStatic, opaque
from rope_onnx.graph.index import Dim, GraphIndex
from rope_onnx.graph.intmath import INT_TYPES, cast_int

__all__ = ["RULES", "rounding_input", "widened_copy"]

#: (from, to) element types where every value of ``from`` is exactly a value of ``to``.
WIDENING = frozenset({(10, 1), (16, 1)})  # float16 -> float32, bfloat16 -> float32
#: Narrowing Casts that can end a site computed in float32: (from, to) element types.
ROUNDING = frozenset({(1, 10), (1, 16)})
_INTEGERS = (TensorProto.INT64, TensorProto.INT32)

FoldArg = Callable[[int], IntValue]


def _is_cast(node: NodeProto) -> bool:
    return node.op_type == "Cast" and is_default_domain(node.domain)


def rounding_input(index: GraphIndex, node: NodeProto) -> str | None:
    """The float32 tensor ``node`` rounds to float16/bfloat16, if it is such a Cast (the one rounding
    that may end a site computed in float32), else None."""
    if not _is_cast(node) or (index.elem_type(node.input[0]), attr_int(node, "to")) not in ROUNDING:
        return None
    return node.input[0]


def widened_copy(index: GraphIndex, leaf: str, nodes: frozenset[int]) -> str | None:
    """The float32 tensor a site (its ``nodes``) computed as an exact ``Cast(leaf, to=float32)``."""
    for c in index.consumers.get(leaf, ()):
        n = index.nodes[c]
        if c in nodes and _is_cast(n) and (index.elem_type(leaf), attr_int(n, "to")) in WIDENING:
            return n.output[0]
    return None


def _moves_channels(value: Expr) -> bool:
    """Each channel is one input channel, maybe negated: data movement, exact in any precision."""
    return all(
        len(poly) == 1 and all(len(m) == 1 and abs(c) == 1.0 for m, c in poly.items())
        for poly in value.grid.flat
    )


def _cast(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    """Same type: identity.  Widening (fp16/bf16 -> fp32) of moved input channels: exact, so the
    site's math runs in fp32 on the inputs' own values (ORT's InsertedPrecisionFreeCast).  A widening
    of a computed value (rounded before it) or any narrowing inside the math is refused."""
    source, to = t.index.elem_type(node.input[0]), attr_int(node, "to")
    if source and to == source:
        return t.eval(node.input[0], k)
    if (source, to) in WIDENING and t.widen:
        value = t.eval(node.input[0], k)
        if isinstance(value, Scalar) or _moves_channels(value):
            return value
        raise NotRope(f"Cast node '{node.name}' widens a value computed (and rounded) in the narrower type")
    raise NotRope(f"Cast node '{node.name}' changes the element type")


def _fold_cast(
    index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
) -> tuple[list[Dim], bool, frozenset[int]]:
    """int→int Casts keep the low bits (ONNX): int32 of 2**32 + 1 is 1.

    A dim symbol stays itself through a cast to a 32- or 64-bit type (no tensor has 2**31
    elements on one axis); through a narrower one it could wrap, so it becomes opaque.
    """
    to = attr_int(node, "to")
    if to is None or to not in INT_TYPES:
        raise NotStatic(f"Cast node '{node.name}' leaves the integers")
    data = arg(0)
    bits = INT_TYPES[to][0]
    values: list[Dim] = [
        cast_int(v, to) if isinstance(v, int) else (v if bits >= 32 else opaque(node_id, k))
        for k, v in enumerate(data.values)
    ]
    return values, data.scalar, data.nodes


def _fold_cast_like(
    index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
) -> tuple[list[Dim], bool, frozenset[int]]:
    """onnxscript writes literals as ``CastLike(Constant, typed operand)``: an integer cast when the
    operand is an integer tensor (a shape or bound), which leaves the small values unchanged."""
    if index.elem_type(node.input[1]) not in _INTEGERS:
        raise NotStatic(f"CastLike node '{node.name}' does not cast to an integer type")
    value = arg(0)
    return list(value.values), value.scalar, value.nodes


RULES = (
    OpRule(
        "Cast",
        trace=_cast,
        rank=broadcast_rank,
        width=same_width,
        fold=_fold_cast,
        dims=same_dims,
        roles=TABLE | {"wrapper"},
    ),
    OpRule("CastLike", rank=same_rank, width=same_width, fold=_fold_cast_like, dims=same_dims, roles=TABLE),
)
