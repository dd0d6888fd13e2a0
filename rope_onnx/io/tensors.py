"""Every tensor a model can carry, wherever it lives — the places external data can point from.

An external-data reference is a file path and a byte range written by whoever made the model.
Validating only initializers leaves the other homes of a tensor open to ``../`` or absolute
paths: sparse initializers (values and indices), ``TENSOR``/``TENSORS`` and sparse attributes of
any node, constants inside model-local functions, and all of these inside subgraphs.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import attrgetter

from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto

from rope_onnx.graph.conventions import subgraphs


def _sparse(sparse: SparseTensorProto) -> Iterator[TensorProto]:
    yield sparse.values
    yield sparse.indices


def _node_tensors(node: NodeProto) -> Iterator[TensorProto]:
    for attribute in node.attribute:
        if attribute.type == AttributeProto.TENSOR:
            yield attribute.t
        elif attribute.type == AttributeProto.TENSORS:
            yield from attribute.tensors
        elif attribute.type == AttributeProto.SPARSE_TENSOR:
            yield from _sparse(attribute.sparse_tensor)
        elif attribute.type == AttributeProto.SPARSE_TENSORS:
            for sparse in attribute.sparse_tensors:
                yield from _sparse(sparse)
    for sub in subgraphs(node):
        yield from _graph_tensors(sub)


def _graph_tensors(graph: GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from _sparse(sparse)
    for node in filter(attrgetter("attribute"), graph.node):  # only attributes hold tensors or graphs
        yield from _node_tensors(node)


def every_tensor(model: ModelProto) -> Iterator[TensorProto]:
    """The tensors of the main graph, its subgraphs and its model-local functions."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


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
