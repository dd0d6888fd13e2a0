"""The bytes ``onnx.shape_inference`` reads: the graph without its annotations, its large inline
weights and, where that is exactly equivalent, its ``Constant`` nodes.

Inference spends ~6 µs on each Constant node (a 70B export has 6,278 of them: a quarter of its
inference time) only to give the output the tensor's type and hand its value to later nodes.  An
initializer of the same name is typed and read the same way (see :func:`inference_input`), at no
per-node cost.  The copy is built from serialized pieces: node bytes are filtered and the Constant
tensors renamed as bytes, so no node message is copied or read field by field in Python.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress
from operator import itemgetter
from typing import Any

import onnx
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from onnx import ModelProto, TensorProto
from onnx.onnx_cpp2py_export import shape_inference as _c_inference

from rope_onnx.graph import shapes
from rope_onnx.graph.conventions import default_opset
from rope_onnx.graph.protos import NodeNames, release_freed_heap, serialized_types

__all__ = ["flat_facts", "graph_bytes", "inference_input", "inferred_types"]

_TENSOR = onnx.AttributeProto.TENSOR
#: Initializers that are not graph inputs are typed by inference from IR version 4 on.
_MIN_IR = 4
#: Inline initializers up to this many elements are serialized with the graph (64 KiB of float32).
_SMALL_ELEMENTS = 16 * 1024


@functools.cache
def _wire() -> dict[str, Any] | None:
    """Message types that read ONNX's wire format coarsely: a graph's nodes as bytes, all the
    attributes of a run of nodes, all the fields of a run of attributes (repeated, so that a run
    parses in one call and its counts show whether every node had the one expected attribute).
    ``FlatGraph`` declares the repeated node and attribute fields singular: parsing merges every
    occurrence into one message, so one parse collects the subgraph fields of every attribute
    (``Inferred``: the name and type of every value; ``InferredCount`` counts the values).

    Field numbers are ONNX's (GraphProto.node 1, .initializer 5; ModelProto.graph 7;
    NodeProto.attribute 5; AttributeProto.name 1, .t 5, .g 6, .graphs 11, .type 20; GraphProto.output
    12, .value_info 13; ValueInfoProto.name 1, .type 2).  None when
    this protobuf cannot build them (then inference gets the plain copy, the index reads each node).
    """
    F = descriptor_pb2.FieldDescriptorProto
    many, one = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    layout: dict[str, list[tuple[Any, ...]]] = {
        "Graph": [("node", 1, F.TYPE_BYTES, many), ("initializer", 5, F.TYPE_BYTES, many)],
        "Model": [("graph", 7, F.TYPE_BYTES, one)],
        "Nodes": [("attribute", 5, F.TYPE_BYTES, many)],
        "Graphs": [("g", 6, F.TYPE_BYTES, many), ("graphs", 11, F.TYPE_BYTES, many)],
        "FlatNode": [
            ("name", 3, F.TYPE_STRING, many),
            ("attribute", 5, F.TYPE_MESSAGE, one, ".rope_onnx_wire.Graphs"),
        ],
        "FlatGraph": [("node", 1, F.TYPE_MESSAGE, one, ".rope_onnx_wire.FlatNode")],
        "Values": [("name", 1, F.TYPE_STRING, many), ("type", 2, F.TYPE_BYTES, many)],
        "Typed": [
            ("output", 12, F.TYPE_MESSAGE, one, ".rope_onnx_wire.Values"),
            ("value_info", 13, F.TYPE_MESSAGE, one, ".rope_onnx_wire.Values"),
        ],
        "Counted": [("output", 12, F.TYPE_BYTES, many), ("value_info", 13, F.TYPE_BYTES, many)],
        "Inferred": [("graph", 7, F.TYPE_MESSAGE, one, ".rope_onnx_wire.Typed")],
        "InferredCount": [("graph", 7, F.TYPE_MESSAGE, one, ".rope_onnx_wire.Counted")],
        "Attributes": [
            ("name", 1, F.TYPE_BYTES, many),
            ("t", 5, F.TYPE_BYTES, many),
            ("type", 20, F.TYPE_INT64, many),
        ],
    }  # fmt: skip
    try:
        file = descriptor_pb2.FileDescriptorProto(name="rope_onnx_wire.proto", package="rope_onnx_wire")
        file.syntax = "proto2"
        for message, fields in layout.items():
            described = file.message_type.add(name=message)
            for name, number, kind, label, *of in fields:
                field = described.field.add(name=name, number=number, type=kind, label=label)
                if of:  # a message type
                    field.type_name = of[0]
        pool = descriptor_pool.DescriptorPool()
        pool.Add(file)
        return {
            m: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"rope_onnx_wire.{m}"))
            for m in layout
        }
    except Exception:  # an older or different protobuf
        return None


def _header(model: ModelProto) -> bytes:
    """The model without nodes as inference gets it: no ``value_info``, outputs typed but not
    shaped, large inline weights as typed inputs (what :func:`shapes.without_inline_weights` and
    :func:`shapes.without_annotations` make, in the same order, without copying the nodes)."""
    graph = model.graph
    header = ModelProto(ir_version=model.ir_version, opset_import=model.opset_import)
    header.functions.extend(model.functions)
    bare = header.graph
    bare.name = graph.name
    bare.input.extend(graph.input)
    split = shapes.split_inline_weights(graph)
    if split is None:
        bare.initializer.extend(graph.initializer)
    else:
        bare.initializer.extend(split[0])
        bare.input.extend(split[1])
    bare.sparse_initializer.extend(graph.sparse_initializer)
    bare.output.extend(shapes.unshaped_outputs(graph))
    return header.SerializeToString()


#: TensorProto.name's tag (field 8, length-delimited) and each one-byte length.
_SHORT_NAME = [bytes((0x42, size)) for size in range(0x80)]


def _name_field(raw: bytes) -> bytes:
    """TensorProto.name on the wire; appended to a tensor it replaces the name it had."""
    if len(raw) < 0x80:  # most names: a table lookup
        return _SHORT_NAME[len(raw)] + raw
    size, length = len(raw), bytearray()
    while size > 0x7F:
        length.append(size & 0x7F | 0x80)
        size >>= 7
    length.append(size)
    return b"\x42" + bytes(length) + raw


def graph_bytes(model: ModelProto, names: Sequence[NodeNames] | None) -> bytes | None:
    """``model.graph`` serialized, for the coarse reads here; None where they do not apply: without
    the loader's names, or with an inline initializer over the inference cut (serialising the graph
    would copy the weights that :func:`shapes.without_inline_weights` keeps from inference)."""
    if names is None or _wire() is None or not any(map(itemgetter(4), names)):  # nothing has attributes
        return None
    for tensor in model.graph.initializer:  # dims, not ByteSize: that would encode the payload
        if tensor.data_location != TensorProto.EXTERNAL and math.prod(tensor.dims) > _SMALL_ELEMENTS:
            return None
    return model.graph.SerializeToString()


def flat_facts(graph: bytes | None, count: int) -> tuple[bool, set[str] | None]:
    """From one parse of :func:`graph_bytes`: whether no attribute of any node has a graph, and
    the set of the ``count`` nodes' names (``{n.name for n in graph.node}``); (False, None) when
    unknown (``graph`` None).

    No ``g`` or ``graphs`` anywhere: every node's :func:`~rope_onnx.graph.protos.outer_inputs` is
    empty, and need not be read (1.3 µs a node with attributes, 13 ms at 70B).  The names are read
    for the rewrite's fresh names (7 ms node by node at 70B).  The bytes are upb's serialization,
    which writes a set field once and an unset one never: fewer names than nodes means some node
    has none, that is ``""``.
    """
    wire = _wire()
    if graph is None or wire is None:
        return False, None
    merged = wire["FlatGraph"].FromString(graph).node
    names = merged.name[:]
    found = set(names)
    if len(names) < count:
        found.add("")
    return not merged.attribute.g and not merged.attribute.graphs, found


def inference_input(
    model: ModelProto, names: Sequence[NodeNames] | None, graph: bytes | None = None
) -> tuple[bytes, dict[str, int]]:
    """The serialized model for inference, and the Constant outputs it holds as initializers
    (name -> the Constant's position in ``graph.node``; their types are the tensors').

    Why an initializer is typed and read as the Constant would be (onnx/shape_inference):
    a Constant with one attribute, ``value``, of type TENSOR gets its tensor's element type and
    dims (every opset's inference function), exactly what an initializer gets at IR >= 4; its
    value reaches later nodes as the same TensorProto (``ProcessConstant`` / the initializer map:
    one ``input_data_by_name``), Constant has no data propagation function, and neither value
    reaches a subgraph.  That holds only where no node reads the output before the Constant,
    nothing else defines the name, the default domain is imported, and the output is not a
    graph output (inference types those through their producer): the load checks ensure the
    first two, so Constants are converted only with the loader's ``names``, else never.
    All of a graph's candidates are converted or none (one odd Constant: the plain copy).
    ``graph``: :func:`graph_bytes` of the model, when the caller has it.
    """
    wire = _wire()

    def plain() -> bytes:
        return shapes.without_annotations(shapes.without_inline_weights(model)).SerializeToString()

    if graph is None:
        graph = graph_bytes(model, names)
    if (
        names is None
        or graph is None
        or wire is None
        or model.ir_version < _MIN_IR
        or (default_opset(model) or 0) < 1
    ):
        return plain(), {}
    outputs = {o.name for o in model.graph.output}
    picked = [
        i
        for i, (domain, op_type, _, outs, attributed) in enumerate(names)
        if op_type == "Constant" and attributed and len(outs) == 1 and domain in ("", "ai.onnx")
        and outs[0] and outs[0] not in outputs
    ]  # fmt: skip
    if not picked:
        return plain(), {}
    nodes = wire["Graph"].FromString(graph).node[:]
    attributes = wire["Nodes"].FromString(b"".join([nodes[i] for i in picked])).attribute[:]
    fields = wire["Attributes"].FromString(b"".join(attributes))
    tensors, kinds, n = fields.t[:], fields.type[:], len(picked)
    # each picked node has an attribute (names), so n in all means one each, and n of each field
    # means one name, one type and one tensor in each attribute, in node order
    if not (
        len(attributes) == len(fields.name) == len(kinds) == len(tensors) == n
        and fields.name[:].count(b"value") == n
        and kinds.count(_TENSOR) == n
    ):
        return plain(), {}
    converted = {names[i][3][0]: i for i in picked}
    if len(converted) != n:  # a name defined twice (the load checks refuse it)
        return plain(), {}
    renamed = [t + _name_field(name.encode()) for t, name in zip(tensors, converted, strict=True)]
    keep = [True] * len(nodes)
    for i in picked:
        keep[i] = False
    body = wire["Graph"](node=list(compress(nodes, keep)), initializer=renamed).SerializeToString()
    del nodes, attributes, fields, tensors, kinds, renamed, keep
    return _header(model) + wire["Model"](graph=body).SerializeToString(), converted


def inferred_types(data: bytes, *, trim: bool = False) -> Iterable[tuple[str, bytes]]:
    """Shape inference (data propagation on) over ``data``: each value it typed (``value_info``,
    then the outputs) with its serialized TypeProto, one bytes object per distinct type.

    Read off inference's own bytes with the value fields merged (one parse, no ModelProto of the
    result: its nodes would be decoded for nothing).  Merged lists pair up only if each value has
    one name and one type: inference writes each field once, and the counts must match the number
    of values, else the values are read message by message.  One parse at a time is kept (each
    holds a copy of the nodes, 20 MB at 200k nodes); the pairs are made as they are read.  ``trim``:
    the heap inference freed goes back to the OS before the result is read (a large graph: the
    lists made here would not reuse it, and the peak would grow by them).
    Raises what inference raises, here, not while the pairs are read.
    """
    wire = _wire()
    if wire is None:
        inferred = onnx.shape_inference.infer_shapes(data, strict_mode=False, data_prop=True)
        return serialized_types((*inferred.graph.value_info, *inferred.graph.output))
    result = _c_inference.infer_shapes(data, False, False, True)  # what infer_shapes parses
    if trim:
        release_freed_heap()
    counted = wire["InferredCount"].FromString(result).graph
    counts = len(counted.value_info), len(counted.output)
    del counted
    merged = wire["Inferred"].FromString(result).graph
    names = merged.value_info.name[:], merged.output.name[:]
    types = merged.value_info.type[:], merged.output.type[:]
    del merged
    if any(not len(n) == len(t) == c for n, t, c in zip(names, types, counts, strict=True)):
        graph = ModelProto.FromString(result).graph
        return serialized_types((*graph.value_info, *graph.output))
    return _paired(names, types)


def _paired(names: Sequence[Sequence[str]], types: Sequence[Sequence[bytes]]) -> Iterator[tuple[str, bytes]]:
    canon: dict[bytes, bytes] = {}
    for some_names, some_types in zip(names, types, strict=True):
        for name, t in zip(some_names, some_types, strict=True):
            yield name, canon.setdefault(t, t)
