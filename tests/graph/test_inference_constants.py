"""Shape inference reads Constant nodes as initializers (graph/inference.py): the same types.

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
from rope_onnx.graph.inference import inference_input
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
