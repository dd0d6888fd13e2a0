"""Inferred types nothing declares are converted when asked for, with the answers of merging them all.

The index merges inference's types into the declared ones at once only where a declaration exists
(the claims come from those) or inference names a tensor twice; the rest wait as serialized
TypeProtos (graph/shapes.py ``split_undeclared``).  These tests count the conversions and check the
answers against merging every inferred type eagerly, as :func:`merge_inferred` defines it.
"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from rope_onnx.graph import index as graph_index
from rope_onnx.graph.index import GraphIndex
from rope_onnx.graph.protos import serialized_types, type_info
from rope_onnx.graph.shapes import mark_generated, merge_inferred, split_undeclared, without_annotations


def _chain(length: int, declared: dict[str, list]) -> onnx.ModelProto:
    """x -> Relu -> ... -> Reshape(by a shape input) -> flat -> Relu -> out, ``declared`` as value_info."""
    nodes, h = [], "x"
    for i in range(length):
        nodes.append(helper.make_node("Relu", [h], [f"r{i}"]))
        h = f"r{i}"
    nodes.append(helper.make_node("Reshape", [h, "shape"], ["flat"]))
    nodes.append(helper.make_node("Relu", ["flat"], ["out"]))
    graph = helper.make_graph(
        nodes,
        "chain",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 8]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "n"])],
        value_info=[helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in declared.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _eager(model: onnx.ModelProto) -> tuple[dict, dict]:
    """Every inferred type merged at once: the index's answers before types were converted lazily."""
    g = model.graph
    types = {i.name: type_info(i.type) for i in (*g.output, *g.value_info, *g.input)}
    data = without_annotations(model).SerializeToString()
    inferred = onnx.shape_inference.infer_shapes(data, strict_mode=False, data_prop=True).graph
    params = {d.dim_param for i in g.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    infos = (*inferred.value_info, *inferred.output)
    found = ((i.name, mark_generated(type_info(i.type), params)) for i in infos)
    claimed = merge_inferred(types, found, {i.name for i in g.input})
    return types, claimed


def test_split_keeps_declared_and_repeated_types_in_order() -> None:
    inferred = [("a", 1), ("d", 2), ("a", 3), ("b", 4), ("a", 5), ("c", 6)]
    now, later = split_undeclared(inferred, {"d"})
    assert now == [("d", 2), ("a", 1), ("a", 3), ("a", 5)]  # each of "a" merges on the one before
    assert later == {"b": 4, "c": 6}


def test_serialized_types_share_one_bytes_object_per_type() -> None:
    infos = [helper.make_tensor_value_info(f"t{i}", TensorProto.FLOAT, [2, 3]) for i in range(3)]
    pairs = list(serialized_types(infos))
    assert [n for n, _ in pairs] == ["t0", "t1", "t2"]
    assert pairs[0][1] is pairs[1][1] is pairs[2][1] == infos[0].type.SerializeToString()


def test_a_type_is_converted_when_asked_for_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def counted(t: onnx.TypeProto):
        calls.append(t)
        return type_info(t)

    monkeypatch.setattr(graph_index, "type_info", counted)
    index = GraphIndex(_chain(50, {}))
    at_build = len(calls)
    assert at_build == 4, at_build  # the declared x, shape, out and the merged out: no chain tensor
    assert index.dims("r30") == ["param:batch", 4, 8]
    assert index.dims("r31") == ["param:batch", 4, 8] and index.elem_type("r30") == TensorProto.FLOAT
    assert len(calls) == at_build + 1  # r0..r49 have one type: converted once, when first asked
    assert all(d.startswith("infer:") for d in index.dims("flat")), index.dims("flat")  # still marked


@pytest.mark.parametrize(
    "declared",
    [
        {},
        {"r3": ["batch", 4, 8]},
        {"r3": [1, 4, 8], "r7": ["batch", "w", 8]},  # a lie, and a symbol where inference has 4
        {"r2": None, "nowhere": [3, 3]},  # declared without a shape; declared for no tensor
    ],
)
def test_lazy_answers_are_the_eager_merge(declared: dict) -> None:
    model = _chain(10, declared)
    types, claimed = _eager(model)
    index = GraphIndex(model)
    assert index.claimed == claimed
    for name in types:
        got = index.type_of(name)
        assert got == types[name], name
        kinds = [type(d) for d in got[1] or ()]
        assert kinds == [type(d) for d in types[name][1] or ()], name  # InferredSymbol stays marked
