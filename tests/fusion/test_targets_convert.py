"""`--target atc` converts hand-built rotary ops the fixtures do not hold: partial rotation
(rotary_embedding_dim), interleaving, 3-D input with num_heads, caches read at position_ids, and ones it
must leave alone (scale != 1).  The converted model must equal the original on ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_model
from onnx import TensorProto, helper

from rope_onnx.fusion import fuse_model

B, N, S, H, P = 2, 3, 5, 8, 9
F = TensorProto.FLOAT


def _model(domain: str, rank: int, interleaved: int, rotary: int, **extra) -> onnx.ModelProto:
    x_shape = [B, N, S, H] if rank == 4 else [B, S, N * H]
    half = (rotary or H) // 2
    attrs = {"interleaved": interleaved, **extra}
    if rotary:
        attrs["rotary_embedding_dim"] = rotary
    if rank == 3 or (domain and rotary):
        attrs["num_heads"] = N
    inputs = ["x", "pos", "cos", "sin"] if domain else ["x", "cos", "sin", "pos"]
    node = helper.make_node("RotaryEmbedding", inputs, ["y"], domain=domain, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", F, x_shape),
            helper.make_tensor_value_info("pos", TensorProto.INT64, [B, S]),
            helper.make_tensor_value_info("cos", F, [P, half]),
            helper.make_tensor_value_info("sin", F, [P, half]),
        ],
        [helper.make_tensor_value_info("y", F, x_shape)],
    )
    opsets = [helper.make_opsetid("", 23)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 10
    return model


def _feeds(rank: int, half: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal([B, N, S, H] if rank == 4 else [B, S, N * H]).astype(np.float32)
    cos, sin = (rng.uniform(-1, 1, (P, half)).astype(np.float32) for _ in range(2))
    return {"x": x, "cos": cos, "sin": sin, "pos": rng.integers(0, P, (B, S)).astype(np.int64)}


@pytest.mark.parametrize("domain", ["", "com.microsoft"])
@pytest.mark.parametrize("rank,interleaved,rotary", [(4, 0, 0), (4, 1, 4), (3, 0, 4), (3, 1, 0)])
def test_rotary_ops_convert_to_an_equal_ropecustomer(
    domain: str, rank: int, interleaved: int, rotary: int
) -> None:
    model = _model(domain, rank, interleaved, rotary)
    feeds = _feeds(rank, (rotary or H) // 2)
    want = run_model(model, feeds)["y"]
    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    result = fuse_model(fused)
    assert len(result.converted) == 1 and not result.skipped
    assert [n.op_type for n in fused.graph.node].count("RoPECustomer") == 1
    assert not any(n.op_type == "RotaryEmbedding" for n in fused.graph.node)
    np.testing.assert_allclose(run_model(fused, feeds)["y"], want, atol=1e-6)


def test_a_scaled_rotary_op_is_left_alone_and_reported() -> None:
    model = _model("com.microsoft", 4, 0, 0, scale=0.5)
    before = model.SerializeToString()
    result = fuse_model(model)
    assert not result.converted and "scale" in result.skipped[0].reason
    assert model.SerializeToString() == before
