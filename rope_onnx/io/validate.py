"""Structure checks on a freshly parsed model, before the pass trusts it (docs/conventions.md).

Everything here reads only the graph: weight tensors have their byte counts checked, never
their contents, and external data is left to :mod:`rope_onnx.io.load`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from onnx import ModelProto, TensorProto, checker, helper, numpy_helper

from rope_onnx.errors import InputError
from rope_onnx.graph.conventions import default_opset
from rope_onnx.graph.protos import NodeNames
from rope_onnx.io.payload import decodes_by_count
from rope_onnx.io.tensors import every_tensor
from rope_onnx.io.walk import Walked, walk_graph
from rope_onnx.op.contract import MAX_OPSET, MIN_OPSET

#: Inline tensors up to this many elements are decoded when loading (the pass reads only such small
#: constants); larger ones only have their raw byte count checked.
_DECODE_LIMIT = 4096
#: Models whose proto is larger than this (inline weights) have their strings checked by the walk.
_MIRROR_LIMIT = 64 * 2**20
#: Element types packed several to a byte, or 6-bit floats four to three bytes (raw size ≠ count × itemsize).
_SUB_BYTE_TYPES = frozenset(
    getattr(TensorProto, name)
    for name in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2", "FLOAT6E2M3", "FLOAT6E3M2")
    if hasattr(TensorProto, name)
)


def all_tensors(model: ModelProto) -> list[TensorProto]:
    """Every tensor that may carry external data: initializers, sparse initializers, tensor
    attributes of any node, constants of model-local functions, in every subgraph
    (:func:`rope_onnx.io.tensors.every_tensor`)."""
    return every_tensor(model)


def check_versions(path: Path, model: ModelProto) -> None:
    """An IR version this onnx reads and a default-domain opset in the supported range."""
    if model.ir_version > onnx.IR_VERSION:
        raise InputError(
            f"{path}: IR version {model.ir_version} is newer than this onnx reads ({onnx.IR_VERSION}); "
            "re-export with an older IR version or upgrade rope-onnx"
        )
    opset = default_opset(model)
    if opset is None:
        raise InputError(f"{path}: the model imports no default-domain opset; is it an ONNX model?")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputError(
            f"{path}: default-domain opset {opset} is outside the supported range "
            f"{MIN_OPSET}..{MAX_OPSET}; re-export with an opset in that range"
        )


def _strings_decode(model: ModelProto, serialized: bytes | None = None) -> bool:
    """False when some string field holds bytes that are not UTF-8.

    protobuf's parser does not validate proto2 strings: it hands invalid ones back as ``bytes``,
    which fail later, far from the file, when a name is copied into a new node.  Walking every
    string from Python cost ~5 µs a node (1 s for 200,000 nodes, issue 17), so the graph is parsed
    once more, in C, as a copy of ONNX's schema that verifies UTF-8 (:func:`_verifying_model`);
    only where that parse fails, or for a model with large inline weights (which a second parse
    would copy), does the walk run, so the walk's verdict is what is reported.

    ``serialized``: the binary proto ``model`` was parsed from, when the caller has it: parsing
    it spares serialising the model again (and sizing it).  Every string of ``model`` came from
    those bytes, so their parse passing clears the model; failing, it leaves the verdict to the
    walk (the bytes may hold an overwritten bad value the model does not).
    """
    mirror = _verifying_model()
    size = model.ByteSize() if serialized is None else len(serialized)
    if mirror is None or size > _MIRROR_LIMIT:
        return _strings_decode_walk(model)
    try:
        mirror.FromString(model.SerializeToString() if serialized is None else serialized)
    except DecodeError:
        return _strings_decode_walk(model)
    return True


@functools.cache
def _verifying_model() -> type[Message] | None:
    """``onnx.ModelProto`` rebuilt as an edition-2023 schema with ``utf8_validation = VERIFY``.

    Same fields, numbers, presence, closed enums and unpacked repeated scalars as ONNX's proto2
    file; the one difference is that parsing rejects a string field that is not UTF-8.  None when
    this protobuf cannot build it (then the Python walk checks every string).
    """
    try:
        file = descriptor_pb2.FileDescriptorProto()
        ModelProto.DESCRIPTOR.file.CopyToProto(file)
        file.syntax, file.edition = "editions", descriptor_pb2.EDITION_2023
        features = file.options.features
        features.utf8_validation = descriptor_pb2.FeatureSet.VERIFY
        features.repeated_field_encoding = descriptor_pb2.FeatureSet.EXPANDED
        features.enum_type = descriptor_pb2.FeatureSet.CLOSED
        pool = descriptor_pool.DescriptorPool()
        pool.Add(file)
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(ModelProto.DESCRIPTOR.full_name))
    except Exception:  # an older or different protobuf: the walk is the check
        return None


def _strings_decode_walk(message: Message) -> bool:
    """The same check in Python, message by message (tensor payloads are bytes: never walked into)."""
    for field, value in message.ListFields():
        values = value if field.is_repeated else (value,)
        if field.type == field.TYPE_MESSAGE:
            if not all(_strings_decode_walk(item) for item in values):
                return False
        elif field.type == field.TYPE_STRING and any(isinstance(item, bytes) for item in values):
            return False
    return True


@functools.cache
def _itemsize(data_type: int) -> int:
    """Bytes per element of a known element type; KeyError for an unknown one."""
    return np.dtype(helper.tensor_dtype_to_np_dtype(data_type)).itemsize


def _check_tensor(path: Path, tensor: TensorProto) -> None:
    """An inline tensor must have a known element type and exactly the data its shape declares."""
    if tensor.data_location == TensorProto.EXTERNAL:
        return  # checked by load.check_external; its bytes are never read
    try:
        itemsize = _itemsize(tensor.data_type)
    except KeyError:
        raise InputError(
            f"{path}: tensor '{tensor.name}' has unknown element type {tensor.data_type}; the file is corrupt"
        ) from None
    dims = tensor.dims[:]  # a list: iterating the repeated field raises (and formats) an IndexError
    if dims and min(dims) < 0:
        raise InputError(
            f"{path}: tensor '{tensor.name}' has a negative dimension {list(dims)}; the file is corrupt"
        )
    count = math.prod(dims)
    if count > _DECODE_LIMIT:  # a weight: the pass never reads it; check the raw size without a copy
        packed = tensor.data_type in _SUB_BYTE_TYPES
        if tensor.raw_data and not packed and len(tensor.raw_data) != count * itemsize:
            raise InputError(
                f"{path}: tensor '{tensor.name}' holds {len(tensor.raw_data)} bytes, its shape "
                f"{list(dims)} needs {count * itemsize}; the file is corrupt"
            )
        return
    if decodes_by_count(tensor, count):  # the common case, decided without decoding
        return
    try:
        numpy_helper.to_array(tensor)  # small tensors are the ones the pass reads: decode them
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{path}: tensor '{tensor.name}' does not hold the data its shape declares ({first}); "
            "the file is corrupt"
        ) from exc


def _check_nodes(path: Path, model: ModelProto) -> list[NodeNames]:
    """The order and schema checks of :func:`~rope_onnx.io.walk.walk_graph`, raised; each node's names.

    ONNX requires graphs in topological order; the pass rewrites in node order and follows
    producers, so a cycle or a duplicate definition would make it loop or rewrite the wrong node.
    Returns each node's names as read there: protobuf makes a new ``str`` on every read of a
    name, so the index takes these instead of a second read.
    """
    walked = walk_graph(model)
    _raise_node_errors(path, walked)
    return walked.names


def _raise_node_errors(path: Path, walked: Walked) -> None:
    """The walk's order error, else its schema failure, as the InputError the user sees."""
    if walked.order is not None:
        raise InputError(f"{path}: {walked.order}")
    if walked.failure is None:
        return
    node, error = walked.failure
    if not isinstance(error, checker.ValidationError):
        raise error
    first = str(error).strip().splitlines()[0]
    raise InputError(
        f"{path}: node '{node.name}' ({node.op_type}) is invalid: {first} Fix or re-export the model."
    ) from error


