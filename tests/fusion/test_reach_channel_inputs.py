"""``OpRule.channel_inputs``: product reach (``reach.cone_facts``) follows only the inputs a trace
evaluates as channels, so a Reshape whose target shape multiplies dims (the reshapes of v and of
repeated k/v heads in every GQA layer) is no candidate — and the rules' traces really evaluate
no other input (checked on committed exports and generated sites, where a wrong declaration would
silently drop a candidate).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import FIXTURES
from onnx import TensorProto, helper, numpy_helper
from rope_graphs import SiteSpec, build

from rope_onnx.fusion import fuse_model
from rope_onnx.fusion.ops import registry
from rope_onnx.fusion.reach import cone_facts
from rope_onnx.graph.index import GraphIndex


def _const(name: str, value: list[int] | int) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, np.int64)))


def _reshapes() -> onnx.ModelProto:
    """``Reshape(x, [B, S, H*D])`` and ``Reshape(x * y, [B, S, H*D])``, H*D a Mul of two Shape reads."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), _const("axes", [0])]
    for axis in range(4):
        nodes += [_const(f"c{axis}", axis), helper.make_node("Gather", ["s", f"c{axis}"], [f"g{axis}"])]
    nodes += [
        helper.make_node("Mul", ["g2", "g3"], ["hd"]),
        *(helper.make_node("Unsqueeze", [g, "axes"], [f"u{g}"]) for g in ("g0", "g1", "hd")),
        helper.make_node("Concat", ["ug0", "ug1", "uhd"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["plain"]),
        helper.make_node("Mul", ["x", "y"], ["xy"]),
        helper.make_node("Reshape", ["xy", "target"], ["product"]),
    ]
    dims = ["batch", "seq", 4, 16]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("x", "y")]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("plain", "product")]
    graph = helper.make_graph(nodes, "reshapes", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_product_in_a_target_shape_is_no_channel_of_the_reshape() -> None:
    reach, _ = cone_facts(GraphIndex(_reshapes()))
    assert "target" in reach  # a Concat evaluates every input: the Mul of dims is in its reach
    assert "plain" not in reach  # the Reshape reads that Concat only as integers
    assert reach["product"] == 1  # its data is a product
    result = fuse_model(_reshapes())
    assert (result.fused, result.skipped) == (0, [])


_EXPORTS = sorted(FIXTURES.glob("*.onnx"))[::5]
_SPECS = [
    SiteSpec(),
    SiteSpec(split="split", bounds="shape", table="B1LR"),
    SiteSpec(interleaved=True, split="gather", layout="BLHD", table="BL1R"),
    SiteSpec(interleaved=True, split="step2", bounds="shape"),
    SiteSpec(rotary_dim=8, bounds="cos_shape", sites=2, kv_heads=1),
]


@pytest.mark.parametrize(
    "model", [*_EXPORTS, *_SPECS], ids=lambda m: m.name if isinstance(m, Path) else repr(m)[8:60]
)
def test_traces_evaluate_only_their_channel_inputs(
    model: Path | SiteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every trace of a rule with ``channel_inputs`` evaluates only those inputs, on real exports."""
    checked: list[str] = []

    class Guarded:
        def __init__(self, tracer: object, allowed: tuple[str, ...], op: str) -> None:
            self._tracer, self._allowed, self._op = tracer, allowed, op

        def __getattr__(self, name: str) -> object:
            return getattr(self._tracer, name)

        def eval(self, name: str, k: int) -> object:
            assert name in self._allowed, (self._op, name, self._allowed)
            checked.append(self._op)
            return self._tracer.eval(name, k)  # type: ignore[attr-defined]

        def expr(self, name: str, k: int) -> object:
            assert name in self._allowed, (self._op, name, self._allowed)
            checked.append(self._op)
            return self._tracer.expr(name, k)  # type: ignore[attr-defined]

    def guard(rule: registry.OpRule) -> registry.OpRule:
        trace, count = rule.trace, rule.channel_inputs
        assert trace is not None and count is not None

        def guarded(t, node, out, k):  # type: ignore[no-untyped-def]
            return trace(Guarded(t, tuple(node.input[:count]), node.op_type), node, out, k)

        return replace(rule, trace=guarded)

    declared = {op: rule for op, rule in registry.RULES.items() if rule.channel_inputs is not None}
    assert {"Reshape", "Expand", "Slice", "Gather", "Unsqueeze"} <= set(declared)
    for op, rule in declared.items():
        monkeypatch.setitem(registry.RULES, op, guard(rule))  # type: ignore[index]
    loaded = onnx.load(model) if isinstance(model, Path) else build(model)
    result = fuse_model(loaded)
    assert result.fused and checked
