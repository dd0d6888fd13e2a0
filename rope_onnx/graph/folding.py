"""Static evaluation of the small integer computations exporters emit for shapes and bounds.

``x[..., : x.shape[-1] // 2]`` exports as ``Shape → Gather → Div → Unsqueeze → Slice``; a reshape to
``[*x.shape[:-1], -1, 2]`` as ``Shape → Slice → Concat → Reshape``.  To prove a site we must know
those values.  :func:`int_values` folds them: static dims become ints, dynamic dims stay symbols
(``"param:batch"``, ``"dim:<tensor>:<axis>"``) that compare equal only to the same dim, and
arithmetic on a symbol gives an opaque symbol (so it can never be mistaken for something known).
Every node used is recorded, so the rewrite can delete the bound computations with the site.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from onnx import NodeProto

from rope_onnx.graph.index import Dim, GraphIndex, attr
from rope_onnx.graph.intmath import INT_TYPES, cast_int, checked


class NotStatic(Exception):
    """The value depends on data, or on an op this evaluator does not fold."""


@dataclass(frozen=True)
class IntValue:
    """A 0-D or 1-D integer tensor whose entries are ints or dim symbols."""

    values: tuple[Dim, ...]
    scalar: bool
    nodes: frozenset[int]

    def ints(self) -> list[int]:
        """All entries as ints; raises NotStatic when any is symbolic."""
        if not all(isinstance(v, int) for v in self.values):
            raise NotStatic(f"value {list(self.values)} has dynamic entries")
        return [int(v) for v in self.values]


def _opaque(node_id: int, k: int) -> str:
    return f"expr:{node_id}:{k}"


#: The shape of a tensor as the caller knows it, better than shape inference (or None).
DimsHint = Callable[[str], "list[Dim] | None"]


def int_values(index: GraphIndex, name: str, hint: DimsHint | None = None, _depth: int = 0) -> IntValue:
    """Fold tensor ``name`` to an :class:`IntValue`, or raise :class:`NotStatic` saying why.

    ``hint`` gives shapes the caller has proven (the tracer knows every channel width it computed,
    also where shape inference lost it, e.g. after a Slice with computed bounds or a static If).
    """
    if _depth > 64:
        raise NotStatic(f"'{name}' is computed by a chain too deep to fold")
    const = index.constant(name)
    if const is not None:
        if const.ndim > 1 or not np.issubdtype(const.dtype, np.integer):
            raise NotStatic(f"constant '{name}' is not a 0-D/1-D integer tensor")
        producer = index.producer.get(name)
        used = frozenset() if producer is None else frozenset({producer})
        return IntValue(tuple(int(v) for v in const.reshape(-1)), const.ndim == 0, used)
    node_id = index.producer.get(name)
    if node_id is None:
        raise NotStatic(f"'{name}' is a graph input, known only at run time")
    node = index.nodes[node_id]
    standard = node.domain in ("", "ai.onnx")

    def arg(i: int) -> IntValue:
        return int_values(index, node.input[i], hint, _depth + 1)

    if standard and node.op_type == "Shape":
        values, scalar, used = _shape(node, _known_dims(index, node.input[0], hint))
    elif standard and node.op_type in _FOLDERS:
        values, scalar, used = _FOLDERS[node.op_type](index, node, node_id, arg)
    else:
        raise NotStatic(f"'{name}' is computed by {node.op_type} node '{node.name}', which is not folded")
    # Constant inputs a folder reads without folding (e.g. Unsqueeze axes) belong to it too.
    constants = {index.producer.get(i) for i in node.input} - {None}
    used |= {p for p in constants if index.nodes[p].op_type == "Constant"}
    return IntValue(tuple(values), scalar, used | {node_id})


Folder = Callable[[GraphIndex, NodeProto, int, Callable[[int], IntValue]], tuple[list[Dim], bool, frozenset]]


def _known_dims(index: GraphIndex, name: str, hint: DimsHint | None) -> list[Dim] | None:
    known = hint(name) if hint is not None else None
    return known if known is not None else index.dims(name)


def _shape(node: NodeProto, dims: list[Dim] | None) -> tuple[list[Dim], bool, frozenset]:
    if dims is None:
        raise NotStatic(f"rank of '{node.input[0]}' is unknown")
    start, end = attr(node, "start", 0), attr(node, "end", None)
    return list(dims[slice(start, end)]), False, frozenset()


def _gather(index, node, node_id, arg):
    data, idx = arg(0), arg(1)
    if attr(node, "axis", 0) != 0 or data.scalar:
        raise NotStatic(f"Gather node '{node.name}' is not a 1-D index")
    n = len(data.values)
    wanted = idx.ints()
    if any(not -n <= i < n for i in wanted):
        raise NotStatic(f"Gather node '{node.name}' reads index {wanted} of a value of length {n}")
    picked = [data.values[i + n if i < 0 else i] for i in wanted]
    return picked, idx.scalar, data.nodes | idx.nodes


def _slice(index, node, node_id, arg):
    data = arg(0)
    starts, ends = arg(1).ints(), arg(2).ints()
    axes = arg(3).ints() if len(node.input) > 3 and node.input[3] else [0]
    steps = arg(4).ints() if len(node.input) > 4 and node.input[4] else [1]
    if axes not in ([0], [-1]) or steps != [1] or len(starts) != 1 or len(ends) != 1:
        raise NotStatic(f"Slice node '{node.name}' on a shape is not a plain 1-D slice")
    used = data.nodes | arg(1).nodes | arg(2).nodes
    return list(data.values[slice(starts[0], ends[0])]), False, used


def _concat(index, node, node_id, arg):
    parts = [arg(i) for i in range(len(node.input))]
    values: list[Dim] = []
    used: frozenset[int] = frozenset()
    for part in parts:
        values.extend(part.values)
        used |= part.nodes
    return values, False, used


def _unsqueeze(index, node, node_id, arg):
    data = arg(0)
    if not data.scalar:
        raise NotStatic(f"Unsqueeze node '{node.name}' on a 1-D shape value")
    return list(data.values), False, data.nodes


def _squeeze(index, node, node_id, arg):
    data = arg(0)
    if len(data.values) != 1:
        raise NotStatic(f"Squeeze node '{node.name}' on a shape value of length {len(data.values)}")
    return list(data.values), True, data.nodes


def _passthrough(index, node, node_id, arg):
    data = arg(0)
    return list(data.values), data.scalar, data.nodes


def _arith(op: Callable[[int, int], int]):
    def fold(index, node, node_id, arg):
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
                out.append(_opaque(node_id, k))
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


def _cast(index, node, node_id, arg):
    """int→int Casts keep the low bits (ONNX): int32 of 2**32 + 1 is 1.

    A dim symbol stays itself through a cast to a 32- or 64-bit type (no tensor has 2**31
    elements on one axis); through a narrower one it could wrap, so it becomes opaque.
    """
    to = attr(node, "to")
    if not isinstance(to, int) or to not in INT_TYPES:
        raise NotStatic(f"Cast node '{node.name}' leaves the integers")
    data = arg(0)
    bits = INT_TYPES[to][0]
    values: list[Dim] = [
        cast_int(v, to) if isinstance(v, int) else (v if bits >= 32 else _opaque(node_id, k))
        for k, v in enumerate(data.values)
    ]
    return values, data.scalar, data.nodes


#: Shape is folded in int_values itself: it needs the caller's dims hint.
_FOLDERS: dict[str, Folder] = {
    "Gather": _gather,
    "Slice": _slice,
    "Concat": _concat,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Identity": _passthrough,
    "Cast": _cast,
    "Add": _arith(lambda x, y: x + y),
    "Sub": _arith(lambda x, y: x - y),
    "Mul": _arith(lambda x, y: x * y),
    "Div": _arith(_int_div),
    "Equal": _arith(lambda x, y: int(x == y)),
}
