"""The shape rule: what the pass believes about a tensor's shape when the model also declares one.

Tools rewrite graphs and leave ``value_info`` behind that says less than the graph does (onnxsim declares
``unk__19`` where the Reshape target ends in a constant 16) or, stale, something else.  Inference runs
on a copy without the model's ``value_info`` and without output shapes; a declaration only fills what
inference leaves unknown; where the two disagree on a static size the dim is unknown (docs/guarantees.md).
A dim only a declaration gives (:func:`declared_axes`) is a claim nothing in the graph checked: a proof
that can name the dim by its source (fusion/dimproof.py) is used instead; the claim stands only where
nothing else is known.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from typing import TypeVar

import onnx
from onnx import GraphProto, ModelProto, TensorProto, ValueInfoProto

__all__ = [
    "InferredSymbol",
    "TypeInfo",
    "declared_axes",
    "dim_name",
    "mark_generated",
    "merge_one",
    "merge_types",
    "split_inline_weights",
    "split_undeclared",
    "unshaped_outputs",
    "without_annotations",
    "without_inline_weights",
]


T = TypeVar("T")
#: Inline initializers larger than this (bytes) reach shape inference as typed inputs, not data.
INFER_INLINE_LIMIT = 64 * 1024
#: The graph fields shape inference is given: the graph itself, without what the model says about it.
_INFERRED_FIELDS = frozenset({"name", "node", "input", "initializer", "sparse_initializer"})


def without_annotations(model: ModelProto) -> ModelProto:
    """A copy of ``model`` for inference: no ``value_info``, outputs typed but not shaped.

    The graph is copied whole and then cleared (one C++ copy: a third of the time of extending the
    fields one message at a time); its inline weights are copied too, so the index drops large ones
    first (:func:`without_inline_weights`).
    """
    graph = model.graph
    bare = ModelProto(ir_version=model.ir_version, opset_import=model.opset_import)
    bare.functions.extend(model.functions)
    bare.graph.CopyFrom(graph)
    for field in bare.graph.DESCRIPTOR.fields:
        if field.name not in _INFERRED_FIELDS:
            bare.graph.ClearField(field.name)
    bare.graph.output.extend(unshaped_outputs(graph))
    return bare


def unshaped_outputs(graph: GraphProto) -> list[ValueInfoProto]:
    """The graph's outputs as inference is given them: typed, not shaped."""
    outputs = []
    for out in graph.output:
        elem = out.type.tensor_type.elem_type if out.type.HasField("tensor_type") else 0
        outputs.append(onnx.helper.make_tensor_value_info(out.name, elem, None))
    return outputs


def without_inline_weights(model: ModelProto) -> ModelProto:
    """``model`` with its large inline initializers turned into typed graph inputs.

    Shape inference serialises the model it is given: a model saved without external data
    (up to 2 GB of inline weights) would be copied twice more, for nothing — inference needs
    only a weight's type and shape.  Values matter only for small integer tensors (Reshape
    targets, Slice bounds …), all far below the cut.  Models with external data are passed as
    they are (their initializers carry no bytes).
    """
    graph = model.graph
    split = split_inline_weights(graph)
    if split is None:
        return model
    kept, typed = split
    light = ModelProto(ir_version=model.ir_version, opset_import=model.opset_import)
    light.functions.extend(model.functions)
    light.graph.name = graph.name
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(light.graph, field).extend(getattr(graph, field))
    light.graph.initializer.extend(kept)
    light.graph.input.extend(typed)
    return light


def split_inline_weights(graph: GraphProto) -> tuple[list[TensorProto], list[ValueInfoProto]] | None:
    """(the initializers inference is given, typed inputs for the large inline ones no input
    declares), in graph order; None where no initializer is over :data:`INFER_INLINE_LIMIT`."""
    kept: list[TensorProto] = []
    typed: list[ValueInfoProto] = []
    declared = {i.name for i in graph.input}
    for tensor in graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL or tensor.ByteSize() <= INFER_INLINE_LIMIT:
            kept.append(tensor)
        elif tensor.name not in declared:
            typed.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    return None if len(kept) == len(graph.initializer) else (kept, typed)


#: A tensor's type as the index keeps it: element type (0: not a tensor) and dims, None when the
#: rank is unknown; a dim is its size, its dim_param, or None when the model leaves it unnamed.
TypeInfo = tuple[int, tuple[int | str | None, ...] | None]


class InferredSymbol(str):
    """A symbol this pass's own inference run made up (``unk__N``), not one the model declares.

    Inference runs on a copy without ``value_info``, so its fresh names can be the very names the
    model's annotations use for other dims (onnxsim writes ``unk__N`` there too: in a real onnxsim
    copy 59 of 60 names collided).  Kept apart by type, the two can never be taken for one dim;
    inference's own reuse of a name (it propagates a dim through an op) still names one dim.
    """

    __slots__ = ()


