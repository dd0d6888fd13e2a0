"""The half-cache proof of `--target onnx|ort`: a full-width table is handed over as half of itself only
when the graph shows its pairs are equal.  Hand-built graphs: the forms that prove, and look-alikes that
must not (a Concat of two different tensors, a graph-input table, one channel perturbed)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.fusion.ops.repeats import RepeatProver
from rope_onnx.fusion.targets.rotary import pairs
from rope_onnx.graph.index import GraphIndex

W = 8
F = TensorProto.FLOAT


def _model(nodes, inputs, out="t", inits=()) -> GraphIndex:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
        [helper.make_tensor_value_info(out, F, None)],
        initializer=list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return GraphIndex(onnx.shape_inference.infer_shapes(model))


def _freqs() -> list:
    inv = numpy_helper.from_array(np.arange(1, W // 2 + 1, dtype=np.float32), "inv")
    return [helper.make_node("Mul", ["pos", "inv"], ["f"])], inv


def test_cos_of_concat_f_f_repeats_its_halves_but_not_its_pairs() -> None:
    nodes, inv = _freqs()
    nodes += [
        helper.make_node("Concat", ["f", "f"], ["e"], axis=-1),
        helper.make_node("Cos", ["e"], ["c"]),
        helper.make_node("Unsqueeze", ["c", "ax"], ["t"]),
    ]
    ax = numpy_helper.from_array(np.array([1], np.int64), "ax")
    index = _model(nodes, [("pos", ["b", "s", 1])], inits=[inv, ax])
    prover = RepeatProver(index)
    assert prover.repeats("t", pairs(W, 0)) == ""
    assert "not proven equal" in prover.repeats("t", pairs(W, 1))


def test_a_concat_of_two_different_tensors_is_refused() -> None:
    nodes, inv = _freqs()
    nodes += [
        helper.make_node("Mul", ["f", "two"], ["g"]),
        helper.make_node("Concat", ["f", "g"], ["e"], axis=-1),
        helper.make_node("Cos", ["e"], ["t"]),
    ]
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    index = _model(nodes, [("pos", ["b", "s", 1])], inits=[inv, two])
    assert "channels 0 and 4 are not proven equal" in RepeatProver(index).repeats("t", pairs(W, 0))


def test_a_graph_input_table_is_refused_with_a_reason() -> None:
    index = _model([helper.make_node("Identity", ["cos"], ["t"])], [("cos", ["s", W])], out="t")
    assert "graph input" in RepeatProver(index).repeats("cos", pairs(W, 0))
    assert "not proven" in RepeatProver(index).repeats("t", pairs(W, 0))


def test_stacked_repeat_interleave_proves_pairs_and_a_perturbed_constant_does_not() -> None:
    nodes, inv = _freqs()
    nodes += [
        helper.make_node("Unsqueeze", ["f", "last"], ["u"]),
        helper.make_node("Concat", ["u", "u"], ["st"], axis=-1),
        helper.make_node("Reshape", ["st", "shape"], ["r"]),
        helper.make_node("Sin", ["r"], ["t"]),
    ]
    last = numpy_helper.from_array(np.array([-1], np.int64), "last")
    shape = numpy_helper.from_array(np.array([0, 0, W], np.int64), "shape")
    index = _model(nodes, [("pos", [2, 3, 1])], inits=[inv, last, shape])
    assert RepeatProver(index).repeats("t", pairs(W, 1)) == ""
    table = np.repeat(np.arange(W // 2, dtype=np.float32), 2)[None]
    index = _model([], [], out="k", inits=[numpy_helper.from_array(table, "k")])
    assert RepeatProver(index).repeats("k", pairs(W, 1)) == ""
    table[0, 5] += 1e-6
    index = _model([], [], out="k", inits=[numpy_helper.from_array(table, "k")])
    assert "channels 4 and 5" in RepeatProver(index).repeats("k", pairs(W, 1))
