"""Loading and saving models without touching their weights (SPEC §6).

Graphs are read with external data left on disk: a 70B model's graph is a few MB, its weights
140 GB, and fusing never needs a weight byte.  Every external reference is validated to stay
inside the model's folder (no ``../`` or absolute paths).  Outputs are written atomically
(temporary file in the destination folder + ``os.replace``) so a failed or interrupted run
leaves nothing behind, and the input is never overwritten.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import onnx
from google.protobuf.message import DecodeError, Message
from onnx import ModelProto, TensorProto, checker, helper, numpy_helper

from rope_onnx.errors import InputError
from rope_onnx.io.datafiles import Shared, remove_created, share_data_files
from rope_onnx.op.contract import MAX_OPSET, MIN_OPSET

#: protobuf cannot serialise a message of 2 GiB or more.
PROTOBUF_LIMIT = 2**31 - 1
#: Inline tensors up to this many elements are decoded when loading (the pass reads only such small
#: constants); larger ones only have their raw byte count checked.
_DECODE_LIMIT = 4096
#: Element types packed several to a byte (their raw size is not count × itemsize).
_SUB_BYTE_TYPES = frozenset(
    getattr(TensorProto, name)
    for name in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2")
    if hasattr(TensorProto, name)
)


@dataclass(frozen=True)
class ExternalRef:
    """One tensor whose bytes live in a file next to the model."""

    tensor: str
    location: str  # as written in the model, relative to the model's folder
    offset: int
    length: int | None


@dataclass
class LoadedModel:
    model: ModelProto
    path: Path
    external: list[ExternalRef]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def files(self) -> list[Path]:
        """The model file and every external data file it references: nothing may overwrite them."""
        return [self.path, *sorted({self.folder / ref.location for ref in self.external})]


def _all_tensors(model: ModelProto) -> Iterator[TensorProto]:
    """Initializers and Constant-node tensors, in every subgraph, that may carry external data."""

    def graph_tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == onnx.AttributeProto.GRAPH:
                    yield from graph_tensors(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    for sub in attr.graphs:
                        yield from graph_tensors(sub)

    yield from graph_tensors(model.graph)


def external_refs(model: ModelProto) -> list[ExternalRef]:
    refs = []
    for tensor in _all_tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        length = info.get("length")
        refs.append(
            ExternalRef(
                tensor.name,
                info.get("location", ""),
                int(info.get("offset", 0) or 0),
                int(length) if length else None,
            )
        )
    return refs


def _check_external(path: Path, refs: list[ExternalRef], need_data: bool) -> None:
    """Every reference stays inside the model's folder; with ``need_data``, its bytes exist.

    Checked once per data file (a 70B export has thousands of tensors in one file), with the
    furthest byte any tensor needs; no data byte is read.
    """
    folder = path.parent.resolve()
    needed: dict[str, tuple[int, str]] = {}  # location -> (furthest end, a tensor that needs it)
    for ref in refs:
        end = ref.offset + (ref.length or 0)
        if ref.location not in needed or end > needed[ref.location][0]:
            needed[ref.location] = (end, ref.tensor)
    for location, (end, tensor) in needed.items():
        where = Path(location)
        if not location or where.is_absolute() or ".." in where.parts:
            raise InputError(
                f"{path}: tensor '{tensor}' points to external data '{location}' outside the "
                "model's folder; refusing (path traversal). Keep data files next to the model."
            )
        target = (folder / where).resolve()
        if folder not in target.parents:
            raise InputError(f"{path}: external data '{location}' resolves outside the model's folder")
        if not need_data:
            continue
        if not target.is_file():
            raise InputError(
                f"{path}: external data file '{location}' (tensor '{tensor}') is missing; "
                "copy it next to the model"
            )
        if target.stat().st_size < end:
            raise InputError(
                f"{path}: external data file '{location}' is shorter than the model says "
                f"({target.stat().st_size} < {end} bytes, tensor '{tensor}'); it is truncated"
            )


def _check_versions(path: Path, model: ModelProto) -> None:
    if model.ir_version > onnx.IR_VERSION:
        raise InputError(
            f"{path}: IR version {model.ir_version} is newer than this onnx reads ({onnx.IR_VERSION}); "
            "re-export with an older IR version or upgrade rope-onnx"
        )
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not opsets:
        raise InputError(f"{path}: the model imports no default-domain opset; is it an ONNX model?")
    if not MIN_OPSET <= opsets[0] <= MAX_OPSET:
        raise InputError(
            f"{path}: default-domain opset {opsets[0]} is outside the supported range "
            f"{MIN_OPSET}..{MAX_OPSET}; re-export with an opset in that range"
        )


def _strings_decode(message: Message) -> bool:
    """False when some string field holds bytes that are not UTF-8.

    protobuf's parser does not validate proto2 strings: it hands invalid ones back as ``bytes``,
    which fail later, far from the file, when a name is copied into a new node.  Tensor payloads
    are bytes or numbers, never strings, so this walk never touches weight data.
    """
    for field, value in message.ListFields():
        values = value if field.is_repeated else (value,)
        if field.type == field.TYPE_MESSAGE:
            if not all(_strings_decode(item) for item in values):
                return False
        elif field.type == field.TYPE_STRING and any(isinstance(item, bytes) for item in values):
            return False
    return True


def _check_tensor(path: Path, tensor: TensorProto) -> None:
    """An inline tensor must have a known element type and exactly the data its shape declares."""
    if tensor.data_location == TensorProto.EXTERNAL:
        return  # checked by _check_external; its bytes are never read
    where = f"{path}: tensor '{tensor.name}'"
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    except KeyError:
        raise InputError(
            f"{where} has unknown element type {tensor.data_type}; the file is corrupt"
        ) from None
    if any(d < 0 for d in tensor.dims):
        raise InputError(f"{where} has a negative dimension {list(tensor.dims)}; the file is corrupt")
    count = math.prod(tensor.dims)
    if count > _DECODE_LIMIT:  # a weight: the pass never reads it; check the raw size without a copy
        packed = tensor.data_type in _SUB_BYTE_TYPES
        if tensor.raw_data and not packed and len(tensor.raw_data) != count * dtype.itemsize:
            raise InputError(
                f"{where} holds {len(tensor.raw_data)} bytes, its shape {list(tensor.dims)} needs "
                f"{count * dtype.itemsize}; the file is corrupt"
            )
        return
    try:
        numpy_helper.to_array(tensor)  # small tensors are the ones the pass reads: decode them
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{where} does not hold the data its shape declares ({first}); the file is corrupt"
        ) from exc


def _checker_context(model: ModelProto) -> checker.C.CheckerContext:
    ctx = checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = {o.domain: o.version for o in model.opset_import}
    return ctx


def _check_order(path: Path, graph: onnx.GraphProto) -> None:
    """Each tensor has one producer, and every node reads only tensors defined before it.

    ONNX requires graphs in topological order; the pass rewrites in node order and follows
    producers, so a cycle or a duplicate definition would make it loop or rewrite the wrong node.
    """
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        missing = [name for name in node.input if name and name not in defined]
        if missing:
            raise InputError(
                f"{path}: node '{node.name}' ({node.op_type}) reads '{missing[0]}' before it is defined "
                "(graph not in topological order, a cycle, or a dangling input); fix or re-export the model"
            )
        for name in node.output:
            if name in defined:
                raise InputError(f"{path}: tensor '{name}' is defined twice; the file is corrupt")
            if name:
                defined.add(name)


def _has_subgraph(node: onnx.NodeProto, model: ModelProto) -> bool:
    """A graph-typed attribute that the op's schema declares as one (If, Loop, Scan bodies)."""
    graph_types = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if not any(a.type in graph_types for a in node.attribute):
        return False
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    try:
        schema = onnx.defs.get_schema(node.op_type, version, "")
    except onnx.defs.SchemaError:
        return False  # check_node reports the missing op
    declared = {name for name, a in schema.attributes.items() if a.type in graph_types}
    return any(a.name in declared for a in node.attribute if a.type in graph_types)


