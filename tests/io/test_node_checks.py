"""The loader's node checks: one pass does order and schema, with the verdicts of two (issue 17).

The oracle is the check as it was before: first the whole order (one producer per tensor, inputs
defined before use), then ``onnx.checker.check_node`` on every default-domain ONNX op without a
declared subgraph.  Random mutants of a RoPE model (cycles, duplicate outputs, dropped or retyped
attributes, extra inputs, unknown ops, subgraph attributes) must get the same message from both.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, helper
from rope_graphs import SiteSpec, build
from structure_reference import two_pass_verdict

from rope_onnx.errors import InputError
from rope_onnx.io import validate, walk

PATH = Path("m.onnx")
GRAPH_TYPES = (AttributeProto.GRAPH, AttributeProto.GRAPHS)


def _verdict(model: onnx.ModelProto) -> str | None:
    try:
        validate._check_nodes(PATH, model)
    except InputError as exc:
        return str(exc)
    return None


def _body() -> onnx.GraphProto:
    output = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, None)
    return helper.make_graph([], "body", [], [output])


@st.composite
def mutants(draw: st.DrawFn) -> onnx.ModelProto:
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    nodes = model.graph.node
    pick = st.integers(0, len(nodes) - 1)
    for _ in range(draw(st.integers(0, 3))):
        node, other = nodes[draw(pick)], nodes[draw(pick)]
        kinds = ["read", "redefine", "drop", "retype", "extra", "blank", "unknown", "graph"]
        kind = draw(st.sampled_from(kinds))
        if kind == "read" and node.input:  # a later (or own) output: a cycle; an earlier one: fine
            node.input[0] = other.output[0]
        elif kind == "redefine":
            node.output[0] = other.output[0]
        elif kind == "drop":
            del node.attribute[:]
        elif kind == "retype" and node.attribute:
            node.attribute[0].type = draw(st.sampled_from([AttributeProto.GRAPHS, AttributeProto.FLOATS]))
        elif kind == "extra":
            node.input.append(draw(st.sampled_from(["x", "", "cos"])))
        elif kind == "blank":  # an omitted output: fine where the schema has an optional one
            node.output.append("")
        elif kind == "unknown":
            node.op_type = draw(st.sampled_from(["NoSuchOp", "If", "Loop"]))
        elif kind == "graph":
            name = draw(st.sampled_from(["then_branch", "body", "other"]))
            node.attribute.append(helper.make_attribute(name, _body()))
    return model


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_one_pass_gives_the_two_pass_verdict(model: onnx.ModelProto) -> None:
    assert _verdict(model) == two_pass_verdict(model, PATH)


def test_an_order_error_after_an_invalid_node_is_the_one_reported() -> None:
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    concat = next(n for n in model.graph.node if n.op_type == "Concat")
    del concat.attribute[:]  # invalid: axis is required
    model.graph.node[-1].input[0] = model.graph.node[-1].output[0]  # the last node reads itself
    assert "before it is defined" in (_verdict(model) or "")
    model.graph.node[-1].input[0] = model.graph.node[-2].output[0]
    assert "is invalid" in (_verdict(model) or "")


def test_schemas_are_looked_up_once_per_op_type(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    outer = {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer} | {""}
    for copy in range(3):  # three more copies of every node, renamed apart, in order
        copies = [onnx.NodeProto.FromString(n.SerializeToString()) for n in model.graph.node[:]]
        for node in copies:
            node.input[:] = [name if name in outer else f"{name}_c{copy}" for name in node.input]
            node.output[:] = [f"{name}_c{copy}" for name in node.output]
        model.graph.node.extend(copies)
    looked_up: list[str] = []
    get_schema = onnx.defs.get_schema
    monkeypatch.setattr(onnx.defs, "get_schema", lambda op, *a: looked_up.append(op) or get_schema(op, *a))
    assert _verdict(model) is None
    assert sorted(looked_up) == sorted({n.op_type for n in model.graph.node})


def test_plain_nodes_are_checked_once_per_op_and_arity(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node without attributes or omitted names reaches check_node once per (domain, op_type, input
    count, output count); every other node is checked (no two attributed nodes here hold the same
    attribute bytes: tests/io/test_walk.py has those); the names come back as the nodes hold them."""
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    nodes = model.graph.node
    first = next(n for n in nodes if not n.attribute and n.op_type == "Mul")
    twin = helper.make_node("Mul", list(first.input), ["twin"], name="twin")  # same key, new name
    optional = [  # an omitted output: checked every time, whatever came before
        helper.make_node("Dropout", [first.output[0]], [f"dropped{i}", ""], name=f"optional{i}")
        for i in range(2)
    ]
    nodes.extend([twin, *optional])
    checked: list[bytes] = []
    check_node = walk._check_node
    monkeypatch.setattr(walk, "_check_node", lambda data, *a: checked.append(data) or check_node(data, *a))
    names = validate._check_nodes(PATH, model)
    assert names == [(n.domain, n.op_type, tuple(n.input), tuple(n.output), bool(n.attribute)) for n in nodes]
    plain = {(n.domain, n.op_type, len(n.input), len(n.output)) for n in nodes if not n.attribute} - {
        ("", "Dropout", 1, 2)
    }
    expected = [n for n in nodes if n.attribute or n.op_type == "Dropout"]
    assert len(checked) == len(expected) + len(plain)
    assert twin.SerializeToString() not in checked
    assert all(node.SerializeToString() in checked for node in optional)
