"""Per-site local proof: each fused site against the original nodes it replaced, without weights.

A site's output tensor keeps its name through the fusion, and so do its inputs: ``x`` and the
cos/sin tables as the ORIGINAL graph consumes them (the pass may add a widening node between a
half-width table and the fused node; that node belongs to the fused side of the cut).  So each
site can be cut out of both models at the same three tensors — a backward walk from the site
output that stops at them — and the two small graphs run on random tensors of the site's
shapes.  Nothing upstream of x and the tables is in a cut, hence no weight: this is how a 70B
model is verified on a laptop, and why a site is judged on its own and not through the logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from ..contract import OP_TYPE, attributes_of, is_rope_node
from ..errors import InputError
from .dims import OTHER, DimValues
from .feeds import InputSpec, numpy_dtype, to_bfloat16_grid, value_spec

#: A site cut bigger than this did not stop at x and the tables: the models do not correspond.
MAX_CUT_NODES = 256


@dataclass(frozen=True)
class Site:
    """One fused node and the tensors both models share around it."""

    node: str
    output: str
    x: str
    cos: str  # as the original graph consumes it
    sin: str
    interleaved: int
    rotary_dim: int

    @property
    def cut_inputs(self) -> tuple[str, str, str]:
        return (self.x, self.cos, self.sin)


def producers(graph: onnx.GraphProto) -> dict[str, NodeProto]:
    return {out: node for node in graph.node for out in node.output if out}


def tensor_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    return names | {out for node in graph.node for out in node.output if out}


def _constant(name: str, graph: onnx.GraphProto, made_by: dict[str, NodeProto]) -> bool:
    node = made_by.get(name)
    return any(t.name == name for t in graph.initializer) or (node is not None and node.op_type == "Constant")


def _original_table(name: str, fused: ModelProto, original_names: set[str], site: str) -> str:
    """Follow a table input of the fused node back through nodes the fusion added (widening)."""
    made_by = producers(fused.graph)
    seen = name
    for _ in range(8):
        if seen in original_names:
            return seen
        node = made_by.get(seen)
        data = [i for i in (node.input if node else ()) if i and not _constant(i, fused.graph, made_by)]
        if len(data) != 1:
            break
        seen = data[0]
    raise InputError(
        f"site '{site}': table '{name}' of the fused node does not lead back to a tensor of the original "
        "model; the two models do not correspond"
    )


def find_sites(original: ModelProto, fused: ModelProto) -> list[Site]:
    """The RoPECustomer nodes of ``fused``, each with the tensors it shares with ``original``."""
    names = tensor_names(original.graph)
    sites = []
    for node in fused.graph.node:
        if not is_rope_node(node):
            continue
        label = node.name or node.output[0]
        if len(node.input) != 3 or len(node.output) != 1:
            raise InputError(f"{OP_TYPE} node '{label}' must have 3 inputs and 1 output")
        for tensor in (node.output[0], node.input[0]):
            if tensor not in names:
                raise InputError(
                    f"site '{label}': tensor '{tensor}' is not in the original model; the two models do not "
                    "correspond (the fused model must come from the original)"
                )
        attrs = attributes_of(node)
        cos, sin = (_original_table(t, fused, names, label) for t in node.input[1:3])
        sites.append(
            Site(label, node.output[0], node.input[0], cos, sin, attrs.interleaved, attrs.rotary_dim)
        )
    return sites


def cut(model: ModelProto, output: str, stops: tuple[str, ...], site: str, weights: bool) -> ModelProto:
    """The subgraph of ``model`` computing ``output`` from the tensors ``stops`` (graph inputs of the cut).

    Constants it needs come along (inline initializers and Constant nodes); a weight stored
    outside the file, or a model input the walk reaches, means the cut is not local: refused.
    """
    graph = model.graph
    made_by = producers(graph)
    inits = {t.name: t for t in graph.initializer}
    chosen: set[int] = set()
    needed_inits: list[TensorProto] = []
    stack, seen = [output], set(stops)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = made_by.get(name)
        if node is None:
            tensor = inits.get(name)
            if tensor is None:
                raise InputError(
                    f"site '{site}': '{output}' depends on model input '{name}' besides x, cos "
                    "and sin; it cannot be proved locally, verify without --sites"
                )
            if tensor.data_location == TensorProto.EXTERNAL and not weights:
                raise InputError(
                    f"site '{site}': the cut needs the stored weight '{name}'; verify without --sites"
                )
            needed_inits.append(tensor)
            continue
        chosen.add(id(node))
        if len(chosen) > MAX_CUT_NODES:
            raise InputError(
                f"site '{site}': '{output}' is not enclosed by x, cos and sin (cut exceeds "
                f"{MAX_CUT_NODES} nodes); the two models do not correspond"
            )
        stack.extend(i for i in node.input if i)
    nodes = [n for n in graph.node if id(n) in chosen]
    inputs = [helper.make_empty_tensor_value_info(s) for s in stops]
    sub = helper.make_graph(
        nodes, f"site_{site}", inputs, [helper.make_empty_tensor_value_info(output)], initializer=needed_inits
    )
    result = helper.make_model(sub, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    result.functions.extend(model.functions)
    return result


def declare_inputs(
    cut_model: ModelProto, specs: dict[str, InputSpec], shapes: dict[str, tuple[int, ...]]
) -> None:
    """Give the cut's inputs their element type and the concrete shapes chosen for this run."""
    for value in cut_model.graph.input:
        value.CopyFrom(
            helper.make_tensor_value_info(value.name, specs[value.name].elem_type, list(shapes[value.name]))
        )


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


