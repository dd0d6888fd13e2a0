"""Scale: the work of a fuse grows linearly with the graph (counted, never timed).

A residual stream of head-sized width is the shape that made the pass quadratic: every
residual Add is a candidate whose cone reaches back through all earlier layers.  These tests
count the channel evaluations the pass performs, which is what the wall time follows.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.fusion import fuse_model, trace
from rope_onnx.graph import index as graph_index
from rope_onnx.graph import shapes


def _residual_stream(layers: int, width: int = 64) -> onnx.ModelProto:
    """h = x; per layer h = h + h @ W_i (W_i inline, small): 2 nodes and one candidate per layer."""
    nodes, inits, h = [], [], "x"
    rng = np.random.default_rng(0)
    for i in range(layers):
        inits.append(numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [h, f"w{i}"], [f"m{i}"], name=f"layers.{i}/mlp"))
        nodes.append(helper.make_node("Add", [h, f"m{i}"], [f"h{i}"], name=f"layers.{i}/residual"))
        h = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", width])],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _evaluations(model: onnx.ModelProto, monkeypatch: pytest.MonkeyPatch) -> int:
    calls = 0
    original = trace.Tracer._eval

    def counted(self, name: str, k: int):
        nonlocal calls
        calls += 1
        return original(self, name, k)

    monkeypatch.setattr(trace.Tracer, "_eval", counted)
    result = fuse_model(model)
    assert result.fused == 0 and result.skipped == []  # a residual stream is no RoPE site
    return calls


def test_channel_evaluations_grow_linearly_with_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    small = _evaluations(_residual_stream(10), monkeypatch)
    large = _evaluations(_residual_stream(80), monkeypatch)
    assert large <= 8 * small + 8, (small, large)  # 8x the layers; a quadratic pass does ~60x


def test_inline_weights_reach_shape_inference_as_shapes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model without external data is inferred on a copy whose weights are typed inputs."""
    model = _residual_stream(3, width=256)  # 256 KiB weights: over the inline cut
    light = shapes.without_inline_weights(model)
    assert light is not model and not light.graph.initializer
    assert {i.name for i in light.graph.input} == {"x", "w0", "w1", "w2"}
    assert len(model.graph.initializer) == 3  # the model itself is untouched
    stripped = graph_index.GraphIndex(model)
    monkeypatch.setattr(shapes, "INFER_INLINE_LIMIT", 2**62)  # infer with every weight inline
    full = graph_index.GraphIndex(model)
    names = [o for n in model.graph.node for o in n.output]
    assert [stripped.dims(n) for n in names] == [full.dims(n) for n in names]
    assert stripped.dims("h2") == ["param:batch", "param:seq", 256]
