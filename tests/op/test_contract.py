"""The op contract and its single NumPy definition."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from rope_onnx.errors import InputError
from rope_onnx.op.contract import MAX_OPSET, SUPPORTED_OPSETS, RopeAttributes
from rope_onnx.op.reference import rope, rotate


def test_opset_range_reaches_the_newest_the_pinned_onnx_defines() -> None:
    assert SUPPORTED_OPSETS[0] == 11
    assert onnx.defs.onnx_opset_version() == MAX_OPSET
    assert list(SUPPORTED_OPSETS) == list(range(11, MAX_OPSET + 1))


@pytest.mark.parametrize(("interleaved", "rotary_dim"), [(2, 0), (0, 3), (1, -2)])
def test_invalid_attributes_are_refused(interleaved: int, rotary_dim: int) -> None:
    with pytest.raises(InputError):
        RopeAttributes(interleaved, rotary_dim)


def test_rotary_dim_larger_than_the_head_is_refused() -> None:
    with pytest.raises(InputError):
        RopeAttributes(0, 32).resolved_rotary_dim(16)


def test_rotation_by_the_definition() -> None:
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 8)
    assert rotate(x, 1).tolist() == [[-2, 1, -4, 3, -6, 5, -8, 7]]
    assert rotate(x, 0).tolist() == [[-5, -6, -7, -8, 1, 2, 3, 4]]


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rope_is_a_rotation_by_angle(interleaved: int) -> None:
    """With cos/sin of real angles each channel pair is rotated: norms are preserved, angle adds."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 16)).astype(np.float64)
    theta = rng.uniform(-3, 3, (5, 8))
    full = np.repeat(theta, 2, axis=-1) if interleaved else np.concatenate([theta, theta], axis=-1)
    y = rope(x, np.cos(full), np.sin(full), interleaved)
    pairs = (
        (lambda t: t.reshape(*t.shape[:-1], 8, 2))
        if interleaved
        else (lambda t: np.stack([t[..., :8], t[..., 8:]], axis=-1))
    )
    px, py = pairs(x), pairs(y)
    np.testing.assert_allclose(np.linalg.norm(py, axis=-1), np.linalg.norm(px, axis=-1), rtol=1e-6)
    angle = np.angle(py[..., 0] + 1j * py[..., 1]) - np.angle(px[..., 0] + 1j * px[..., 1])
    np.testing.assert_allclose(np.cos(angle), np.broadcast_to(np.cos(theta), angle.shape), atol=1e-6)


def test_partial_rotary_passes_the_tail_through_and_fp16_rounds_once() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 24)).astype(np.float16)
    cos, sin = (rng.standard_normal((4, 8)).astype(np.float16) for _ in range(2))
    y = rope(x, cos, sin, interleaved=0, rotary_dim=8)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y[..., 8:], x[..., 8:])
    x32 = x[..., :8].astype(np.float32)
    want = (x32 * cos.astype(np.float32) + rotate(x32, 0) * sin.astype(np.float32)).astype(np.float16)
    np.testing.assert_array_equal(y[..., :8], want)


def test_tables_that_would_broadcast_x_are_refused() -> None:
    x = np.zeros((1, 4, 8), np.float32)
    with pytest.raises(ValueError, match="broadcast"):
        rope(x, np.zeros((3, 4, 8), np.float32), np.zeros((3, 4, 8), np.float32))
