"""A table dim only the model's value_info gives is a claim: it never proves a site (issue 11).

ONNX Runtime plans buffers from value_info but does not check every declaration at run time, so a
table whose rows nothing in the graph determines (a Reshape to a run-time shape) and which value_info
calls ``[1, 1, 1, D]`` may really have 5 rows: the original broadcasts x to them, RoPECustomer cannot.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.fusion import fuse_model
from rope_onnx.fusion.dimproof import DimProver
from rope_onnx.graph.index import GraphIndex

D = 16


def _site(value_info: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
    """rotate_half RoPE of x [1, 2, L, D] with tables ``Reshape(flat, shape)``, shape a graph input."""
    nodes = [
        helper.make_node("Reshape", ["cflat", "shape"], ["cos"]),
        helper.make_node("Reshape", ["sflat", "shape"], ["sin"]),
        helper.make_node("Slice", ["x", "zero", "half", "axis"], ["x1"]),
        helper.make_node("Slice", ["x", "half", "full", "axis"], ["x2"]),
        helper.make_node("Neg", ["x2"], ["nx2"]),
        helper.make_node("Concat", ["nx2", "x1"], ["rot"], axis=-1),
        helper.make_node("Mul", ["x", "cos"], ["a"]),
        helper.make_node("Mul", ["rot", "sin"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    bounds = [
        numpy_helper.from_array(np.array([v], np.int64), n)
        for n, v in (("zero", 0), ("half", D // 2), ("full", D), ("axis", -1))
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "L", D]),
        helper.make_tensor_value_info("cflat", TensorProto.FLOAT, ["N"]),
        helper.make_tensor_value_info("sflat", TensorProto.FLOAT, ["N"]),
        helper.make_tensor_value_info("shape", TensorProto.INT64, [4]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        bounds,
        value_info=value_info,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_a_table_dim_only_value_info_gives_does_not_prove_the_site() -> None:
    lie = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 1, D]) for n in ("cos", "sin")]
    model = _site(lie)
    before = model.SerializeToString()
    result = fuse_model(model)
    assert result.fused == 0 and model.SerializeToString() == before
    assert len(result.skipped) == 1
    assert "a claim, not a proof" in result.skipped[0].reason, result.skipped[0].reason


def test_without_the_claim_the_same_site_is_refused_for_the_unknown_dim() -> None:
    result = fuse_model(_site([]))
    assert result.fused == 0 and len(result.skipped) == 1
    assert "a claim" not in result.skipped[0].reason


def _gather_nd_model(batch_dims: int) -> onnx.ModelProto:
    # behind a com.microsoft op ONNX inference cannot type, so only the op rules know "rows"
    graph = helper.make_graph(
        [
            helper.make_node("FastGelu", ["stored"], ["table"], domain="com.microsoft"),
            helper.make_node("GatherND", ["table", "pos"], ["rows"], batch_dims=batch_dims),
        ],
        "g",
        [
            helper.make_tensor_value_info("stored", TensorProto.FLOAT, [128, 8]),
            helper.make_tensor_value_info("pos", TensorProto.INT64, [1, "seq", 1]),
        ],
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, None)],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def test_gather_nd_rows_are_named_by_the_positions_dims() -> None:
    # dynamo gathers GPT-J's sin/cos rows with GatherND: indices[:-1] + data[batch_dims + m:]
    index = GraphIndex(_gather_nd_model(0))
    assert index.dims("rows") is None  # inference stopped at FastGelu
    assert DimProver(index).dims("rows") == [1, "param:seq", 8]


def test_a_reshape_minus_one_cancels_equal_symbols() -> None:
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "target"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 1, 4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, -1, 1, 8], np.int64), "target")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    assert DimProver(GraphIndex(model)).dims("y") == [1, "param:seq", 1, 8]
