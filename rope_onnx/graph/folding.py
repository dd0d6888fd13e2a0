"""Static evaluation of the small integer computations exporters emit for shapes and bounds.

``x[..., : x.shape[-1] // 2]`` exports as ``Shape → Gather → Div → Unsqueeze → Slice``; a reshape to
``[*x.shape[:-1], -1, 2]`` as ``Shape → Slice → Concat → Reshape``.  To prove a site we must know
those values.  :func:`int_values` folds them: static dims become ints, dynamic dims stay symbols
(``"param:batch"``, ``"dim:<tensor>:<axis>"``) that compare equal only to the same dim, and
arithmetic on a symbol gives an opaque symbol (so it can never be mistaken for something known).
Every node used is recorded, so the rewrite can delete the bound computations with the site.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from onnx import NodeProto

from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.index import Dim, GraphIndex


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


def opaque(node_id: int, k: int) -> str:
    """A symbol for entry k of a node's result that depends on a symbolic dim: equal only to itself."""
    return f"expr:{node_id}:{k}"


#: The shape of a tensor as the caller knows it, better than shape inference (or None).
DimsHint = Callable[[str], "list[Dim] | None"]


def int_values(
    index: GraphIndex,
    name: str,
    folders: Mapping[str, Folder],
    hint: DimsHint | None = None,
    _depth: int = 0,
) -> IntValue:
    """Fold tensor ``name`` to an :class:`IntValue`, or raise :class:`NotStatic` saying why.

    ``folders`` says how each op folds (the pass passes the ``fold`` members of its op rules:
    what an op does to integers is written beside what it does to channels).  ``hint`` gives
    shapes the caller has proven (the tracer knows every channel width it computed, also where
    shape inference lost it, e.g. after a Slice with computed bounds or a static If).
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
    standard = is_default_domain(node.domain)

    def arg(i: int) -> IntValue:
        return int_values(index, node.input[i], folders, hint, _depth + 1)

    if standard and node.op_type == "Shape":
        values, scalar, used = _shape(node, _known_dims(index, node.input[0], hint))
    elif standard and node.op_type in folders:
        values, scalar, used = folders[node.op_type](index, _only_output(node, name), node_id, arg)
    else:
        raise NotStatic(f"'{name}' is computed by {node.op_type} node '{node.name}', which is not folded")
    # Constant inputs a folder reads without folding (e.g. Unsqueeze axes) belong to it too.
    constants = {p for i in node.input if (p := index.producer.get(i)) is not None}
    used |= {p for p in constants if index.nodes[p].op_type == "Constant"}
    return IntValue(tuple(values), scalar, used | {node_id})


def _only_output(node: NodeProto, name: str) -> NodeProto:
    """``node`` as its folder sees it: with several outputs, only the one folded keeps its name."""
    if len(node.output) == 1:
        return node
    view = NodeProto()
    view.CopyFrom(node)
    for k, out in enumerate(node.output):
        view.output[k] = out if out == name else ""
    return view


#: How one op folds: (index, node, node id, fold input i) -> (entries, is 0-D, nodes used).  A node
#: with several outputs (Split) comes with only the output being folded named, the others blank.
Folder = Callable[
    [GraphIndex, NodeProto, int, Callable[[int], IntValue]], tuple[list[Dim], bool, frozenset[int]]
]


def _known_dims(index: GraphIndex, name: str, hint: DimsHint | None) -> list[Dim] | None:
    known = hint(name) if hint is not None else None
    return known if known is not None else index.dims(name)


def _shape(node: NodeProto, dims: list[Dim] | None) -> tuple[list[Dim], bool, frozenset[int]]:
    """``Shape`` is folded here, not by an op rule: it needs the caller's dims hint."""
    if dims is None:
        raise NotStatic(f"rank of '{node.input[0]}' is unknown")
    start, end = attr_int(node, "start", 0), attr_int(node, "end")
    return list(dims[slice(start, end)]), False, frozenset()
