"""Shape inference reads Constant nodes as initializers (graph/inference.py): the same types; and
the one-parse subgraph check the index uses to skip reading each node's attributes.

The copy given to ``onnx.shape_inference`` holds each single-``value`` Constant as an initializer of
its output's name (a quarter of inference's time at 70B).  The index must expose exactly the types
it exposed when inference saw the nodes: checked on every fixture against an index whose inference
saw them (built without the loader's names, which never converts), and on hand-made graphs for the
cases that keep the plain copy.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from conftest import FIXTURES
from onnx import TensorProto, helper

from rope_onnx.graph.index import GraphIndex
from rope_onnx.graph.inference import flat_facts, graph_bytes, inference_input, inferred_types
from rope_onnx.graph.protos import outer_inputs
from rope_onnx.io.load import LoadedModel, load_model

FIXTURE_PATHS = sorted(FIXTURES.glob("*.onnx"))


def _tensors(model: onnx.ModelProto) -> list[str]:
    graph = model.graph
    names = [i.name for i in graph.input] + [t.name for t in graph.initializer]
    names += [o for node in graph.node for o in node.output if o] + [v.name for v in graph.value_info]
    return list(dict.fromkeys(names))


def _facts(index: GraphIndex, names: list[str]) -> list[object]:
    return [(index.type_of(n), index.dims(n), index.elem_type(n), index.claimed_axes(n)) for n in names]


def _same_facts(loaded: LoadedModel) -> None:
    """The index over the converted copy (the loader's names) and over the plain one agree on every tensor."""
    names = _tensors(loaded.model)
    converted = GraphIndex(loaded.model, names=loaded.names)
    assert _facts(converted, names) == _facts(GraphIndex(loaded.model), names)


def _convertible(model: onnx.ModelProto) -> int:
    """The Constants the copy should hold as initializers, counted the slow way."""
    outputs = {o.name for o in model.graph.output}
    return sum(
        1
        for n in model.graph.node
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.output) == 1
        and n.output[0] not in outputs
        and [(a.name, a.type) for a in n.attribute] == [("value", onnx.AttributeProto.TENSOR)]
    )  # fmt: skip


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=lambda p: p.stem)
def test_constants_as_initializers_give_every_tensor_the_same_type(path: Path) -> None:
    loaded = load_model(path, need_external_data=False)
    data, converted = inference_input(loaded.model, loaded.names)
    expected = _convertible(loaded.model)
    if all(  # all or none: one Constant of another form keeps the plain copy
        n.op_type != "Constant" or len(n.attribute) != 1 or n.attribute[0].name == "value"
        for n in loaded.model.graph.node
    ):
        assert len(converted) == expected
    assert len(converted) in (0, expected)
    _same_facts(loaded)
    plain, _ = inference_input(loaded.model, None)
    found = onnx.shape_inference.infer_shapes(data, data_prop=True).graph.value_info
    inferred = {v.name: v.type for v in found}
    reference = onnx.shape_inference.infer_shapes(plain, data_prop=True).graph.value_info
    for value in reference:  # inference itself: every other tensor typed alike, the constants by their tensor
        if value.name not in converted:
            assert inferred[value.name] == value.type, value.name
        else:
            tensor = loaded.model.graph.node[converted[value.name]].attribute[0].t
            expect = helper.make_tensor_type_proto(tensor.data_type, list(tensor.dims))
            assert value.type == expect, value.name
    assert not set(inferred) - {v.name for v in reference}


def test_some_fixtures_have_their_constants_converted() -> None:
    """The equivalence above is not vacuous: real exports go through the converted copy."""
    converted = 0
    for path in FIXTURE_PATHS[::10]:
        loaded = load_model(path, need_external_data=False)
        converted += len(inference_input(loaded.model, loaded.names)[1])
    assert converted > 100


def _save(tmp_path: Path, nodes: list[onnx.NodeProto], outputs: list[str], **kwargs: object) -> Path:
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        "g",
        [value("x", TensorProto.FLOAT, ["n", 4])],
        [value(o, TensorProto.FLOAT, None) for o in outputs],
        value_info=kwargs.pop("value_info", None),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kwargs)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return path


def _shape_const(name: str) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=helper.make_tensor("v", TensorProto.INT64, [2], [-1, 2])
    )


def _case(tmp_path: Path, nodes: list[onnx.NodeProto], outputs: list[str], **kwargs: object) -> int:
    """How many Constants the copy converts; the index's facts must match the plain copy's."""
    loaded = load_model(_save(tmp_path, nodes, outputs, **kwargs), need_external_data=False)
    _same_facts(loaded)
    return len(inference_input(loaded.model, loaded.names)[1])


def test_a_reshape_target_is_read_from_the_initializer(tmp_path: Path) -> None:
    nodes = [_shape_const("s"), helper.make_node("Reshape", ["x", "s"], ["y"])]
    assert _case(tmp_path, nodes, ["y"]) == 1
    loaded = load_model(tmp_path / "m.onnx", need_external_data=False)
    index = GraphIndex(loaded.model, names=loaded.names)
    assert index.dims("y")[1:] == [2]  # inference read the target's value
    assert index.type_of("s") == (TensorProto.INT64, (2,))