def _check_structure(path: Path, model: ModelProto) -> None:
    """Structural validity the pass relies on, without running the full checker.

    ``onnx.checker.check_model`` is not usable here: a fused model has RoPECustomer in the default
    domain (SPEC §2), which the checker rejects by design.  So: every string is UTF-8, every inline
    tensor decodes, the nodes are in topological order with one producer per tensor, and every
    default-domain node that ONNX defines satisfies its schema (required
    attributes, input/output counts).  Nodes with subgraphs are left to their consumers (the
    checker cannot see the outer scope of a lone node; the pass never enters subgraphs).
    """
    if not _strings_decode(model):
        raise InputError(f"{path}: holds names that are not valid UTF-8; the file is corrupt")
    for tensor in _all_tensors(model):
        _check_tensor(path, tensor)
    _check_order(path, model.graph)
    ctx = _checker_context(model)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or not onnx.defs.has(node.op_type):
            continue
        if _has_subgraph(node, model):
            continue
        try:
            checker.check_node(node, ctx)
        except checker.ValidationError as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(
                f"{path}: node '{node.name}' ({node.op_type}) is invalid: {first} Fix or re-export the model."
            ) from exc


def load_model(path: str | os.PathLike[str], *, need_external_data: bool = True) -> LoadedModel:
    """Read a model's graph, leaving external weights on disk, and validate it for our use.

    ``need_external_data``: refuse a model whose data files are missing (a fused copy of it
    would be broken).  ``verify --sites`` passes False: it needs only the graph.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory; give the path of the .onnx file inside it")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{p}: file is empty; it is not an ONNX model")
    if size > PROTOBUF_LIMIT:
        raise InputError(
            f"{p}: the file is {size / 2**30:.1f} GiB, over protobuf's 2 GiB message limit, so it "
            "cannot be parsed as one ONNX proto; re-save it with the weights as external data "
            "(onnx.save(model, path, save_as_external_data=True)) and pass that model"
        )
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a readable ONNX model ({type(exc).__name__}); check the file") from exc
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if not model.HasField("graph") or not model.opset_import:
        raise InputError(f"{p}: parses but holds no ONNX graph; is it an ONNX model?")
    _check_versions(p, model)
    _check_structure(p, model)
    refs = external_refs(model)
    _check_external(p, refs, need_external_data)
    return LoadedModel(model, p, refs)


def check_output_path(output: str | os.PathLike[str], source: Path, *inputs: Path) -> Path:
    """Validate where an output goes before any work is done.

    ``source`` and ``inputs`` (e.g. :attr:`LoadedModel.files`: the model and its data files) are
    never overwritten.
    """
    out = Path(output)
    if out.exists() and out.is_dir():
        raise InputError(f"{out}: is a directory; give a file name for the output")
    for protected in (source, *inputs):
        if out.resolve() == protected.resolve() or (
            out.exists() and protected.exists() and out.samefile(protected)
        ):
            if protected.suffix == ".onnx" or protected == source:
                raise InputError(
                    f"{out}: output equals the input; the input is never modified, choose another path"
                )
            raise InputError(
                f"{out}: is the input's external data file '{protected.name}'; writing there would destroy "
                "the weights, choose another output name"
            )
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{folder}: output folder does not exist; create it first")
    try:  # os.access says yes to root even where writes fail (read-only mounts, sysfs): try it
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise InputError(
            f"{folder}: output folder is not writable ({exc.strerror or exc}); choose another folder"
        ) from exc
    return out


def write_bytes_atomically(data: bytes, out: Path) -> None:
    """Temporary file in the destination folder + rename: ``out`` is either whole or untouched.

    An OS failure (disk full, permissions, folder gone) becomes an :class:`InputError` after the
    temporary file is removed; an interrupt removes it too and propagates.
    """
    try:
        _write_atomically(data, out)
    except OSError as exc:
        raise InputError(
            f"{out}: cannot write ({exc.strerror or exc}); nothing was written, free space or "
            "choose another folder"
        ) from exc


def _write_atomically(data: bytes, out: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(
    model: ModelProto,
    out: Path,
    loaded: LoadedModel,
    *,
    share: str = "link",
    progress: TextIO | None = None,
) -> Shared:
    """Write ``model`` (graph only; weights stay where ``loaded`` has them) atomically to ``out``.

    The output's external references are the input's, unchanged: the data files are shared
    (see :func:`rope_onnx.io.datafiles.share_data_files` for ``share``).  On any failure nothing new
    is left in the output folder.  ``progress`` is where a copy's progress bar goes (default stderr).
    """
    if share not in ("link", "copy"):
        raise ValueError(f"share must be 'link' or 'copy', not {share!r}")
    check_output_path(out, loaded.path, *loaded.files)  # never the input or one of its data files
    size = model.ByteSize()
    if size > PROTOBUF_LIMIT:
        raise InputError(
            f"{out}: the model proto would be {size / 2**30:.1f} GiB, over protobuf's 2 GiB limit; "
            "store the weights as external data (onnx.save(..., save_as_external_data=True)) first"
        )
    shared = share_data_files(loaded.external, loaded.folder, out.parent, share, progress)
    try:
        write_bytes_atomically(model.SerializeToString(), out)
    except BaseException:
        remove_created(shared.created)
        raise
    return shared
