"""Inputs a user does not have to write: feeds generated from the model's own input specs.

LLM exports take a handful of inputs whose values must make sense together, or the model
computes garbage (or fails) for reasons unrelated to RoPE: token ids must index the embedding
table, the attention mask must span past + current tokens, positions must count on from the
past length, and the past key/values must have the declared shapes.  Inputs are recognised by
the names every exporter uses (HF/optimum, TorchScript, dynamo); anything else gets random
values of its declared shape.  The vocabulary size is read from the shape of the embedding
table the ids index — the graph declares it, so no weight is loaded.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnx import ModelProto, TensorProto, helper

from rope_onnx.errors import InputError
from rope_onnx.verify.dims import PAST, SEQUENCE, DimValues

Dim = int | str | None  # a fixed size, a symbol, or unknown


@dataclass(frozen=True)
class InputSpec:
    name: str
    elem_type: int
    dims: tuple[Dim, ...] | None  # None: rank unknown

    @property
    def role(self) -> str:
        return role_of(self.name)


@dataclass
class Feeds:
    arrays: dict[str, np.ndarray]
    dims: dict[str, int]
    notes: list[str] = field(default_factory=list)


def role_of(name: str) -> str:
    n = name.lower()
    if "input_ids" in n:
        return "ids"
    if "attention_mask" in n:
        return "mask"
    if "position_ids" in n:
        return "positions"
    if "cache_position" in n:
        return "cache_position"
    if n.startswith(("past", "cache")) or ".past" in n or "past_key" in n:
        return "past"
    if "token_type_ids" in n:
        return "zeros"
    return "other"


def _dim(d) -> Dim:
    if d.HasField("dim_value"):
        return d.dim_value
    if d.HasField("dim_param"):
        return d.dim_param
    return None


def value_spec(value) -> InputSpec:
    tensor = value.type.tensor_type
    dims = tuple(_dim(d) for d in tensor.shape.dim) if tensor.HasField("shape") else None
    return InputSpec(value.name, tensor.elem_type, dims)


def input_specs(model: ModelProto) -> list[InputSpec]:
    """The graph inputs a caller must feed (initializers listed as inputs are not fed)."""
    init = {t.name for t in model.graph.initializer}
    return [value_spec(v) for v in model.graph.input if v.name not in init]


def numpy_dtype(elem_type: int) -> np.dtype:
    """The NumPy type fed to ONNX Runtime; bfloat16 runs upcast to float32 (no bf16 arithmetic on CPU)."""
    if elem_type == TensorProto.BFLOAT16:
        return np.dtype(np.float32)
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def to_bfloat16_grid(values: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), kept as float32."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def vocabulary_size(model: ModelProto, ids_name: str) -> int | None:
    """Rows of the embedding table indexed by ``ids_name`` (through Cast/Identity), from its dims."""
    graph = model.graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            shapes[node.output[0]] = list(node.attribute[0].t.dims)
    names, sizes = {ids_name}, []
    for node in graph.node:  # graph order is topological: aliases are seen before their users
        if node.op_type in ("Cast", "Identity") and node.input[0] in names:
            names.add(node.output[0])
        elif node.op_type == "Gather" and len(node.input) > 1 and node.input[1] in names:
            data = shapes.get(node.input[0])
            if data:
                sizes.append(data[0])
    return min(sizes) if sizes else None


def assign_role_dims(specs: list[InputSpec], dims: DimValues) -> None:
    """Give batch/sequence/past/total symbols their values from the inputs that carry them."""
    by_role: dict[str, list[InputSpec]] = {}
    for spec in specs:
        by_role.setdefault(spec.role, []).append(spec)

    def symbols(spec: InputSpec) -> list[str]:
        return [d for d in spec.dims or () if isinstance(d, str)]

    for spec in by_role.get("ids", []) + by_role.get("positions", []):
        if spec.dims and len(spec.dims) >= 2 and isinstance(spec.dims[0], str):
            dims.assign(spec.dims[0], 2)
        if spec.dims and isinstance(spec.dims[-1], str):
            dims.assign(spec.dims[-1], SEQUENCE)
    for spec in by_role.get("cache_position", []):
        if spec.dims and isinstance(spec.dims[-1], str):
            dims.assign(spec.dims[-1], SEQUENCE)
    for spec in by_role.get("past", []):
        syms = symbols(spec)
        if syms and syms[0] not in dims.values and spec.dims and spec.dims[0] == syms[0]:
            dims.assign(syms[0], 2)  # a model without input_ids: the batch is the past's first dim
        for sym in syms:
            if sym not in dims.values and dims.evaluate(sym) is None:
                dims.assign(sym, PAST)
    for spec in by_role.get("mask", []):
        if spec.dims and len(spec.dims) >= 2 and isinstance(spec.dims[0], str):
            dims.assign(spec.dims[0], 2)
        if spec.dims and isinstance(spec.dims[-1], str) and dims.evaluate(spec.dims[-1]) is None:
            dims.assign(spec.dims[-1], past_length(specs, dims) + sequence_length(specs, dims))


def past_length(specs: list[InputSpec], dims: DimValues) -> int:
    """Length of the cache, read from the first past input (axis -2: [B, H, P, D] in every exporter)."""
    for spec in specs:
        if spec.role == "past" and spec.dims and len(spec.dims) >= 2:
            return concrete(spec.dims[-2], dims)
    return 0


def sequence_length(specs: list[InputSpec], dims: DimValues) -> int:
    for spec in specs:
        if spec.role in ("ids", "positions", "cache_position") and spec.dims:
            return concrete(spec.dims[-1], dims)
    return SEQUENCE


def concrete(dim: Dim, dims: DimValues) -> int:
    if isinstance(dim, int) and dim > 0:
        return dim
    if isinstance(dim, str):
        return dims.resolve(dim)
    return 1


def shape_of(spec: InputSpec, dims: DimValues) -> tuple[int, ...]:
    if spec.dims is None:
        raise InputError(f"input '{spec.name}' declares no shape; pass real feeds with --inputs FEEDS.npz")
    return tuple(concrete(d, dims) for d in spec.dims)


def generate(model: ModelProto, specs: list[InputSpec], dims: DimValues, seed: int) -> Feeds:
    """Random but meaningful feeds for every input of ``model``."""
    rng = np.random.default_rng(seed)
    assign_role_dims(specs, dims)
    notes: list[str] = []
    past = past_length(specs, dims)
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        shape, dtype, role = shape_of(spec, dims), numpy_dtype(spec.elem_type), spec.role
        array: np.ndarray
        if role == "ids":
            vocab = vocabulary_size(model, spec.name)
            if vocab is None:
                vocab = 32
                notes.append(f"no embedding table found for '{spec.name}': token ids drawn from [0, {vocab})")
            array = rng.integers(0, vocab, size=shape)
        elif role == "mask":
            array = np.ones(shape)
        elif role in ("positions", "cache_position"):
            array = np.broadcast_to(np.arange(past, past + shape[-1]) if shape else np.array(past), shape)
        elif role == "zeros" or dtype.kind in "iu":
            array = np.zeros(shape)
        elif dtype.kind == "b":
            array = np.ones(shape)
        else:
            array = rng.standard_normal(size=shape)
        array = np.ascontiguousarray(array).astype(dtype)
        if spec.elem_type == TensorProto.BFLOAT16:
            array = to_bfloat16_grid(array)
        arrays[spec.name] = array
    return Feeds(arrays, dict(dims.values), notes)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, each header checked against its member's size before any read.

    A member whose header declares more bytes than it holds (a 4 TB array in a 1 KB file) would
    make numpy allocate the declared size first; a corrupt zip, an empty file or a lone ``.npy``
    are not feeds.  Every such case is one :class:`InputError`.
    """
    hint = "give an .npz written by numpy.savez"
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(member)
                    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if declared > info.file_size:
                    raise InputError(
                        f"{path}: feeds member '{info.filename}' declares {declared} bytes "
                        f"{tuple(shape)} but holds {info.file_size}; the file is corrupt"
                    )
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, AttributeError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: cannot read feeds ({first}); {hint}") from exc