def test_other_constant_forms_keep_the_plain_copy(tmp_path: Path) -> None:
    axes = helper.make_node("Constant", [], ["a"], value_ints=[0])
    nodes = [_shape_const("s"), axes, helper.make_node("Reshape", ["x", "s"], ["r"])]
    nodes.append(helper.make_node("Unsqueeze", ["r", "a"], ["y"]))
    assert _case(tmp_path, nodes, ["y"]) == 0


def test_a_constant_graph_output_and_old_ir_are_left_as_nodes(tmp_path: Path) -> None:
    nodes = [_shape_const("s"), helper.make_node("Reshape", ["x", "s"], ["y"])]
    assert _case(tmp_path, nodes, ["y", "s"]) == 0  # the only candidate is an output
    assert _case(tmp_path, nodes, ["y"], ir_version=3) == 0


def test_a_declared_constant_merges_its_declaration(tmp_path: Path) -> None:
    """A value_info for a Constant's output merges with the tensor's type as it did with inference's."""
    declared = [helper.make_tensor_value_info("s", TensorProto.INT64, ["k"])]
    nodes = [_shape_const("s"), helper.make_node("Reshape", ["x", "s"], ["y"])]
    assert _case(tmp_path, nodes, ["y"], value_info=declared) == 1


def test_without_the_loaders_names_nothing_is_converted() -> None:
    model = onnx.load(FIXTURE_PATHS[0], load_external_data=False)
    assert inference_input(model, None)[1] == {}


@pytest.mark.parametrize("path", FIXTURE_PATHS[::3], ids=lambda p: p.stem)
def test_a_graph_said_to_hold_no_subgraph_has_no_outer_reads_and_its_node_names_are_all(path: Path) -> None:
    """The one-parse check against reading every node's attributes: never says "none" wrongly."""
    loaded = load_model(path, need_external_data=False)
    said, names = flat_facts(graph_bytes(loaded.model, loaded.names), len(loaded.model.graph.node))
    assert names is None or names == {n.name for n in loaded.model.graph.node}
    reads = [outer_inputs(n) for n in loaded.model.graph.node if n.attribute]
    holders = [n for n in loaded.model.graph.node for a in n.attribute if a.HasField("g") or a.graphs]
    assert said == (not holders)
    assert not said or not any(reads)


def test_an_if_body_is_seen_and_its_reads_linked(tmp_path: Path) -> None:
    value = helper.make_tensor_value_info
    then_branch = helper.make_graph([helper.make_node("Abs", ["x"], ["a"])], "then", [], [value("a", 1, [2])])
    else_branch = helper.make_graph([helper.make_node("Neg", ["x"], ["n"])], "else", [], [value("n", 1, [2])])
    nodes = [
        helper.make_node("Cast", ["c"], ["c1"], to=TensorProto.BOOL),
        helper.make_node("If", ["c1"], ["y"], then_branch=then_branch, else_branch=else_branch),
    ]
    graph = helper.make_graph(nodes, "g", [value("x", 1, [2]), value("c", 9, [])], [value("y", 1, [2])])
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    loaded = load_model(path)
    serialized = graph_bytes(loaded.model, loaded.names)
    assert serialized is not None and not flat_facts(serialized, 2)[0]
    assert GraphIndex(loaded.model, names=loaded.names).consumers["x"] == [1]
    flat = helper.make_model(helper.make_graph(nodes[:1], "g", graph.input[1:], [value("c1", 9, [])]))
    flat_path = tmp_path / "flat.onnx"
    onnx.save(flat, flat_path)
    flat_loaded = load_model(flat_path)
    assert flat_facts(graph_bytes(flat_loaded.model, flat_loaded.names), 1) == (True, {""})  # unnamed
    assert flat_facts(graph_bytes(flat_loaded.model, None), 1) == (False, None)  # unknown without the names


def test_large_inline_weights_are_never_serialized_with_the_graph() -> None:
    weights = helper.make_tensor("w", TensorProto.FLOAT, [256, 256], [0.0] * 65536)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), _shape_const("s")]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [value("x", 1, [2, 256])], [value("y", 1, None)], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    names = [
        (n.domain, n.op_type, tuple(n.input), tuple(n.output), bool(n.attribute)) for n in model.graph.node
    ]
    assert graph_bytes(model, names) is None
    assert inference_input(model, names)[1] == {}  # the plain copy, weights as typed inputs


@pytest.mark.parametrize("path", FIXTURE_PATHS[::2], ids=lambda p: p.stem)
def test_inferred_types_read_off_the_bytes_are_inferences_value_infos(path: Path) -> None:
    """The merged one-parse read of inference's result against the ModelProto it would parse."""
    loaded = load_model(path, need_external_data=False)
    data, _ = inference_input(loaded.model, loaded.names)
    graph = onnx.shape_inference.infer_shapes(data, strict_mode=False, data_prop=True).graph
    expected = [(v.name, v.type) for v in (*graph.value_info, *graph.output)]
    found = inferred_types(data)
    assert [(n, onnx.TypeProto.FromString(t)) for n, t in found] == expected
    assert len({id(t) for _, t in found}) == len({t for _, t in found})  # one object per distinct type
