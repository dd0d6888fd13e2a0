"""fusion.splice: the in-place splice writes exactly the list a rebuild would, keeps untouched nodes as
they are, and answers names, unread initializers and producers as a scan of the result would."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from rope_graphs import SiteSpec, build

from rope_onnx.fusion import fuse_model, splice
from rope_onnx.fusion.splice import (
    Producers,
    _delete,
    _Names,
    _order,
    _rebuild,
    _splice,
    _unread_initializers,
)
from rope_onnx.graph.index import GraphIndex


def _chain(count: int) -> onnx.ModelProto:
    """Relu chain a0 -> a{count}, each node also reading initializer w{k % 3}; an If reads w9 from a body."""
    nodes = [
        helper.make_node("Add", [f"a{k}", f"w{k % 3}"], [f"a{k + 1}"], name=f"n{k}") for k in range(count)
    ]
    body = helper.make_graph(
        [helper.make_node("Identity", ["w9"], ["b"])],
        "body",
        [],
        [helper.make_tensor_value_info("b", 1, None)],
    )
    nodes.append(helper.make_node("If", [f"a{count}"], ["y"], name="if", then_branch=body, else_branch=body))
    inits = [numpy_helper.from_array(np.ones(1, np.float32), f"w{k}") for k in (0, 1, 2, 9)]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("a0", 1, [1])],
        [helper.make_tensor_value_info("y", 1, None)],
        inits,
        value_info=[helper.make_tensor_value_info(f"a{k}", 1, [1]) for k in range(1, count + 1)],
    )
    return helper.make_model(graph)


def _edits(count: int, seed: int) -> tuple[dict, dict, set[int]]:
    rng = random.Random(seed)
    dead = {i for i in range(count) if rng.random() < 0.4}
    fused = {
        i: helper.make_node("Neg", [f"a{i}"], [f"a{i + 1}"], name=f"f{i}")
        for i in range(count)
        if rng.random() < 0.2
    }
    after = {
        i: [helper.make_node("Relu", [f"a{max(i, 0)}"], [f"r{i}_{k}"], name=f"r{i}_{k}") for k in range(2)]
        for i in range(-1, count)
        if rng.random() < 0.3
    }
    return fused, after, dead


def test_the_splice_writes_the_rebuilt_list_and_keeps_untouched_nodes() -> None:
    for seed in range(20):
        model = _chain(30)
        index = GraphIndex(model, infer=False)
        fused, after, dead = _edits(len(index.nodes), seed)
        want = [n.SerializeToString() for n in _order(index, fused, after, dead)]
        written = _splice(model.graph.node, len(index.nodes), fused, after, dead)
        assert [n.SerializeToString() for n in model.graph.node] == want
        touched = dead | set(fused)
        graph_nodes = {id(n) for n in model.graph.node}
        # untouched nodes are the index's own messages; each written output names the graph's node
        assert all(id(n) in graph_nodes for i, n in enumerate(index.nodes) if i not in touched)
        assert all(id(n) in graph_nodes and o in n.output for o, n in written.items())


def test_producers_answer_as_a_scan_of_the_spliced_graph() -> None:
    for seed in range(10):
        model = _chain(30)
        index = GraphIndex(model, infer=False)
        fused, after, dead = _edits(len(index.nodes), seed)
        producers = _rebuild(model, index, fused, after, dead)
        assert isinstance(producers, Producers)
        made_by = {o: n for n in model.graph.node for o in n.output}
        for name in {*made_by, *index.producer, "a0", "w0", "nothing"}:
            assert producers.get(name) is made_by.get(name), name
            assert (name in producers) == (name in made_by)


def test_unread_initializers_count_reads_that_remain_subgraphs_included() -> None:
    model = _chain(6)
    index = GraphIndex(model, infer=False)
    # every Add is dead but n1 (reads w1); w9 is read only by the If's bodies, which remains
    dead = {0, 2, 3, 4, 5}
    assert _unread_initializers(index, {}, {}, dead) == {"w0", "w2"}
    # a node the splice adds reads w0 again
    after = {1: [helper.make_node("Add", ["a2", "w0"], ["z"], name="z")]}
    assert _unread_initializers(index, {}, after, dead) == {"w2"}
    # the If removed: its subgraph read goes too, but w9 was never a dead node's direct input
    assert _unread_initializers(index, {}, {}, dead | {6}) == {"w0", "w2"}


def test_rebuild_drops_value_info_and_initializers_only_dead_nodes_had() -> None:
    model = _chain(6)
    index = GraphIndex(model, infer=False)
    _rebuild(model, index, {}, {}, {0, 2, 3, 4, 5})
    assert [n.name for n in model.graph.node] == ["n1", "if"]
    assert [t.name for t in model.graph.initializer] == ["w1", "w9"]
    assert [v.name for v in model.graph.value_info] == ["a2"]


def test_names_from_the_index_are_those_a_scan_finds() -> None:
    model = _chain(5)
    model.graph.node[2].name = "rope_onnx/x"
    index = GraphIndex(model, infer=False)
    scanned = _Names(model).used
    assert _Names(model, index).used == scanned - {""}
    assert "w9" in scanned  # an initializer; a name only a subgraph reads is no direct read
    model.graph.node[-1].attribute[0].g.node[0].input[0] = "rope_onnx/outer"
    index = GraphIndex(model, infer=False)
    assert "rope_onnx/outer" in index.consumers and "rope_onnx/outer" not in _Names(model, index).used
    assert _Names(model, index).fresh("rope_onnx/x") == "rope_onnx/x_2"


def test_delete_removes_runs_and_single_positions() -> None:
    model = _chain(10)
    _delete(model.graph.node, [9, 0, 3, 4, 5, 7])
    assert [n.name for n in model.graph.node] == ["n1", "n2", "n6", "n8", "if"]


def test_fused_sites_give_the_bytes_a_rebuild_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole pass: splicing in place writes the model that clearing and refilling graph.node writes."""
    spliced, rebuilt = build(SiteSpec()), build(SiteSpec())
    result = fuse_model(spliced)
    assert result.fused == 1 and result.sites[0].node.startswith("rope_onnx/")

    def rebuild(field: Any, count: int, fused: dict, after: dict, dead: set[int]) -> dict:
        old, new = list(field), list(after.get(-1, []))
        for i, node in enumerate(old):
            if i not in dead:
                new.append(fused.get(i, node))
            new.extend(after.get(i, []))
        del field[:]
        field.extend(new)
        return {}

    monkeypatch.setattr(splice, "_splice", rebuild)
    assert fuse_model(rebuilt).fused == 1
    assert spliced.SerializeToString() == rebuilt.SerializeToString()
