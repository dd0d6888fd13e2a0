"""Plain Python values read off ONNX protos (a node's implicit inputs, a tensor type), and handing
back the heap a parsed proto left behind.

Split from :mod:`rope_onnx.graph.index`, which uses them once per node or value: keeping TypeProtos
or subgraph messages around would keep the protos they belong to alive.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import sys
from collections.abc import Iterable, Iterator

import numpy as np
import onnx
from onnx import GraphProto, NodeProto, TensorProto, ValueInfoProto, numpy_helper

from rope_onnx.graph.shapes import TypeInfo

__all__ = [
    "MAX_CONSTANT_ELEMENTS",
    "NodeNames",
    "constant_node_value",
    "outer_inputs",
    "release_freed_heap",
    "serialized_types",
    "small_tensor",
    "type_info",
]

#: Constants larger than this are never read: a scalar or a small index vector is all we need.
MAX_CONSTANT_ELEMENTS = 4096
_LITTLE_ENDIAN = sys.byteorder == "little"  # raw_data is little-endian (to_array swaps elsewhere)

_GRAPH = onnx.AttributeProto.GRAPH
#: One node as plain values: (domain, op_type, inputs, outputs, has attributes), names as written
#: ("" for an omitted one).  Read once, by the loader's checks or by the index itself: protobuf
#: makes a new ``str`` on every read of a name, ~2 µs a node (40 ms for a 70B export, issue 17).
NodeNames = tuple[str, str, tuple[str, ...], tuple[str, ...], bool]


def _subgraph_inputs(graph: GraphProto) -> Iterator[str]:
    """Names a subgraph (If/Loop/Scan body) reads from its enclosing scope, recursively."""
    local = {o for node in graph.node for o in node.output} | {i.name for i in graph.input}
    local |= {t.name for t in graph.initializer}
    for node in graph.node:
        yield from (name for name in node.input if name and name not in local)
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                yield from (name for name in _subgraph_inputs(sub) if name not in local)


def outer_inputs(node: NodeProto) -> set[str]:
    """Tensors a node's subgraphs read from the graph around it (its implicit inputs).

    Called for every node with attributes (the index, the rewrite): the enum is read once, and an
    attribute that holds no graph costs two field reads, no list.
    """
    names: set[str] = set()
    for attr in node.attribute[:]:  # a slice: iterating the field itself ends in a formatted IndexError
        if attr.type == _GRAPH:
            names.update(_subgraph_inputs(attr.g))
        elif attr.graphs:
            for sub in attr.graphs:
                names.update(_subgraph_inputs(sub))
    return names


def release_freed_heap() -> None:
    """Return the heap shape inference freed to the OS (glibc keeps it; elsewhere a no-op).

    ``onnx.shape_inference`` holds a C++ copy of the graph while it runs (270 MB for a
    200,000-node chain).  glibc keeps that memory after it is freed, and Python's allocator does
    not reuse it for the index's small objects, so without this the index adds to the peak.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def type_info(t: onnx.TypeProto) -> TypeInfo:
    """A TypeProto as plain values (keeping the messages would keep the inferred graph alive)."""
    if not t.HasField("tensor_type"):
        return 0, None
    tensor = t.tensor_type
    if not tensor.HasField("shape"):
        return tensor.elem_type, None
    dims = tuple(
        int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
    )
    return tensor.elem_type, dims


def serialized_types(infos: Iterable[ValueInfoProto]) -> Iterator[tuple[str, bytes]]:
    """Each value's name and serialized TypeProto, one bytes object per distinct type.

    Bytes keep nothing of the message alive (a TypeProto would keep its whole model), and a model
    has a few thousand distinct types across tens of thousands of values.
    """
    canon: dict[bytes, bytes] = {}
    for info in infos:
        key = info.type.SerializeToString()
        yield info.name, canon.setdefault(key, key)


def small_tensor(tensor: TensorProto) -> np.ndarray | None:
    if tensor.data_location == TensorProto.EXTERNAL:
        return None
    dims = tensor.dims
    if math.prod(dims) > MAX_CONSTANT_ELEMENTS:  # math.prod: np.prod costs ~30 µs a call
        return None
    if (
        tensor.data_type == TensorProto.INT64
        and _LITTLE_ENDIAN
        and tensor.HasField("raw_data")
        and not tensor.HasField("segment")  # to_array refuses those
    ):
        # What numpy_helper.to_array does for it, without its ~10 µs of dispatch: exporters write
        # every shape and axes constant so, and the pass reads thousands of them.
        flat = np.frombuffer(tensor.raw_data, dtype=np.int64)
        return flat if len(dims) == 1 and flat.size == dims[0] else flat.reshape(dims)
    return numpy_helper.to_array(tensor)


def constant_node_value(node: NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return small_tensor(attr.t)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), dtype=np.int64)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(list(attr.floats), dtype=np.float32)
    return None
