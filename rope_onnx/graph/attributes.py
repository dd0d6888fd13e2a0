"""Typed reads of node attributes.

``onnx.helper.get_attribute_value`` returns whatever the attribute holds; the pass needs to know
it got an int, a list of ints or a graph, and to treat anything else as absent (a mistyped
attribute is the checker's business, never a reason to crash or to guess).
"""

from __future__ import annotations

from typing import overload

from onnx import AttributeProto, GraphProto, NodeProto

__all__ = ["attr_float", "attr_graph", "attr_int", "attr_ints"]


def _find(node: NodeProto, name: str) -> AttributeProto | None:
    for a in node.attribute:  # a loop, not next(generator): the folder reads thousands of these
        if a.name == name:
            return a
    return None


@overload
def attr_int(node: NodeProto, name: str, default: int) -> int: ...
@overload
def attr_int(node: NodeProto, name: str, default: None = None) -> int | None: ...
def attr_int(node: NodeProto, name: str, default: int | None = None) -> int | None:
    """An INT attribute, or ``default`` when it is absent or of another type."""
    found = _find(node, name)
    return int(found.i) if found is not None and found.type == AttributeProto.INT else default


def attr_float(node: NodeProto, name: str, default: float | None = None) -> float | None:
    """A FLOAT attribute, or ``default`` when it is absent or of another type."""
    found = _find(node, name)
    return float(found.f) if found is not None and found.type == AttributeProto.FLOAT else default


def attr_ints(node: NodeProto, name: str) -> list[int] | None:
    """An INTS attribute as a list, or None when it is absent or of another type."""
    found = _find(node, name)
    return [int(v) for v in found.ints] if found is not None and found.type == AttributeProto.INTS else None


def attr_graph(node: NodeProto, name: str) -> GraphProto | None:
    """A GRAPH attribute (an If branch, a Loop body), or None."""
    found = _find(node, name)
    return found.g if found is not None and found.type == AttributeProto.GRAPH else None
