"""Folding reads each tensor of an index once (its constant, its producer's names and Shape bounds),
whatever the calls, memos and hints that ask for it; and what it read belongs to that index alone."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

import numpy as np
import pytest
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from rope_onnx.fusion.ops.registry import FOLDERS, fold_ints
from rope_onnx.graph import folding
from rope_onnx.graph.folding import IntValue, NotStatic, int_values
from rope_onnx.graph.index import Dim, GraphIndex


def _model(half: int, start: int = 1) -> ModelProto:
    """``Concat(Unsqueeze(Gather(Shape(x, start), 0)), [half])``: x's dim ``start`` and a constant."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], start=start),
        helper.make_node("Gather", ["s", "i0"], ["g"], axis=0),
        helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Unsqueeze", ["g", "ax"], ["u"]),
        helper.make_node("Concat", ["u", "h"], ["target"], axis=0),
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Sin", ["x"], ["data"]),
    ]
    graph = helper.make_graph(
        nodes,
        "reads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 7, 16])],
        [helper.make_tensor_value_info("target", TensorProto.INT64, None)],
        initializer=[
            numpy_helper.from_array(np.array(0, np.int64), "i0"),
            numpy_helper.from_array(np.array([half], np.int64), "h"),
            numpy_helper.from_array(np.array([0.5], np.float32), "f"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_each_tensor_is_read_from_the_index_once(monkeypatch: pytest.MonkeyPatch) -> None:
    index = GraphIndex(_model(8), infer=False)
    asked: list[str] = []
    entry = folding._Graph.entry
    monkeypatch.setattr(
        folding._Graph, "entry", lambda graph, index, name: asked.append(name) or entry(graph, index, name)
    )
    first = fold_ints(index, "target")
    assert first.values == (7, 8) and first.nodes == frozenset({0, 1, 2, 3, 4})
    # Other calls, other memos, a hint: the same tensors are not read again.
    assert fold_ints(index, "target", memo={}) == first
    assert fold_ints(index, "target", lambda name: [1, 5, 2] if name == "x" else None).values == (5, 8)
    assert sorted(asked) == sorted({"target", "u", "h", "g", "s", "i0"})  # the axes are not folded


def test_failures_are_read_once_and_say_the_same_each_time() -> None:
    index = GraphIndex(_model(8), infer=False)
    for name, why in (
        ("x", "'x' is a graph input, known only at run time"),
        ("f", "constant 'f' is not a 0-D/1-D integer tensor"),
        ("data", "'data' is computed by Sin node '', which is not folded"),
    ):
        for _ in range(2):
            with pytest.raises(NotStatic, match=f"^{why}$"):
                fold_ints(index, name)


def test_what_one_index_read_is_not_used_for_another() -> None:
    """Same tensor names, other constants and Shape bounds: each index answers from its own graph,
    and its reads go with it."""
    small, large = GraphIndex(_model(8), infer=False), GraphIndex(_model(32, start=2), infer=False)
    assert fold_ints(small, "target").values == (7, 8)
    assert fold_ints(large, "target").values == (16, 32)
    assert small in folding._GRAPHS and large in folding._GRAPHS
    gone = weakref.ref(large)
    del large
    gc.collect()
    assert gone() is None  # the reads do not keep an index alive
    assert fold_ints(small, "xs").values == ("param:B", 7, 16)


def _second_if_first_fails(
    index: GraphIndex, node: NodeProto, node_id: int, arg: Callable[[int], IntValue]
) -> tuple[list[Dim], bool, frozenset[int]]:
    try:
        value = arg(0)
    except NotStatic:
        value = arg(1)
    return list(value.values), value.scalar, value.nodes


def test_a_folder_that_recovers_reads_its_own_next_input() -> None:
    """Every folder gets one ``arg``: after input 0 failed two levels down (inside an Identity chain
    into a Sin), input 1 is still this node's input 1, at this node's depth."""
    nodes = [
        helper.make_node("Sin", ["x"], ["sin"]),
        helper.make_node("Identity", ["sin"], ["deep"]),
        helper.make_node("Unsqueeze", ["i0", "ax"], ["one"]),
        helper.make_node("Pick", ["deep", "one"], ["picked"]),
        helper.make_node("Concat", ["picked", "ax"], ["both"], axis=0),
    ]
    graph = helper.make_graph(
        nodes,
        "recover",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("both", TensorProto.INT64, None)],
        initializer=[
            numpy_helper.from_array(np.array(5, np.int64), "i0"),
            numpy_helper.from_array(np.array([0], np.int64), "ax"),
        ],
    )
    index = GraphIndex(helper.make_model(graph), infer=False)
    folders = {**FOLDERS, "Pick": _second_if_first_fails}
    assert int_values(index, "both", folders) == ((5, 0), False, frozenset({2, 3, 4}))


def test_folding_leaves_no_reference_cycle() -> None:
    """What a fold allocates is freed when it returns (the pass runs with the collector paused, and
    the first collection after it walks every object still alive)."""
    index = GraphIndex(_model(8), infer=False)
    fold_ints(index, "target")  # the index's reads are kept (with the index), the rest must go
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            assert fold_ints(index, "target", lambda name: [2, 3, 4] if name == "x" else None).values == (
                3,
                8,
            )
            with pytest.raises(NotStatic):
                fold_ints(index, "data")
        assert gc.collect() == 0
    finally:
        gc.enable()
