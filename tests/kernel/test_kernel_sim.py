"""The host build of the custom op's kernel core against the NumPy reference, over a sweep of shapes.

Each case runs the tiling and the kernel core compiled by g++ for a chip's core count and UB size; the
host backend fails the run on any broken hardware rule (UB overflow, unaligned operand, non-32-byte
plain DataCopy on the 310P, an output element written twice or never).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rope_onnx.errors import InputError
from rope_onnx.kernel.chips import CHIPS
from rope_onnx.kernel.sim import simulate
from rope_onnx.op.reference import rope

HEADS = [(64, 64), (80, 80), (96, 96), (128, 128), (256, 256), (80, 32), (128, 64), (96, 48), (64, 16)]
SIZES = [(2, 3, 7), (1, 5, 1), (3, 7, 16)]  # odd L; decode L = 1; B*H = 21, not a multiple of 8 or 48
FORMS = ["LR", "11LR", "B1LR", "BL1R"]


def make_case(form: str, b: int, h: int, length: int, d: int, r: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    if form == "BL1R":
        x_shape, t_shape = (b, length, h, d), (b, length, 1, r)
    else:
        x_shape = (b, h, length, d)
        t_shape = {"LR": (length, r), "11LR": (1, 1, length, r), "B1LR": (b, 1, length, r)}[form]
    x = rng.standard_normal(x_shape).astype(dtype)
    cos = rng.standard_normal(t_shape).astype(dtype)  # arbitrary tables: the op must not rely on repeats
    sin = rng.standard_normal(t_shape).astype(dtype)
    return x, cos, sin


def check_exact(y: np.ndarray, x, cos, sin, interleaved: int, rotary: int) -> None:
    if x.dtype == np.float32:
        ref = rope(x, cos, sin, interleaved, rotary)
        scale = np.maximum(np.abs(ref), 1.0)
        assert np.all(np.abs(y - ref) <= 1e-6 * scale)
    else:  # within 1 ulp (of float16) of the float32 result rounded once
        f32 = [a.astype(np.float32) for a in (x, cos, sin)]
        ref32 = rope(*f32, interleaved, rotary)
        ulp = np.spacing(np.abs(ref32).astype(np.float16)).astype(np.float32)
        assert np.all(np.abs(y.astype(np.float32) - ref32) <= ulp)


CASES = list(itertools.product(CHIPS, [np.float16, np.float32], [0, 1], FORMS, SIZES, HEADS))


@pytest.mark.parametrize(
    "soc, dtype, interleaved, form, size, head",
    CASES,
    ids=[f"{c[0]}-{np.dtype(c[1]).name}-i{c[2]}-{c[3]}-{c[4]}-D{c[5][0]}R{c[5][1]}" for c in CASES],
)
def test_sweep_exact_minimal_traffic_fits_ub(soc, dtype, interleaved, form, size, head):
    d, r = head
    x, cos, sin = make_case(form, *size, d, r, dtype, seed=d * 7 + r)
    result = simulate(x, cos, sin, interleaved, 0 if r == d else r, soc)
    check_exact(result.y, x, cos, sin, interleaved, r)
    moved = result.gm_bytes_read + result.gm_bytes_written
    assert moved <= 1.05 * result.min_bytes
    assert result.ub_peak_bytes <= CHIPS[soc].ub_bytes
    assert result.gm_bytes_written == x.nbytes  # y written exactly once (the backend also checks per element)


def test_seed_shape_moves_minimal_bytes_on_all_cores():
    x, cos, sin = make_case("LR", 1, 32, 512, 128, 128, np.float16, seed=1)
    result = simulate(x, cos, sin, 1, 0, "ascend910b")
    assert result.max_abs_err_vs_reference == 0.0
    table_bytes = 2 * 512 * 128 * 2
    assert result.gm_bytes_read == x.nbytes + table_bytes  # each table row read once, not once per head
    assert result.blocks == CHIPS["ascend910b"].cores


def test_decode_min_bytes_counts_one_table_row_per_block():
    x, cos, sin = make_case("LR", 1, 32, 1, 128, 128, np.float16, seed=2)
    result = simulate(x, cos, sin, 0, 0, "ascend910b")
    assert result.blocks == 32  # one table row, 32 x rows: each block takes one x row
    assert result.min_bytes == 2 * x.nbytes + result.blocks * 2 * 128 * 2
    assert result.gm_bytes_read + result.gm_bytes_written == result.min_bytes


def test_unaligned_rows_use_datacopypad_on_910b_and_are_refused_on_310p():
    x, cos, sin = make_case("LR", 2, 3, 5, 40, 20, np.float16, seed=3)  # 80-byte rows, 40-byte table rows
    result = simulate(x, cos, sin, 0, 20, "ascend910b")
    check_exact(result.y, x, cos, sin, 0, 20)
    assert result.plan["gather_swap"]  # R/2 = 10: half-vectors not 32-byte aligned, Gather instead
    with pytest.raises(InputError, match="no DataCopyPad"):
        simulate(x, cos, sin, 0, 20, "ascend310p")


def test_large_rows_and_many_tiles_stay_exact():
    x, cos, sin = make_case("B1LR", 2, 4, 300, 256, 256, np.float32, seed=4)
    result = simulate(x, cos, sin, 1, 0, "ascend310p")
    check_exact(result.y, x, cos, sin, 1, 256)
    assert result.gm_bytes_read + result.gm_bytes_written == result.min_bytes


def test_nan_inf_and_signed_zero_pass_through_channels_bitwise():
    x, cos, sin = make_case("LR", 1, 2, 3, 64, 32, np.float16, seed=5)
    x[..., 40] = np.inf
    x[..., 41] = -0.0
    x[..., 42] = np.nan
    y = simulate(x, cos, sin, 1, 32, "ascend910b").y
    assert np.array_equal(y[..., 32:].view(np.uint16), x[..., 32:].view(np.uint16))


@pytest.mark.parametrize(
    "x_shape, t_shape, rotary, message",
    [
        ((2, 4, 8), (4, 8), 6, "last dim must equal rotary_dim"),
        ((2, 3, 4, 8), (3, 3, 8), 0, "does not broadcast"),
        ((2, 8), (2, 2, 8), 0, "more leading axes"),
    ],
)
def test_bad_shapes_are_refused_with_a_reason(x_shape, t_shape, rotary, message):
    x = np.zeros(x_shape, np.float32)
    t = np.zeros(t_shape, np.float32)
    with pytest.raises(InputError, match=message):
        simulate(x, t, t, 1, rotary)


def test_odd_rotary_dim_and_wrong_dtype_are_refused():
    x = np.zeros((2, 4, 8), np.float32)
    with pytest.raises(InputError, match="rotary_dim"):
        simulate(x, np.zeros((4, 7), np.float32), np.zeros((4, 7), np.float32), 1, 7)
    with pytest.raises(InputError, match="dtype"):
        simulate(x, np.zeros((4, 8), np.float16), np.zeros((4, 8), np.float16))
    with pytest.raises(InputError, match="float16 or float32"):
        simulate(x.astype(np.float64), x.astype(np.float64), x.astype(np.float64))
