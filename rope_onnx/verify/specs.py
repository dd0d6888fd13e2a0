"""What each tensor of a model is, as far as a site cut needs it: element type and shape.

Declarations and shape inference tell most of it without reading a weight (stored tensors become
typed inputs for inference); where inference lost a site input's shape, the fusion pass's own proof
(its rank and width) fills it in.  :mod:`.sites` and :mod:`.local` choose concrete shapes from these.
"""

from __future__ import annotations

import onnx
from onnx import ModelProto, TensorProto, helper

from rope_onnx.fusion.trace import Tracer
from rope_onnx.graph.index import GraphIndex
from rope_onnx.verify.dims import DimValues
from rope_onnx.verify.feeds import InputSpec, value_spec

__all__ = ["complete_specs", "concrete_shape", "known_specs"]


def known_specs(model: ModelProto) -> dict[str, InputSpec]:
    """Element type and shape of every tensor shape inference can tell, weights left on disk."""
    graph_only = ModelProto()
    graph_only.CopyFrom(model)
    inits = graph_only.graph.initializer
    stored = [
        InputSpec(t.name, t.data_type, tuple(t.dims))
        for t in inits
        if t.data_location == TensorProto.EXTERNAL
    ]
    kept = [t for t in inits if t.data_location != TensorProto.EXTERNAL]
    del inits[:]
    inits.extend(kept)
    for spec in stored:  # inference reads no data file: a stored tensor becomes a typed input
        graph_only.graph.input.append(helper.make_tensor_value_info(spec.name, spec.elem_type, spec.dims))
    try:
        inferred = onnx.shape_inference.infer_shapes(graph_only, strict_mode=False, data_prop=True)
    except Exception:  # inference is best effort; declared types remain
        inferred = graph_only
    graph = inferred.graph
    specs = {v.name: value_spec(v) for v in (*graph.input, *graph.value_info, *graph.output)}
    for tensor in graph.initializer:
        specs[tensor.name] = InputSpec(tensor.name, tensor.data_type, tuple(tensor.dims))
    specs.update((spec.name, spec) for spec in stored)
    return specs


def complete_specs(model: ModelProto, specs: dict[str, InputSpec], names: set[str]) -> None:
    """Fill in shapes onnx shape inference lost for site inputs, from the fusion pass's own proof.

    After a Slice with computed bounds or a TorchScript ``If`` inference may know nothing of x;
    the pass proved its rank and width (``Tracer.leaf_dims``), which is all a site's cut needs.
    """
    missing = {
        n
        for n in names
        if (spec := specs.get(n)) is None or not spec.dims or not isinstance(spec.dims[-1], int)
    }
    if not missing:
        return
    tracer = Tracer(GraphIndex(model))
    for name in sorted(missing):
        dims = tracer.leaf_dims(name)
        elem = specs[name].elem_type if name in specs else tracer.index.elem_type(name)
        if dims is not None and isinstance(dims[-1], int):
            # "param:seq" -> "seq"; a dim nobody named stays unknown (None) as inference leaves it
            named = tuple(
                d if isinstance(d, int) else d.split(":", 1)[1] if d.startswith("param:") else None
                for d in dims
            )
            specs[name] = InputSpec(name, elem, named)


def concrete_shape(spec: InputSpec | None, dims: DimValues) -> tuple[int, ...] | None:
    """The shape a tensor has at the chosen dims, or None if inference left a dim unknown."""
    if spec is None or spec.dims is None:
        return None
    shape = []
    for d in spec.dims:
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif isinstance(d, str):
            shape.append(dims.resolve(d))
        else:
            return None
    return tuple(shape)
