"""Element-wise ops: the arithmetic of a rotation (Mul, Add, Sub, Neg), the moves that keep values
(Identity; Casts are in :mod:`.casts`), and the element-wise ops the proof only needs ranks of.

Exactness is the point of these rules: a product is one real ``Mul`` of two tensors, a sum one
real ``Add``/``Sub`` of distinct terms, and only the constants ±1 are followed
(:mod:`rope_onnx.fusion.channels` enforces it).  On integers (shapes and bounds) the same ops
fold with ONNX's integer semantics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope, Scalar
from rope_onnx.fusion.ops.base import OpRule, TraceContext, TraceRule, Value
from rope_onnx.fusion.ops.common import (
    TABLE,
    broadcast_dims_rule,
    broadcast_rank,
    broadcast_width,
    same_dims,
    same_width,
)
from rope_onnx.fusion.ops.dimnames import is_size_symbol
from rope_onnx.graph.folding import Folder, IntValue, NotStatic, opaque
from rope_onnx.graph.index import Dim, GraphIndex
from rope_onnx.graph.intmath import checked


def _operand(t: TraceContext, name: str, k: int) -> Value:
    """An element-wise operand: a scalar constant, or a tensor with at least k axes."""
    value = t.eval(name, k)  # first: evaluating may establish the rank (see branches.py)
    if isinstance(value, Expr) and t.rank(name) < k:
        raise NotRope(f"'{name}' has fewer axes than the channel grid")
    return value


def _keeps_shape(t: TraceContext, tensor: str, constant: Scalar) -> bool:
    """Multiplying by ``constant`` leaves ``tensor``'s shape as it is (no new axis, no broadcast up)."""
    if not constant.shape:
        return True
    dims = t.dims(tensor)
    if dims is None or len(constant.shape) > len(dims):
        return False
    aligned = dims[len(dims) - len(constant.shape) :]
    return all(c == 1 or c == d for c, d in zip(constant.shape, aligned, strict=True))


