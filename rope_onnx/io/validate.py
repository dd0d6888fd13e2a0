"""Structure checks on a freshly parsed model, before the pass trusts it (docs/conventions.md).

Everything here reads only the graph: weight tensors have their byte counts checked, never
their contents, and external data is left to :mod:`rope_onnx.io.load`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from onnx import ModelProto, TensorProto, checker, helper, numpy_helper

from rope_onnx.errors import InputError
from rope_onnx.graph.conventions import default_opset, is_default_domain
from rope_onnx.graph.protos import NodeNames
from rope_onnx.io.payload import decodes_by_count
from rope_onnx.io.tensors import every_tensor
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
_GRAPH_TYPES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
#: ``onnx.checker.check_node`` without its isinstance check (every node here is a NodeProto).
_check_node = checker.C.check_node
_UNSEEN = frozenset({"(an op type not met yet)"})


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


def _checker_context(model: ModelProto) -> checker.C.CheckerContext:
    ctx = checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = {o.domain: o.version for o in model.opset_import}
    return ctx


def _graph_attributes(op_type: str, opset: int) -> frozenset[str]:
    """The graph-typed attributes (If, Loop, Scan bodies) the default-domain schema of ``op_type``
    declares at ``opset``; none when there is no schema (check_node reports the missing op)."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except onnx.defs.SchemaError:
        return frozenset()
    return frozenset(name for name, a in schema.attributes.items() if a.type in _GRAPH_TYPES)


def _check_nodes(path: Path, model: ModelProto) -> list[NodeNames]:
    """Each tensor has one producer, every node reads only tensors defined before it, and every
    default-domain node that ONNX defines, without a subgraph, satisfies its schema.

    ONNX requires graphs in topological order; the pass rewrites in node order and follows
    producers, so a cycle or a duplicate definition would make it loop or rewrite the wrong node.
    One pass does both checks (18,000 nodes in a 70B export); an order error outranks any schema
    error, as if the order were checked first, so the first schema failure waits for the end.
    Per (domain, op_type) it is decided once whether check_node applies and which attributes
    would make a node a subgraph holder.  A node without attributes or omitted names is checked
    once per (domain, op_type, input count, output count): nothing else of it reaches
    ``check_node``'s verdict (its name only reaches the message), so a passing key passes again.

    Returns each node's names as read here (:data:`~rope_onnx.graph.protos.NodeNames`): protobuf
    makes a new ``str`` on every read of a name, so the index takes these instead of a second read.
    """
    graph = model.graph
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {sparse.values.name for sparse in graph.sparse_initializer}
    defined.add("")  # an omitted optional input
    ctx, opset = _checker_context(model), default_opset(model) or 0
    rules: dict[tuple[str, str], frozenset[str] | None] = {}  # None: check_node does not apply
    passed: set[tuple[str, str, int, int]] = set()  # plain nodes (no attributes, no "") that passed
    failure: tuple[onnx.NodeProto, Exception] | None = None
    lexical = checker.LEXICAL_SCOPE_CONTEXT
    names: list[NodeNames] = []
    for node in graph.node:
        domain, op_type = key = node.domain, node.op_type
        # slices, not iteration: protobuf ends every iteration of a repeated field by formatting an IndexError
        inputs, outputs, attributed = tuple(node.input[:]), tuple(node.output[:]), bool(node.attribute)
        names.append((domain, op_type, inputs, outputs, attributed))
        if not defined.issuperset(inputs):
            missing = [name for name in inputs if name not in defined]
            raise InputError(
                f"{path}: node '{node.name}' ({op_type}) reads '{missing[0]}' before it is defined "
                "(graph not in topological order, a cycle, or a dangling input); fix or re-export the model"
            )
        if len(outputs) == 1 and (output := outputs[0]) not in defined:
            defined.add(output)
        else:
            for name in outputs:
                if name and name in defined:
                    raise InputError(f"{path}: tensor '{name}' is defined twice; the file is corrupt")
                defined.add(name)
        if failure is not None:
            continue
        graphs = rules.get(key, _UNSEEN)
        if graphs is _UNSEEN:
            applies = is_default_domain(domain) and onnx.defs.has(op_type)
            graphs = rules[key] = _graph_attributes(op_type, opset) if applies else None
        if graphs is None or (graphs and attributed and _holds_graph(node, graphs)):
            continue  # not an ONNX op, or a subgraph holder: left to its consumers
        plain = None if attributed or "" in inputs or "" in outputs else (*key, len(inputs), len(outputs))
        if plain is not None and plain in passed:
            continue
        try:
            _check_node(node.SerializeToString(), ctx, lexical)
        except Exception as exc:  # raised once the order is known to be sound
            failure = (node, exc)
            continue
        if plain is not None:
            passed.add(plain)
    if failure is None:
        return names
    node, error = failure
    if not isinstance(error, checker.ValidationError):
        raise error
    first = str(error).strip().splitlines()[0]
    raise InputError(
        f"{path}: node '{node.name}' ({node.op_type}) is invalid: {first} Fix or re-export the model."
    ) from error


def _holds_graph(node: onnx.NodeProto, declared: frozenset[str]) -> bool:
    """A graph-typed attribute that the op's schema declares as one."""
    return any(a.type in _GRAPH_TYPES and a.name in declared for a in node.attribute)


def check_structure(
    path: Path,
    model: ModelProto,
    tensors: Sequence[TensorProto] | None = None,
    serialized: bytes | None = None,
) -> list[NodeNames]:
    """Structural validity the pass relies on, without running the full checker; each node's names.

    ``onnx.checker.check_model`` is not usable here: a fused model has RoPECustomer in the default
    domain (docs/op-contract.md), which the checker rejects by design. So: every string is UTF-8, every inline
    tensor decodes, the nodes are in topological order with one producer per tensor, and every
    default-domain node that ONNX defines satisfies its schema (required
    attributes, input/output counts).  Nodes with subgraphs are left to their consumers (the
    checker cannot see the outer scope of a lone node; the pass never enters subgraphs).
    ``tensors``: :func:`all_tensors` of the model, when the caller has it already;
    ``serialized``: the binary proto it was parsed from, if it was (:func:`_strings_decode`).
    Returns the names :func:`_check_nodes` read, for :class:`~rope_onnx.graph.index.GraphIndex`.
    """
    if not _strings_decode(model, serialized):
        raise InputError(f"{path}: holds names that are not valid UTF-8; the file is corrupt")
    for tensor in all_tensors(model) if tensors is None else tensors:
        _check_tensor(path, tensor)
    return _check_nodes(path, model)
