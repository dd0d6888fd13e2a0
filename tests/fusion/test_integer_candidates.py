"""Integer-typed candidates (the int64 Concats ending an export's shape chains) are skipped untraced
unless they look like RoPE; a RoPE look-alike in integers is still traced and reported."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from rope_graphs import SiteSpec, build

from rope_onnx.fusion import candidates, fuse_model


def _with_shape_chain(model):  # type: ignore[no-untyped-def]
    """A shape chain with a product in reach, ending in a head-sized int64 Concat (a graph output)."""
    g = model.graph
    x = g.input[0].name
    g.initializer.extend(
        [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("i0", 0), ("two", 2), ("ax", [0]))]
    )
    g.node.extend(
        [
            helper.make_node("Shape", [x], ["s"]),
            helper.make_node("Gather", ["s", "i0"], ["g"]),
            helper.make_node("Mul", ["g", "two"], ["m"]),
            helper.make_node("Unsqueeze", ["m", "ax"], ["u"]),
            helper.make_node("Concat", ["u", "u", "u", "u"], ["shape4"], axis=0),
        ]
    )
    g.output.append(helper.make_tensor_value_info("shape4", TensorProto.INT64, [4]))
    return model


def _attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    tried: list[str] = []
    real = candidates.attempt_site

    def counted(index, tracer, output, traced, prover=None):  # type: ignore[no-untyped-def]
        tried.append(output)
        return real(index, tracer, output, traced, prover)

    monkeypatch.setattr(candidates, "attempt_site", counted)
    return tried


def test_an_int64_concat_of_dims_is_not_traced(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _with_shape_chain(build(SiteSpec(head_dim=32, rotary_dim=32)))
    tried = _attempts(monkeypatch)
    result = fuse_model(model)
    assert result.fused == 1 and result.skipped == []
    assert "shape4" not in tried and len(tried) == 1


def test_a_rope_look_alike_in_integers_is_traced_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build(SiteSpec(head_dim=32, rotary_dim=32))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.INT64
    tried = _attempts(monkeypatch)
    result = fuse_model(model)
    assert result.fused == 0 and len(tried) == 1
    (skip,) = result.skipped
    assert "not one of float16/float32/bfloat16" in skip.reason
