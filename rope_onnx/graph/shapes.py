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


def _generated(dim: onnx.TensorShapeProto.Dimension) -> bool:
    """A symbol shape inference made up (``unk__N``): it names nothing the graph determines."""
    return dim.dim_param.startswith("unk__")


def merge_types(declared: onnx.TypeProto, inferred: onnx.TypeProto) -> onnx.TypeProto:
    """Inference first; the declaration fills its gaps; a static contradiction makes the dim unknown.

    Returns ``declared`` itself when inference adds nothing, else a new message (the model's own
    declarations are never edited).
    """
    if not (declared.HasField("tensor_type") and inferred.HasField("tensor_type")):
        return declared
    d_t, i_t = declared.tensor_type, inferred.tensor_type
    if not i_t.HasField("shape") and (i_t.elem_type in (0, d_t.elem_type)):
        return declared
    merged = onnx.TypeProto()
    merged.CopyFrom(inferred)
    m_t = merged.tensor_type
    if d_t.elem_type and i_t.elem_type != d_t.elem_type:
        m_t.elem_type = d_t.elem_type if not i_t.elem_type else 0
    if not d_t.HasField("shape"):
        return merged
    if not i_t.HasField("shape") or len(i_t.shape.dim) != len(d_t.shape.dim):
        if not i_t.HasField("shape"):
            m_t.shape.CopyFrom(d_t.shape)
        return merged
    for m, d in zip(m_t.shape.dim, d_t.shape.dim, strict=True):
        if m.HasField("dim_value"):
            if d.HasField("dim_value") and d.dim_value != m.dim_value:
                m.Clear()  # the annotation contradicts the graph: neither is trusted
        elif d.HasField("dim_value") or (d.dim_param and (not m.dim_param or _generated(m))):
            m.CopyFrom(d)
    return merged
