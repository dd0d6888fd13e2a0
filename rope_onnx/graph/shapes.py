"""The shape rule: what the pass believes about a tensor's shape when the model also declares one.

Tools rewrite graphs and leave ``value_info`` behind that says less than the graph does (onnxsim declares
``unk__19`` where the Reshape target ends in a constant 16) or, stale, something else.  Inference runs
on a copy without the model's ``value_info`` and without output shapes; a declaration only fills what
inference leaves unknown; where the two disagree on a static size the dim is unknown (docs/guarantees.md).
"""

from __future__ import annotations

import onnx
from onnx import ModelProto


def without_annotations(model: ModelProto) -> ModelProto:
    """A shallow copy of ``model`` for inference: no ``value_info``, outputs typed but not shaped."""
    graph = model.graph
    bare = ModelProto(ir_version=model.ir_version, opset_import=model.opset_import)
    bare.functions.extend(model.functions)
    bare.graph.name = graph.name
    for field in ("node", "input", "initializer", "sparse_initializer"):
        getattr(bare.graph, field).extend(getattr(graph, field))
    for out in graph.output:
        elem = out.type.tensor_type.elem_type if out.type.HasField("tensor_type") else 0
        bare.graph.output.append(onnx.helper.make_tensor_value_info(out.name, elem, None))
    return bare


#: A tensor's type as the index keeps it: element type (0: not a tensor) and dims, None when the
#: rank is unknown; a dim is its size, its dim_param, or None when the model leaves it unnamed.
TypeInfo = tuple[int, tuple[int | str | None, ...] | None]


def _generated(dim: int | str | None) -> bool:
    """A symbol shape inference made up (``unk__N``): it names nothing the graph determines."""
    return isinstance(dim, str) and dim.startswith("unk__")


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
