"""What ONNX Runtime's two rotary ops do, pinned: the `onnx` and `ort` targets write for exactly this.

Each fact `fuse --target onnx|ort` relies on is checked here on the installed ONNX Runtime, against a NumPy
rotation, so an ORT upgrade that changes one fails here first instead of in a fused model: input layout
(4-D is [B, N, S, H]; 3-D is [B, S, N*H] with num_heads), cache shapes, position_ids, num_heads with
rotary_embedding_dim, interleaving, and fp16 computed in fp32 with one rounding.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

B, N, S, H = 2, 3, 5, 8
MS = ("com.microsoft", 1)


def _run(node, feeds: dict, opsets=(("", 23),), out=TensorProto.FLOAT):
    elem = {np.dtype(np.int64): TensorProto.INT64, np.dtype(np.float16): TensorProto.FLOAT16}
    ins = [
        helper.make_tensor_value_info(k, elem.get(v.dtype, TensorProto.FLOAT), None) for k, v in feeds.items()
    ]
    graph = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info("y", out, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 10
    so = ort.SessionOptions()
    so.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        None, feeds
    )[0]


def _rope(x, cos, sin, interleaved: int, rotary: int | None = None):
    """y = rotation of x's first R channels by half tables cos/sin (broadcast to [..., R/2]), in fp32."""
    x, cos, sin = (np.asarray(a, np.float32) for a in (x, cos, sin))
    rotary = rotary or x.shape[-1]
    xr = x[..., :rotary]
    a, b = (xr[..., 0::2], xr[..., 1::2]) if interleaved else (xr[..., : rotary // 2], xr[..., rotary // 2 :])
    o1, o2 = a * cos - b * sin, b * cos + a * sin
    out = np.stack([o1, o2], -1).reshape(xr.shape) if interleaved else np.concatenate([o1, o2], -1)
    return np.concatenate([out, x[..., rotary:]], -1)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    pos = rng.integers(0, 7, (B, S)).astype(np.int64)
    return {
        "x": f(B, N, S, H),
        "cb": f(B, S, H // 2),
        "sb": f(B, S, H // 2),
        "cp": f(7, H // 2),
        "sp": f(7, H // 2),
        "pos": pos,
    }


def _bsnh(x):
    return x.transpose(0, 2, 1, 3).reshape(B, S, N * H)


@pytest.mark.parametrize("interleaved", [0, 1])
def test_onnx_4d_is_bnsh_and_caches_without_position_ids_are_b_s_half(data, interleaved: int) -> None:
    node = helper.make_node("RotaryEmbedding", ["x", "c", "s"], ["y"], interleaved=interleaved)
    y = _run(node, {"x": data["x"], "c": data["cb"], "s": data["sb"]})
    np.testing.assert_allclose(
        y, _rope(data["x"], data["cb"][:, None], data["sb"][:, None], interleaved), atol=1e-6
    )


def test_onnx_refuses_a_batch_1_cache_for_a_larger_batch(data) -> None:
    """What torch's opset-23 dynamo export writes ([1, S, R/2] caches); the `onnx` target Expands them."""
    node = helper.make_node("RotaryEmbedding", ["x", "c", "s"], ["y"])
    with pytest.raises(Exception, match="same shape as input"):
        _run(node, {"x": data["x"], "c": data["cb"][:1], "s": data["sb"][:1]})


def test_onnx_position_ids_gather_a_2d_cache_and_3d_input_takes_num_heads(data) -> None:
    ref = _rope(data["x"], data["cp"][data["pos"]][:, None], data["sp"][data["pos"]][:, None], 0)
    node = helper.make_node("RotaryEmbedding", ["x", "c", "s", "p"], ["y"])
    y = _run(node, {"x": data["x"], "c": data["cp"], "s": data["sp"], "p": data["pos"]})
    np.testing.assert_allclose(y, ref, atol=1e-6)
    node = helper.make_node("RotaryEmbedding", ["x", "c", "s", "p"], ["y"], num_heads=N)
    y = _run(node, {"x": _bsnh(data["x"]), "c": data["cp"], "s": data["sp"], "p": data["pos"]})
    np.testing.assert_allclose(y, _bsnh(ref), atol=1e-6)


def test_onnx_rotary_embedding_dim_on_4d_input_needs_no_num_heads(data) -> None:
    node = helper.make_node("RotaryEmbedding", ["x", "c", "s"], ["y"], rotary_embedding_dim=4)
    y = _run(node, {"x": data["x"], "c": data["cb"][..., :2], "s": data["sb"][..., :2]})
    ref = _rope(data["x"], data["cb"][:, None, :, :2], data["sb"][:, None, :, :2], 0, 4)
    np.testing.assert_allclose(y, ref, atol=1e-6)


@pytest.mark.parametrize("interleaved", [0, 1])
def test_ms_takes_4d_bnsh_with_position_ids_and_2d_caches(data, interleaved: int) -> None:
    node = helper.make_node(
        "RotaryEmbedding", ["x", "p", "c", "s"], ["y"], domain="com.microsoft", interleaved=interleaved
    )
    y = _run(node, {"x": data["x"], "p": data["pos"], "c": data["cp"], "s": data["sp"]}, (("", 23), MS))
    ref = _rope(data["x"], data["cp"][data["pos"]][:, None], data["sp"][data["pos"]][:, None], interleaved)
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_ms_requires_position_ids_2d_caches_and_num_heads_with_rotary_dim(data) -> None:
    feeds = {"x": data["x"], "p": data["pos"], "c": data["cp"], "s": data["sp"]}
    with pytest.raises(Exception, match=r"invalid model|INVALID_GRAPH"):
        node = helper.make_node("RotaryEmbedding", ["x", "", "c", "s"], ["y"], domain="com.microsoft")
        _run(node, {k: v for k, v in feeds.items() if k != "p"}, (("", 23), MS))
    with pytest.raises(Exception, match="2 dimensions"):
        node = helper.make_node("RotaryEmbedding", ["x", "p", "c", "s"], ["y"], domain="com.microsoft")
        _run(node, {**feeds, "c": data["cb"], "s": data["sb"]}, (("", 23), MS))
    half = {**feeds, "c": data["cp"][:, :2], "s": data["sp"][:, :2]}
    partial = helper.make_node(
        "RotaryEmbedding", ["x", "p", "c", "s"], ["y"], domain="com.microsoft", rotary_embedding_dim=4
    )
    with pytest.raises(Exception, match="num_heads must be provided"):
        _run(partial, half, (("", 23), MS))
    partial.attribute.append(helper.make_attribute("num_heads", N))
    ref = _rope(
        data["x"], data["cp"][data["pos"]][:, None, :, :2], data["sp"][data["pos"]][:, None, :, :2], 0, 4
    )
    np.testing.assert_allclose(_run(partial, half, (("", 23), MS)), ref, atol=1e-6)


def test_ms_serves_per_batch_tables_flattened_to_token_caches(data) -> None:
    """[B, S, R/2] tables as [B*S, R/2] caches read at position_ids = Range(B*S).reshape(B, S): exact."""
    node = helper.make_node(
        "RotaryEmbedding", ["x", "p", "c", "s"], ["y"], domain="com.microsoft", num_heads=N
    )
    tokens = np.arange(B * S, dtype=np.int64).reshape(B, S)
    feeds = {
        "x": _bsnh(data["x"]),
        "p": tokens,
        "c": data["cb"].reshape(B * S, -1),
        "s": data["sb"].reshape(B * S, -1),
    }
    y = _run(node, feeds, (("", 23), MS))
    np.testing.assert_allclose(
        y, _bsnh(_rope(data["x"], data["cb"][:, None], data["sb"][:, None], 0)), atol=1e-6
    )


def test_both_compute_fp16_in_fp32_with_one_rounding() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((B, N, S, 64)) * 4).astype(np.float16)
    c, s = (rng.standard_normal((B, S, 32)).astype(np.float16) for _ in range(2))
    once = _rope(x, c[:, None], s[:, None], 0).astype(np.float16)
    a, b = x[..., :32], x[..., 32:]
    twice = np.concatenate([a * c[:, None] - b * s[:, None], b * c[:, None] + a * s[:, None]], -1)
    y = _run(helper.make_node("RotaryEmbedding", ["x", "c", "s"], ["y"]), {"x": x, "c": c, "s": s}, out=10)
    np.testing.assert_array_equal(y, once)
    assert (y != twice).any()  # the check can tell one rounding from fp16 arithmetic
    node = helper.make_node("RotaryEmbedding", ["x", "p", "c", "s"], ["y"], domain="com.microsoft")
    tokens = np.arange(B * S, dtype=np.int64).reshape(B, S)
    feeds = {"x": x, "p": tokens, "c": c.reshape(B * S, -1), "s": s.reshape(B * S, -1)}
    np.testing.assert_array_equal(_run(node, feeds, (("", 23), MS), out=10), once)