def load_feeds(path: Path, specs: list[InputSpec]) -> Feeds:
    """Real feeds from an ``.npz`` file, checked to fit the model (names, dtypes, shapes, symbols)."""
    arrays = _read_npz(path)
    names = {s.name for s in specs}
    missing, extra = sorted(names - set(arrays)), sorted(set(arrays) - names)
    if missing or extra:
        raise InputError(
            f"{path}: feeds do not fit the model: missing {missing or 'none'}, unknown {extra or 'none'}"
        )
    symbols: dict[str, int] = {}
    for spec in specs:
        array, want = arrays[spec.name], numpy_dtype(spec.elem_type)
        if array.dtype != want and not (spec.elem_type == TensorProto.BFLOAT16 and array.dtype.itemsize == 2):
            raise InputError(f"{path}: feed '{spec.name}' is {array.dtype}, the model takes {want}")
        if spec.elem_type == TensorProto.BFLOAT16 and array.dtype != want:  # raw bfloat16 bits
            array = (array.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        arrays[spec.name] = array
        if spec.dims is None:
            continue
        if array.ndim != len(spec.dims):
            raise InputError(
                f"{path}: feed '{spec.name}' has rank {array.ndim}, the model takes {len(spec.dims)}"
            )
        for axis, (size, dim) in enumerate(zip(array.shape, spec.dims, strict=True)):
            if isinstance(dim, int) and dim > 0 and size != dim:
                raise InputError(
                    f"{path}: feed '{spec.name}' axis {axis} is {size}, the model fixes it to {dim}"
                )
            if isinstance(dim, str) and symbols.setdefault(dim, size) != size:
                raise InputError(
                    f"{path}: feed '{spec.name}' axis {axis} is {size}, "
                    f"but '{dim}' is {symbols[dim]} elsewhere"
                )
    base = DimValues({k: v for k, v in symbols.items() if "+" not in k})
    for name, size in symbols.items():
        expected = base.evaluate(name) if "+" in name else None
        if expected is not None and expected != size:
            raise InputError(f"{path}: feeds give '{name}' = {size}, but its terms add up to {expected}")
    return Feeds(arrays, symbols)