def site_shapes(
    site: Site, specs: dict[str, InputSpec], dims: DimValues, head_widths: dict[str, int]
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for x, cos, sin: the same symbol gets the same value; unknown dims of the
    tables take x's value at the axis they broadcast against, so the cut runs as the model does."""
    x = specs.get(site.x)
    if x is None or x.dims is None or not isinstance(x.dims[-1], int) or x.dims[-1] <= 0:
        raise InputError(
            f"site '{site.node}': the shape of x '{site.x}' is unknown (need at least its last "
            "dim); export with static head sizes or verify without --sites"
        )

    def value(d) -> int | None:
        if isinstance(d, int) and d > 0:
            return d
        return dims.resolve(d) if isinstance(d, str) else None

    x_shape = [value(d) for d in x.dims]
    tables = {}
    for name in (site.cos, site.sin):
        spec = specs.get(name)
        if spec is None or spec.dims is None:
            raise InputError(
                f"site '{site.node}': the shape of table '{name}' is unknown; verify without --sites"
            )
        tables[name] = [value(d) for d in spec.dims]

    def align(fill_x: bool) -> None:  # leading table dims broadcast against x[..., :R], right-aligned
        for table in tables.values():
            for axis in range(2, len(table) + 1):
                x_axis = len(x_shape) - axis
                x_dim = x_shape[x_axis] if x_axis >= 0 else None
                if table[-axis] is None:
                    table[-axis] = x_dim
                elif fill_x and x_dim is None and table[-axis] != 1:
                    x_shape[x_axis] = table[-axis]

    align(fill_x=True)
    x_shape = [OTHER if d is None else d for d in x_shape]
    align(fill_x=False)
    rotary = site.rotary_dim or x_shape[-1]
    shapes = {site.x: tuple(x_shape)}
    for name, table in tables.items():
        if table[-1] is None:
            table[-1] = head_widths.get(name, rotary)
        shapes[name] = tuple(1 if d is None else d for d in table)
    return shapes


def random_inputs(
    site: Site, specs: dict[str, InputSpec], shapes: dict[str, tuple[int, ...]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """x ~ N(0, 1); tables ~ U(-1, 1): arbitrary tables, since the op is exact for any (SPEC §2)."""
    arrays = {}
    for name in site.cut_inputs:
        shape, elem = shapes[name], specs[name].elem_type
        raw = rng.standard_normal(shape) if name == site.x else rng.uniform(-1.0, 1.0, shape)
        array = raw.astype(numpy_dtype(elem))
        arrays[name] = to_bfloat16_grid(array) if elem == TensorProto.BFLOAT16 else array
    return arrays


def widened_width(fused: ModelProto, table_input: str) -> int | None:
    """Last dim of the original table behind a widening Gather (its largest index + 1), if any."""
    node = producers(fused.graph).get(table_input)
    if node is None or node.op_type != "Gather":
        return None
    for tensor in fused.graph.initializer:
        if tensor.name == node.input[1]:
            return int(numpy_helper.to_array(tensor).max()) + 1
    return None