class Checked(NamedTuple):
    """What the structure checks read: each node's names and the tensors to search for external
    data (:attr:`~rope_onnx.io.walk.Walked.tensors`)."""

    names: list[NodeNames]
    tensors: list[TensorProto]


def check_structure(path: Path, model: ModelProto, serialized: bytes | None = None) -> Checked:
    """Structural validity the pass relies on, without running the full checker; each node's names.

    ``onnx.checker.check_model`` is not usable here: a fused model has RoPECustomer in the default
    domain (docs/op-contract.md), which the checker rejects by design. So: every string is UTF-8, every inline
    tensor decodes, the nodes are in topological order with one producer per tensor, and every
    default-domain node that ONNX defines satisfies its schema (required
    attributes, input/output counts).  Nodes with subgraphs are left to their consumers (the
    checker cannot see the outer scope of a lone node; the pass never enters subgraphs).
    The checks rank in that order: a bad string outranks a bad tensor, which outranks a bad node.
    ``serialized``: the binary proto it was parsed from, if it was (:func:`_strings_decode`).
    Returns the names the walk read, for :class:`~rope_onnx.graph.index.GraphIndex`, and the
    tensors that may carry external data, for :func:`rope_onnx.io.load.external_refs`.
    """
    if not _strings_decode(model, serialized):
        raise InputError(f"{path}: holds names that are not valid UTF-8; the file is corrupt")
    walked = walk_graph(model)
    for tensor in walked.tensors:
        _check_tensor(path, tensor)
    _raise_node_errors(path, walked)
    return Checked(walked.names, walked.tensors)
