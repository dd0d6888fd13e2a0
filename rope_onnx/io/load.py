"""Graph-only loading: external weights stay on disk, every reference is checked (docs/conventions.md).

A 70B model's graph is a few MB, its weights 140 GB, and fusing never needs a weight byte, so
the graph is read with ``load_external_data=False``.  Every external reference is validated to
stay inside the model's folder (no ``../`` or absolute paths) and, unless only the graph is
needed, to point at bytes that exist.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError
from onnx import ModelProto, TensorProto, serialization

from rope_onnx.errors import InputError
from rope_onnx.graph.protos import NodeNames
from rope_onnx.io.tensors import external_fields
from rope_onnx.io.validate import all_tensors, check_structure, check_versions

#: protobuf cannot serialise a message of 2 GiB or more.
PROTOBUF_LIMIT = 2**31 - 1
#: onnx's name of the binary protobuf format, the one it reads where the extension names none.
_BINARY = "protobuf"


@dataclass(frozen=True)
class ExternalRef:
    """One tensor whose bytes live in a file next to the model."""

    tensor: str
    location: str  # as written in the model, relative to the model's folder
    offset: int
    length: int | None


@dataclass
class LoadedModel:
    """A parsed graph, the file it came from, and the external data it points at."""

    model: ModelProto
    path: Path
    external: list[ExternalRef]
    #: Each node's names as the checks read them (for ``GraphIndex(model, names=...)``); valid only
    #: while the graph is as loaded, so only a caller that fuses it at once hands them on.
    names: list[NodeNames] | None = field(default=None, repr=False, compare=False)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def files(self) -> list[Path]:
        """The model file and every external data file it references: nothing may overwrite them.

        Locations are deduplicated as strings before they become paths: a 70B export has one data
        file and hundreds of references to it, and each Path costs microseconds.
        """
        return [self.path, *sorted({self.folder / location for location in self.locations})]

    @property
    def locations(self) -> list[str]:
        """Each distinct data file location as the model writes it, in first-reference order."""
        return list(dict.fromkeys(ref.location for ref in self.external))


def external_refs(
    model: ModelProto, path: Path | None = None, tensors: Sequence[TensorProto] | None = None
) -> list[ExternalRef]:
    """Every tensor of ``model`` (subgraphs, sparse initializers, attributes and model-local
    functions included) whose data lives outside the proto; a malformed reference is an error.
    ``tensors``: :func:`all_tensors` of the model, or any list holding every external one of them
    in that order (:attr:`~rope_onnx.io.validate.Checked.tensors`), when the caller has it."""
    refs = []
    for tensor in all_tensors(model) if tensors is None else tensors:
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        try:
            location, offset, length = external_fields(tensor)
        except ValueError as exc:
            raise InputError(f"{path or 'model'}: {exc}; the file is corrupt or hostile") from exc
        refs.append(ExternalRef(tensor.name, location, offset, length))
    return refs


def check_external(path: Path, refs: list[ExternalRef], need_data: bool) -> None:
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


def _parse(path: Path) -> tuple[ModelProto, bytes | None]:
    """``onnx.load(path, load_external_data=False)``, step by step, keeping the bytes it parsed.

    The same serializer (chosen by file extension, binary protobuf by default) reads the same
    bytes; binary ones go on to the UTF-8 check, which then need not serialise the model again.
    """
    fmt = serialization.registry.get_format_from_file_extension(os.path.splitext(path)[1]) or _BINARY
    with open(path, "rb") as readable:
        data = readable.read()
    model = serialization.registry.get(fmt).deserialize_proto(data, ModelProto())
    return model, data if fmt == _BINARY else None


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
        model, serialized = _parse(p)
    except (DecodeError, RuntimeWarning, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a readable ONNX model ({type(exc).__name__}); check the file") from exc
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if not model.HasField("graph") or not model.opset_import:
        raise InputError(f"{p}: parses but holds no ONNX graph; is it an ONNX model?")
    check_versions(p, model)
    checked = check_structure(p, model, serialized)  # one walk: the checks and the tensors to search
    refs = external_refs(model, p, checked.tensors)
    check_external(p, refs, need_external_data)
    return LoadedModel(model, p, refs, checked.names)
