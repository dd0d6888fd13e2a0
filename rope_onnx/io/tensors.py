"""Every tensor a model can carry, wherever it lives — the places external data can point from.

An external-data reference is a file path and a byte range written by whoever made the model.
Validating only initializers leaves the other homes of a tensor open to ``../`` or absolute
paths: sparse initializers (values and indices), ``TENSOR``/``TENSORS`` and sparse attributes of
any node, constants inside model-local functions, and all of these inside subgraphs.
"""

from __future__ import annotations

from collections.abc import Sequence

from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto

from rope_onnx.graph.conventions import subgraphs

_TENSOR, _TENSORS = AttributeProto.TENSOR, AttributeProto.TENSORS
_SPARSE_TENSOR, _SPARSE_TENSORS = AttributeProto.SPARSE_TENSOR, AttributeProto.SPARSE_TENSORS
_GRAPH_KINDS = (AttributeProto.GRAPH, AttributeProto.GRAPHS)


def node_tensors(attributes: Sequence[AttributeProto], node: NodeProto, out: list[TensorProto]) -> None:
    """Append a node's tensor attributes (in attribute order), then the tensors of its subgraphs."""
    nested = False
    for attribute in attributes:
        kind = attribute.type
        if kind == _TENSOR:
            out.append(attribute.t)
        elif kind == _TENSORS:
            out.extend(attribute.tensors)
        elif kind == _SPARSE_TENSOR:
            out += (attribute.sparse_tensor.values, attribute.sparse_tensor.indices)
        elif kind == _SPARSE_TENSORS:
            for sparse in attribute.sparse_tensors:
                out += (sparse.values, sparse.indices)
        elif kind in _GRAPH_KINDS:
            nested = True
    if nested:
        for sub in subgraphs(node):
            _graph_tensors(sub, out)


def _graph_tensors(graph: GraphProto, out: list[TensorProto]) -> None:
    out.extend(graph.initializer)
    for sparse in graph.sparse_initializer:
        out += (sparse.values, sparse.indices)
    for node in graph.node:
        attributes = node.attribute  # only attributes hold tensors or graphs
        if attributes:  # a slice: iterating the field itself ends in a formatted IndexError (~1 µs)
            node_tensors(attributes[:], node, out)


def every_tensor(model: ModelProto) -> list[TensorProto]:
    """The tensors of the main graph, its subgraphs and its model-local functions.

    One list, filled by plain loops: the load walks it twice (inline checks, external references)
    and a 70B export has 18,000 nodes, so generators per node cost more than the walk itself.
    """
    out: list[TensorProto] = []
    _graph_tensors(model.graph, out)
    for function in model.functions:
        for node in function.node:
            if node.attribute:
                node_tensors(node.attribute, node, out)
    return out


def external_fields(tensor: TensorProto) -> tuple[str, int, int | None]:
    """(location, offset, length) of an external tensor; ValueError saying what is malformed.

    Offsets and lengths are non-negative decimal integers (the ONNX external-data spec); a
    location is a relative path without NUL bytes (the containment check is the loader's).
    """
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    if "\0" in location:
        raise ValueError(f"external data location of tensor '{tensor.name}' holds a NUL byte")
    numbers: list[int | None] = []
    for key in ("offset", "length"):
        text = info.get(key)
        if text is None or text == "":
            numbers.append(None)
        elif text.isascii() and text.isdigit():
            numbers.append(int(text))
        else:
            raise ValueError(
                f"external data {key} {text!r} of tensor '{tensor.name}' is not a non-negative integer"
            )
    return location, numbers[0] or 0, numbers[1]
