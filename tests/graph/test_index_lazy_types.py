"""Types are converted and merged when asked for, with the answers of merging them all at once.

The index keeps inference's types as serialized TypeProtos and the declarations as the model's
TypeProtos; a tensor's are converted and merged (graph/shapes.py ``merge_one``) the first time
anything asks for its type, dims or claims.  These tests count the conversions and check the
answers against merging every type eagerly (:func:`_merge_all`, the index's definition before it
merged lazily).
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx
import pytest
from onnx import TensorProto, helper

from rope_onnx.graph import index as graph_index
from rope_onnx.graph.index import GraphIndex
from rope_onnx.graph.protos import serialized_types, type_info
from rope_onnx.graph.shapes import (
    TypeInfo,
    declared_axes,
    mark_generated,
    merge_types,
    split_undeclared,
    without_annotations,
)
from rope_onnx.io.load import load_model


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


def _merge_all(
    types: dict[str, TypeInfo], inferred: Iterable[tuple[str, TypeInfo]], inputs: set[str]
) -> dict[str, frozenset[int]]:
    """Inference's types merged into the declared ``types`` at once, in place; per tensor, the axes only
    a declaration sizes — all of a declared tensor inference said nothing about, a graph input aside."""
    claimed: dict[str, frozenset[int]] = {}
    seen: set[str] = set()
    for name, inferred_type in inferred:
        seen.add(name)
        declared = types.get(name)
        types[name] = inferred_type if declared is None else merge_types(declared, inferred_type)
        if declared is not None and (axes := declared_axes(declared, inferred_type)):
            claimed[name] = axes
    for name, declared in types.items():
        if name not in seen and name not in inputs and (axes := declared_axes(declared, None)):
            claimed[name] = axes
    return claimed


def _eager(model: onnx.ModelProto) -> tuple[dict, dict]:
    """Every inferred type merged at once: the index's answers before types were converted lazily."""
    g = model.graph
    types = {i.name: type_info(i.type) for i in (*g.output, *g.value_info, *g.input)}
    data = without_annotations(model).SerializeToString()
    inferred = onnx.shape_inference.infer_shapes(data, strict_mode=False, data_prop=True).graph
    params = {d.dim_param for i in g.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    infos = (*inferred.value_info, *inferred.output)
    found = ((i.name, mark_generated(type_info(i.type), params)) for i in infos)
    claimed = _merge_all(types, found, {i.name for i in g.input})
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
    assert at_build == 2, at_build  # the inputs x and shape (their declaration is the contract): not out
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
    inputs = {i.name for i in model.graph.input}
    for claims_first in (True, False):  # a tensor merges on whichever question comes first
        index = GraphIndex(model)
        for name in types if claims_first else ():
            assert index.claimed_axes(name) == (
                frozenset() if name in inputs else claimed.get(name, frozenset())
            )
        for name in types:
            got = index.type_of(name)
            assert got == types[name], name
            kinds = [type(d) for d in got[1] or ()]
            assert kinds == [type(d) for d in types[name][1] or ()], name  # InferredSymbol stays marked
        for name in types:
            assert index.claimed_axes(name) == (
                frozenset() if name in inputs else claimed.get(name, frozenset())
            )


@pytest.mark.parametrize("declared", [False, True])
def test_a_constant_typed_late_reads_its_own_node_after_a_rewrite(tmp_path, declared: bool) -> None:
    """A Constant inference had as an initializer is typed when first asked, which may be after the
    rewrite moved ``graph.node`` (fuse_model reads the sites' element types then): its node is
    read from the index's own list, never by position in the edited graph."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node(
            "Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.INT64, [3], [1, 2, 3])
        ),
        helper.make_node("Reshape", ["r", "c"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        value_info=[helper.make_tensor_value_info("c", TensorProto.INT64, [3])] if declared else [],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    loaded = load_model(path)
    index = GraphIndex(loaded.model, names=loaded.names)
    del loaded.model.graph.node[0]  # what a rewrite may do before the type is asked for
    assert index.type_of("c") == (TensorProto.INT64, (3,))
