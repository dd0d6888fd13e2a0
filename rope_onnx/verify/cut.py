"""Cutting one site out of a model: the nodes from (x, cos, sin) to the site's output, no weights.

A backward walk from the site output stops at x and the tables.  Exporters compute Reshape
targets and Slice bounds from ``Shape`` of tensors outside the site (hidden_states, input_ids,
an attention mask …); following those would drag in the network and its weights.  A cut is run
at one set of concrete shapes anyway, so such a ``Shape`` node becomes a constant holding the
shape the chosen dims give that tensor.  A model input the walk still reaches is fed like in a
full run (same dims, same generator), so the cut stays consistent with the site's shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from rope_onnx.errors import InputError
from rope_onnx.graph.index import outer_inputs

#: A site cut bigger than this did not stop at x and the tables: the models do not correspond.
MAX_CUT_NODES = 256

ShapeOf = Callable[[str], "tuple[int, ...] | None"]


def producers(graph) -> dict[str, NodeProto]:
    return {out: node for node in graph.node for out in node.output if out}


def consumers(graph) -> dict[str, list[NodeProto]]:
    """The nodes that read each tensor of ``graph`` (once per node, however many inputs it reads it as)."""
    read_by: dict[str, list[NodeProto]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):
            read_by.setdefault(name, []).append(node)
    return read_by


def _shape_constant(node: NodeProto, shape: tuple[int, ...]) -> NodeProto:
    """``Shape(t)`` (with its opset-15 start/end) or ``Size(t)`` as a Constant of the known value."""
    if node.op_type == "Size":
        value = np.array(int(np.prod(shape)), dtype=np.int64)
    else:
        attrs = {a.name: a.i for a in node.attribute}
        value = np.array(shape[attrs.get("start", 0) : attrs.get("end", len(shape))], dtype=np.int64)
    tensor = numpy_helper.from_array(value, node.output[0])
    return helper.make_node("Constant", [], [node.output[0]], name=node.name, value=tensor)


def _computed_from(made_by: dict[str, NodeProto], output: str, stops: set[str]) -> set[str]:
    """Tensors between the stops and ``output``: their shape follows from the cut's own inputs,
    so a ``Shape`` of one must be computed, not frozen from (possibly unknown) inferred dims.

    Only value edges count: a ``Shape`` reads no values, and a table shared by every layer
    must not make the whole network "inside" through it.  The walk is bounded: a path that
    wanders into the network is not part of the site anyway.
    """
    memo: dict[str, bool] = {}
    budget = [4 * MAX_CUT_NODES]

    def depends(name: str) -> bool:
        if name in memo:
            return memo[name]
        memo[name] = name in stops
        node = made_by.get(name)
        if node is not None and name not in stops and node.op_type not in ("Shape", "Size") and budget[0] > 0:
            budget[0] -= 1
            memo[name] = any([depends(i) for i in node.input if i])
        return memo[name]

    depends(output)
    return {name for name, hit in memo.items() if hit}


def cut(
    model: ModelProto,
    output: str,
    stops: tuple[str, ...],
    site: str,
    shape_of: ShapeOf,
    model_inputs: set[str],
) -> tuple[ModelProto, list[str]]:
    """The subgraph of ``model`` computing ``output`` from ``stops``, and the model inputs it also reads.

    ``shape_of(name)`` gives the concrete shape a tensor has at the chosen dims (None if unknown).
    Constants come along (inline initializers and Constant nodes); a stored weight is refused.
    """
    graph = model.graph
    made_by = producers(graph)
    inits = {t.name: t for t in graph.initializer}
    nodes: dict[int, NodeProto] = {}
    needed_inits: list[TensorProto] = []
    extra: list[str] = []
    stack, seen = [output], set(stops)
    inside = _computed_from(made_by, output, set(stops))
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = made_by.get(name)
        if node is None:
            if name in model_inputs:
                extra.append(name)
            elif name in inits and inits[name].data_location != TensorProto.EXTERNAL:
                needed_inits.append(inits[name])
            else:
                raise InputError(
                    f"site '{site}': the cut at x, cos, sin still needs the stored tensor '{name}'; "
                    "verify without --sites"
                )
            continue
        if node.op_type in ("Shape", "Size") and node.input[0] not in stops and node.input[0] not in inside:
            shape = shape_of(node.input[0])
            if shape is not None:
                nodes[id(node)] = _shape_constant(node, shape)
                continue
        nodes[id(node)] = node
        if len(nodes) > MAX_CUT_NODES:
            raise InputError(
                f"site '{site}': '{output}' is not enclosed by x, cos and sin (cut exceeds "
                f"{MAX_CUT_NODES} nodes); the two models do not correspond"
            )
        stack.extend(i for i in (*node.input, *sorted(outer_inputs(node))) if i)
    ordered = [nodes[id(n)] for n in graph.node if id(n) in nodes]
    inputs = [helper.make_empty_tensor_value_info(s) for s in (*stops, *extra)]
    sub = helper.make_graph(
        ordered,
        f"site_{site}",
        inputs,
        [helper.make_empty_tensor_value_info(output)],
        initializer=needed_inits,
    )
    result = helper.make_model(sub, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    result.functions.extend(model.functions)
    return result, extra


def declare_inputs(cut_model: ModelProto, types: dict[str, int], shapes: dict[str, tuple[int, ...]]) -> None:
    """Give the cut's inputs their element type and the concrete shapes chosen for this run."""
    for value in cut_model.graph.input:
        value.CopyFrom(helper.make_tensor_value_info(value.name, types[value.name], list(shapes[value.name])))
