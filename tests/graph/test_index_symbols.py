"""Symbols the pass's own inference makes up never meet the model's declared ones (graph/shapes.py)."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from rope_onnx.graph.index import GraphIndex


def _model(declared_elsewhere: str) -> onnx.ModelProto:
    """``r`` is a Reshape to a shape read from an input: inference names its dims afresh (``unk__N``);
    ``v`` is a tensor the model's value_info annotates with ``declared_elsewhere``."""
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Relu", ["y"], ["v"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [6]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("r", "v")],
        value_info=[helper.make_tensor_value_info("v", TensorProto.FLOAT, [declared_elsewhere, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_an_inferred_symbol_is_not_the_declared_symbol_of_the_same_name() -> None:
    index = GraphIndex(_model("unk__0"))
    made_up = index.dims("r")
    assert made_up is not None and all(isinstance(d, str) for d in made_up), made_up
    declared = index.dims("v")
    assert declared == ["param:unk__0", 3]
    # whatever names inference chose (onnx numbers them unk__0, unk__1, ...), none is the declared one
    assert not set(made_up) & set(declared), (made_up, declared)
    assert all(d.startswith("infer:") for d in made_up)


def test_a_graph_input_symbol_inference_propagates_stays_the_models() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    index = GraphIndex(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert index.dims("y") == ["param:seq", 4]