def _mul(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    """A product of two tensors, or a tensor scaled by a constant: a scalar, or a sign tensor of -1
    (``[1,1,1,1]``) that must not widen the tensor's shape."""
    a, b = (_operand(t, name, k) for name in node.input)
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        if a.shape or b.shape:
            raise NotRope(f"Mul node '{node.name}' multiplies two constant tensors")
        return Scalar(a.value * b.value, a.nodes | b.nodes)
    if isinstance(a, Expr) and isinstance(b, Expr):
        return t.algebra.mul(a, b, frozenset())
    scaled = 0 if isinstance(b, Scalar) else 1
    tensor, constant = (a, b) if scaled == 0 else (b, a)
    assert isinstance(tensor, Expr) and isinstance(constant, Scalar)  # exactly one side is a Scalar
    if not _keeps_shape(t, node.input[scaled], constant):
        raise NotRope(f"Mul node '{node.name}': the constant {list(constant.shape)} would change the shape")
    return t.algebra.scale(tensor, constant.value, constant.nodes)


def _mix_of_two_inputs(t: TraceContext, a: Expr, b: Expr) -> bool:
    """a ± b of two different plain leaves: the tracer would turn the sum into a leaf anyway.

    Shortcut for the residual stream of models whose hidden size is head-sized: building the
    sum of two hidden-wide leaves only to discard it cost milliseconds per layer.
    """
    names = t.leaf_name(a), t.leaf_name(b)
    if None in names or names[0] == names[1]:
        return False
    try:
        np.broadcast_shapes(a.grid.shape, b.grid.shape)
    except ValueError:
        return False
    return True


def _add_sub(sign: float) -> TraceRule:
    def trace(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
        a, b = (_operand(t, name, k) for name in node.input)
        if isinstance(a, Scalar) or isinstance(b, Scalar):
            raise NotRope(f"{node.op_type} node '{node.name}' adds a constant")
        if k == 1 and _mix_of_two_inputs(t, a, b):
            with contextlib.suppress(NotRope):  # out's width unknown: let the general path say so
                return t.leaf(out)
        return t.algebra.add(a, b, sign, frozenset())

    return trace


def _neg(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    value = t.eval(node.input[0], k)
    if isinstance(value, Scalar):
        return Scalar(-value.value, value.nodes)
    return t.algebra.scale(value, -1.0, frozenset())


def _identity(t: TraceContext, node: NodeProto, out: str, k: int) -> Value:
    return t.eval(node.input[0], k)


# ---------------------------------------------------------------- integer folding
FoldArg = Callable[[int], IntValue]


def _fold_passthrough(
    index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
) -> tuple[list[Dim], bool, frozenset[int]]:
    data = arg(0)
    return list(data.values), data.scalar, data.nodes


def _fold_arith(op: Callable[[int, int], int]) -> Folder:
    def fold(
        index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
    ) -> tuple[list[Dim], bool, frozenset[int]]:
        a, b = arg(0), arg(1)
        va, vb = list(a.values), list(b.values)
        if len(va) != len(vb):
            if len(va) == 1:
                va = va * len(vb)
            elif len(vb) == 1:
                vb = vb * len(va)
            else:
                raise NotStatic(f"{node.op_type} node '{node.name}' on mismatched lengths")
        out: list[Dim] = []
        for k, (x, y) in enumerate(zip(va, vb, strict=True)):
            if not (isinstance(x, int) and isinstance(y, int)):
                out.append(opaque(node_id, k))
                continue
            value = checked(op(x, y))
            if value is None:  # ONNX defines no value outside int64 (runtimes wrap): unknown
                raise NotStatic(
                    f"{node.op_type} node '{node.name}': {x} {node.op_type} {y} is outside int64, "
                    "so ONNX defines no value for it"
                )
            out.append(value)
        return out, a.scalar and b.scalar, a.nodes | b.nodes

    return fold


def _int_div(x: int, y: int) -> int:
    if y == 0:
        raise NotStatic("division by zero in a shape computation")
    q = abs(x) // abs(y)  # ONNX integer Div truncates toward zero
    return q if (x >= 0) == (y >= 0) else -q  # INT64_MIN // -1 leaves int64: the caller checks


def _aligned(node: NodeProto, *parts: IntValue) -> list[list[Dim]]:
    """1-D integer operands broadcast to one length (a length-1 operand repeats)."""
    length = max(len(p.values) for p in parts)
    if any(len(p.values) not in (1, length) for p in parts):
        raise NotStatic(f"{node.op_type} node '{node.name}' on mismatched lengths")
    return [list(p.values) * (length // len(p.values)) for p in parts]


def _negative(value: Dim) -> bool:
    return isinstance(value, int) and value < 0


def _fold_equal(
    index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
) -> tuple[list[Dim], bool, frozenset[int]]:
    """Equal on shape values: the same entry is equal to itself, and a size symbol (never negative)
    differs from every negative number (TorchScript's ``expand`` asks ``shape == -1``)."""
    a, b = arg(0), arg(1)
    out: list[Dim] = []
    for k, (x, y) in enumerate(zip(*_aligned(node, a, b), strict=True)):
        if x == y:
            out.append(1)
        elif (
            (isinstance(x, int) and isinstance(y, int))
            or (isinstance(x, int) and x < 0 and is_size_symbol(y))
            or (isinstance(y, int) and y < 0 and is_size_symbol(x))
        ):
            out.append(0)
        else:
            out.append(opaque(node_id, k))
    return out, a.scalar and b.scalar, a.nodes | b.nodes


def _fold_where(
    index: GraphIndex, node: NodeProto, node_id: int, arg: FoldArg
) -> tuple[list[Dim], bool, frozenset[int]]:
    """Where on shape values, with every condition entry static."""
    cond, a, b = arg(0), arg(1), arg(2)
    picks, xs, ys = _aligned(node, cond, a, b)
    if not all(isinstance(c, int) for c in picks):
        raise NotStatic(f"Where node '{node.name}' has a condition known only at run time")
    out = [x if c else y for c, x, y in zip(picks, xs, ys, strict=True)]
    return out, cond.scalar and a.scalar and b.scalar, cond.nodes | a.nodes | b.nodes


_TABLE_ROOTS = frozenset({"table_root"})
_UNARY_RANK_ONLY = ("Sin", "Cos", "Sqrt", "Reciprocal", "Exp", "Abs", "Relu")

RULES = (
    OpRule(
        "Mul",
        dims=broadcast_dims_rule,
        trace=_mul,
        rank=broadcast_rank,
        width=broadcast_width,
        fold=_fold_arith(lambda x, y: x * y),
        roles=TABLE | {"product"},
        makes_products=True,
    ),
    OpRule(
        "Add",
        dims=broadcast_dims_rule,
        trace=_add_sub(1.0),
        rank=broadcast_rank,
        width=broadcast_width,
        fold=_fold_arith(lambda x, y: x + y),
        anchor=True,
        roles=frozenset({"sum"}),
    ),
    OpRule(
        "Sub",
        dims=broadcast_dims_rule,
        trace=_add_sub(-1.0),
        rank=broadcast_rank,
        width=broadcast_width,
        fold=_fold_arith(lambda x, y: x - y),
        anchor=True,
        roles=frozenset({"sum"}),
    ),
    OpRule(
        "Div",
        rank=broadcast_rank,
        width=broadcast_width,
        fold=_fold_arith(_int_div),
        dims=broadcast_dims_rule,
    ),
    OpRule("Pow", rank=broadcast_rank, width=broadcast_width, dims=broadcast_dims_rule),
    OpRule("Neg", trace=_neg, rank=broadcast_rank, width=same_width, dims=same_dims),
    OpRule(
        "Identity",
        trace=_identity,
        rank=broadcast_rank,
        width=same_width,
        fold=_fold_passthrough,
        dims=same_dims,
        roles=TABLE | {"wrapper"},
    ),
    *(
        OpRule(
            op,
            rank=broadcast_rank,
            width=same_width,
            dims=same_dims,
            roles=_TABLE_ROOTS if op in ("Sin", "Cos") else frozenset(),
        )
        for op in _UNARY_RANK_ONLY
    ),
    OpRule("Equal", rank=broadcast_rank, fold=_fold_equal, dims=broadcast_dims_rule),
    OpRule("Where", rank=broadcast_rank, fold=_fold_where, dims=broadcast_dims_rule),
    *(OpRule(op, rank=broadcast_rank, dims=same_dims) for op in ("Sigmoid", "Tanh", "Erf")),
)
