"""The index built from the names the loader read is the index built from the nodes (issue 17).

``fuse_file`` hands ``LoadedModel.names`` to ``GraphIndex`` so that no node's names are read from
protobuf twice; every fixture (If/Loop bodies, omitted inputs, several outputs) must give the same
producers, consumers, read lists and fused bytes either way.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from conftest import FIXTURES
from onnx import helper

from rope_onnx.fusion import fuse_model
from rope_onnx.fusion.reach import cone_facts
from rope_onnx.graph.index import GraphIndex
from rope_onnx.io.load import load_model

FIXTURE_PATHS = sorted(FIXTURES.glob("*.onnx"))


def _reference_names(model: onnx.ModelProto) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...], bool]]:
    return [
        (n.domain, n.op_type, tuple(n.input), tuple(n.output), len(n.attribute) > 0) for n in model.graph.node
    ]


@pytest.mark.parametrize("path", FIXTURE_PATHS[::4], ids=lambda p: p.stem)
def test_loader_names_give_the_same_index_and_fusion(path: Path) -> None:
    loaded = load_model(path, need_external_data=False)
    assert loaded.names == _reference_names(loaded.model)
    handed, read = GraphIndex(loaded.model, names=loaded.names), GraphIndex(loaded.model)
    assert handed.names == read.names == loaded.names
    assert (handed.producer, handed.consumers, handed.inputs) == (read.producer, read.consumers, read.inputs)
    assert cone_facts(handed) == cone_facts(read)
    plain = onnx.ModelProto.FromString(loaded.model.SerializeToString())
    expected = fuse_model(plain, name="m")
    result = fuse_model(loaded.model, name="m", index=handed)
    assert result.to_json() == expected.to_json()
    assert loaded.model.SerializeToString(deterministic=True) == plain.SerializeToString(deterministic=True)


def test_subgraph_reads_are_added_to_handed_names(tmp_path: Path) -> None:
    """An If whose branches read ``x`` from the graph around it: ``x`` is one of its reads."""
    value = helper.make_tensor_value_info
    then_branch = helper.make_graph([helper.make_node("Abs", ["x"], ["a"])], "then", [], [value("a", 1, [2])])
    else_branch = helper.make_graph([helper.make_node("Neg", ["x"], ["n"])], "else", [], [value("n", 1, [2])])
    nodes = [
        helper.make_node("Identity", ["c"], ["c1"]),
        helper.make_node("If", ["c1"], ["y"], then_branch=then_branch, else_branch=else_branch),
    ]
    graph = helper.make_graph(nodes, "g", [value("x", 1, [2]), value("c", 9, [])], [value("y", 1, [2])])
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    loaded = load_model(path)
    assert loaded.names is not None and loaded.names[1][2] == ("c1",)
    index = GraphIndex(loaded.model, names=loaded.names)
    assert index.inputs == GraphIndex(loaded.model).inputs == [("c",), ("c1", "x")]
    assert index.consumers["x"] == [1]


def test_names_of_another_graph_or_index_are_refused() -> None:
    loaded = load_model(FIXTURE_PATHS[0], need_external_data=False)
    with pytest.raises(ValueError, match="names for"):
        GraphIndex(loaded.model, names=loaded.names[:-1])
    other = onnx.ModelProto.FromString(loaded.model.SerializeToString())
    with pytest.raises(ValueError, match="another model"):
        fuse_model(loaded.model, index=GraphIndex(other))