def mark_generated(info: TypeInfo, declared_params: set[str]) -> TypeInfo:
    """``info`` from inference with each symbol no graph input declares marked :class:`InferredSymbol`."""
    elem, dims = info
    if dims is None:
        return info
    return elem, tuple(
        InferredSymbol(d) if isinstance(d, str) and d not in declared_params else d for d in dims
    )


def dim_name(dim: int | str | None, tensor: str, axis: int) -> int | str:
    """A dim as the pass compares it: its size; ``param:<name>`` for a symbol the model declares (ONNX
    and ONNX Runtime take equal names for equal sizes); ``infer:<name>`` for one inference made up;
    ``dim:<tensor>:<axis>`` for a dim nothing names (equal to itself only)."""
    if isinstance(dim, int):
        return dim
    if dim is None:
        return f"dim:{tensor}:{axis}"
    return f"infer:{dim}" if isinstance(dim, InferredSymbol) else f"param:{dim}"


def _generated(dim: int | str | None) -> bool:
    """A symbol shape inference made up: it names nothing the graph determines."""
    return isinstance(dim, InferredSymbol)


def _merge_dim(declared: int | str | None, inferred: int | str | None) -> int | str | None:
    if isinstance(inferred, int):
        # the annotation contradicts the graph: neither is trusted
        return None if isinstance(declared, int) and declared != inferred else inferred
    if isinstance(declared, int) or (declared is not None and (inferred is None or _generated(inferred))):
        return declared
    return inferred


def merge_types(declared: TypeInfo, inferred: TypeInfo) -> TypeInfo:
    """Inference first; the declaration fills its gaps; a static contradiction makes the dim unknown."""
    (d_elem, d_dims), (i_elem, i_dims) = declared, inferred
    elem = i_elem
    if d_elem and i_elem != d_elem:
        elem = d_elem if not i_elem else 0
    if d_dims is None:
        return elem, i_dims
    if i_dims is None:
        return elem, d_dims
    if len(i_dims) != len(d_dims):
        return elem, i_dims
    return elem, tuple(_merge_dim(d, i) for d, i in zip(d_dims, i_dims, strict=True))


def declared_axes(declared: TypeInfo, inferred: TypeInfo | None) -> frozenset[int]:
    """The axes whose merged dim is the declaration's alone: inference gave none, or a fresh symbol.

    ``inferred`` None: inference said nothing about the tensor, so every declared axis is a claim.
    """
    d_dims = declared[1]
    if d_dims is None:
        return frozenset()
    i_dims = None if inferred is None else inferred[1]
    if i_dims is None:
        return frozenset(range(len(d_dims)))
    if len(i_dims) != len(d_dims):
        return frozenset()
    return frozenset(
        axis
        for axis, (d, i) in enumerate(zip(d_dims, i_dims, strict=True))
        if d is not None and _merge_dim(d, i) == d and (i is None or _generated(i) or d != i)
    )


def merge_one(
    declared: TypeInfo | None, inferred: Sequence[TypeInfo], *, unchecked_is_claim: bool
) -> tuple[TypeInfo | None, frozenset[int]]:
    """One tensor's merged type and the axes only a declaration sizes: ``declared`` merged with each
    type inference gave the tensor, in order (a tensor typed twice merges on the first).

    Each tensor's answer depends only on its own declaration and inferred types, so the index
    merges a tensor when it is first asked about (onnxsim and onnxslim declare every tensor; a fuse
    of an onnxslim'd 70B-shaped export asks about 2,096 of its 7,012).  The claims are those of the
    last merge that made any; where inference said nothing about a declared tensor, every declared
    axis is a claim when ``unchecked_is_claim`` (not a graph input, whose declaration is the contract,
    and inference ran).
    """
    current, claimed = declared, frozenset[int]()
    for typed in inferred:
        if current is not None and (axes := declared_axes(current, typed)):
            claimed = axes
        current = typed if current is None else merge_types(current, typed)
    if not inferred and current is not None and unchecked_is_claim:
        claimed = declared_axes(current, None)
    return current, claimed


def split_undeclared(
    inferred: Iterable[tuple[str, T]], declared: Container[str]
) -> tuple[list[tuple[str, T]], dict[str, T]]:
    """Inference's types split into those :func:`merge_one` needs and those it would only copy.

    Needed, in their order: every type of a tensor the model declares (the claims come from those) and
    of a tensor inference types twice (each merges on the one before).  The rest, one type each and
    most of the graph, :func:`merge_one` would return as they are: the dict holds them for the index
    to convert when asked (a fuse reads about a fifth of a model's tensors).
    """
    now: list[tuple[str, T]] = []
    once: dict[str, T] = {}
    twice: set[str] = set()
    for name, value in inferred:
        if name in declared or name in twice:
            now.append((name, value))
        elif name in once:
            twice.add(name)
            now += ((name, once.pop(name)), (name, value))
        else:
            once[name] = value
    return now, once
