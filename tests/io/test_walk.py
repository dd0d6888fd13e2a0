"""The one-walk structure checks give the verdicts of the separate walks they replace (issue 17).

The walk decides each distinct attribute list once, keyed by its bytes: the tensors of a repeat
are not checked again, nor is a repeated node handed to ``check_node`` again.  The oracle is the
check as it was before: every tensor of :func:`every_tensor` checked in order, then the order of
every node, then ``check_node`` on every default-domain ONNX op without a declared subgraph.
Models are a RoPE graph with many Constant and Cast nodes appended, drawn from templates that
repeat (equal bytes), differ only in their names, or are corrupt, external or invalid.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper
from rope_graphs import SiteSpec, build
from structure_reference import two_pass_verdict

from rope_onnx.errors import InputError
from rope_onnx.io import load, validate, walk
from rope_onnx.io.tensors import every_tensor

PATH = Path("m.onnx")
GRAPH_TYPES = (AttributeProto.GRAPH, AttributeProto.GRAPHS)


def _reference(model: onnx.ModelProto) -> str | None:
    """The checks as separate walks: tensors, then the whole order, then each node's schema."""
    try:
        for tensor in every_tensor(model):
            validate._check_tensor(PATH, tensor)
    except InputError as exc:
        return str(exc)
    return two_pass_verdict(model, PATH)


def _constant(kind: str, name: str, source: str) -> onnx.NodeProto:
    """One appended node of a template ``kind``; ``source`` is a tensor defined before it."""
    if kind == "cast":
        return helper.make_node("Cast", [source], [name], name=name, to=TensorProto.FLOAT)
    if kind == "cast_untyped":  # invalid: 'to' is required
        return helper.make_node("Cast", [source], [name], name=name)
    if kind == "cast_blank":  # an omitted output: checked every time
        return helper.make_node("Dropout", [source], [name, ""], name=name)
    tensor = helper.make_tensor("", TensorProto.INT64, [1], [1])
    if kind == "named":  # equal but for the tensor's name
        tensor.name = f"{name}_value"
    elif kind == "short":  # corrupt: 4 bytes for one int64
        tensor.ClearField("int64_data")
        tensor.raw_data = b"\0" * 4
    elif kind == "negative":
        tensor.dims[:] = [-1]
    elif kind == "external":
        tensor.ClearField("int64_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "w.bin"), ("offset", "0"), ("length", "8")):
            tensor.external_data.add(key=key, value=value)
    node = helper.make_node("Constant", [], [name], name=name, value=tensor)
    if kind == "twice":  # invalid: a Constant holds one value
        node.attribute.append(helper.make_attribute("value_int", 3))
    return node


KINDS = ["plain", "plain", "plain", "named", "cast", "cast", "cast_untyped", "cast_blank", "short"]
KINDS += ["negative", "external", "twice"]


@st.composite
def models(draw: st.DrawFn) -> onnx.ModelProto:
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    source = model.graph.node[0].output[0]
    weights = {"plain": 40, "cast": 20, "named": 10}
    kinds = [k for k in KINDS for _ in range(weights.get(k, 1))]
    picks = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=12))
    nodes = [_constant(kind, f"extra{i}", source) for i, kind in enumerate(picks)]
    if draw(st.booleans()) and len(nodes) > 1:  # an order error: a node reads a later one's output
        nodes[0].input.append(nodes[-1].output[0])
        nodes[0].op_type = "Cast" if nodes[0].op_type != "Constant" else "Constant"
    model.graph.node.extend(nodes)
    return model


def _verdict(model: onnx.ModelProto) -> tuple[str | None, validate.Checked | None]:
    try:
        return None, validate.check_structure(PATH, model)
    except InputError as exc:
        return str(exc), None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_one_walk_gives_the_separate_walks_verdict(model: onnx.ModelProto) -> None:
    message, checked = _verdict(model)
    assert message == _reference(model)
    if checked is None:
        return
    nodes = model.graph.node
    assert checked.names == [
        (n.domain, n.op_type, tuple(n.input), tuple(n.output), bool(n.attribute)) for n in nodes
    ]
    every = every_tensor(model)  # every external reference is found, in order
    assert load.external_refs(model, PATH, checked.tensors) == load.external_refs(model, PATH, every)


def test_repeated_attributes_are_decided_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal attribute bytes: one tensor listed and one check_node call, however many nodes;
    a tensor name, an external tensor or an omitted output makes a node its own case."""
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    source = model.graph.node[0].output[0]
    kinds = ["plain"] * 5 + ["cast"] * 4 + ["named"] * 2 + ["cast_blank"] * 2 + ["external"] * 3
    model.graph.node.extend(_constant(kind, f"extra{i}", source) for i, kind in enumerate(kinds))
    base: list[bytes] = []
    check_node = walk._check_node
    monkeypatch.setattr(walk, "_check_node", lambda data, *a: base.append(data) or check_node(data, *a))
    before = walk.walk_graph(build(SiteSpec(head_dim=8, rotary_dim=8)))
    checked: list[bytes] = []
    monkeypatch.setattr(walk, "_check_node", lambda data, *a: checked.append(data) or check_node(data, *a))
    walked = walk.walk_graph(model)
    assert walked.order is None and before.failure is None
    # plain: 1 tensor, named: 2 (names differ), external: 3 (all listed); casts hold no tensor
    assert len(walked.tensors) == len(before.tensors) + 1 + 2 + 3
    assert checked[: len(base)] == base
    new = [onnx.NodeProto.FromString(data).name for data in checked[len(base) :]]
    # one each for plain, cast and the two named; every omitted-output node, and every external
    # one until check_node rejects one (it resolves the location on disk)
    assert new[:6] == ["extra0", "extra5", "extra9", "extra10", "extra11", "extra12"]
    external = ["extra13", "extra14", "extra15"]
    failed = [walked.failure[0].name] if walked.failure else []
    assert new[6:] == (external[: external.index(failed[0]) + 1] if failed else external)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.integers(min_value=1, max_value=3))
def test_reading_the_nodes_by_slices_changes_no_verdict(model: onnx.ModelProto, size: int) -> None:
    """walk_graph reads the nodes ``_SLICE`` at a time (memory): slices of one to three nodes put
    every order error and repeated attribute across a slice boundary, and nothing may change."""
    whole = _verdict(model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(walk, "_SLICE", size)
        sliced = _verdict(model)
    assert sliced[0] == whole[0]
    if whole[1] is not None and sliced[1] is not None:
        assert sliced[1].names == whole[1].names
        assert sliced[1].tensors == whole[1].tensors
    assert (sliced[1] is None) == (whole[1] is None)


def test_each_tensor_name_is_one_object_wherever_it_is_read() -> None:
    """The walk hands out a read as the str its producer wrote (the names live through inference:
    13 MiB of the peak at 200,000 nodes when every read is a fresh copy); values are as written either way."""
    model = build(SiteSpec(head_dim=8, rotary_dim=8))
    walked = walk.walk_graph(model)
    assert walked.order is None
    written: dict[str, str] = {}
    for _, _, _, outputs, _ in walked.names:
        written.update((name, name) for name in outputs)
    reads = [name for _, _, inputs, _, _ in walked.names for name in inputs if name in written]
    assert reads and all(name is written[name] for name in reads)
