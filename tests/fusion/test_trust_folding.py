"""Integers the proof reads are folded as ONNX computes them, or not at all.

A Slice bound written as ``Cast(2**32 + 1, to=int32)`` is 1 in ONNX (an int→int Cast keeps the low
bits): a folder that keeps 2**32 + 1 sees "past the end", takes the whole table and fuses a site
whose table is really one channel wide.  Float→int Casts out of range and Add/Mul/Sub results
outside int64 have no value ONNX defines (or one that wrapped): such a value is unknown, and the
site that needs it is skipped with a reason.  Each case is also run on ONNX Runtime: anything
that fuses must compute what the original computes.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from trust_graphs import INT64_MAX, INT64_MIN, D, Graph, fuse_and_check, random_feeds, reasons

FEEDS = [
    random_feeds({"x": [2, 3, 5, D], "cos": [1, 1, 5, D], "sin": [1, 1, 5, D]}, seed=1),
    random_feeds({"x": [1, 3, 1, D], "cos": [1, 1, 1, D], "sin": [1, 1, 1, D]}, seed=2),
]

Make = "callable[[Graph], str]"


def _cast_chain(value: int, to: int, dtype: object = np.int64):
    """``Cast(Cast(value, to), int64)``: Slice bounds must all be int64, so narrow and widen back."""

    def make(g: Graph) -> str:
        return g.op("Cast", [g.op("Cast", [g.const([value], dtype)], to=to)], to=TensorProto.INT64)

    return make


def _binary(op: str, a: int, b: int, then_add: int | None = None):
    def make(g: Graph) -> str:
        out = g.op(op, [g.const([a]), g.const([b])])
        return out if then_add is None else g.op("Add", [out, g.const([then_add])])

    return make


def _float_cast(value: float, dtype: object = np.float32):
    def make(g: Graph) -> str:
        return g.op("Cast", [g.const([value], dtype)], to=TensorProto.INT64)

    return make


def _table_end_site(end) -> object:
    """cos is read as ``cos[..., :end]``: a full table only if ``end`` >= 16."""
    g = Graph()
    cos = g.last_slice("cos", g.const([0]), end(g))
    y = g.rope("x", cos, "sin")
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    return g.model([("x", ["B", 3, "L", D]), ("cos", [1, 1, "L", D]), ("sin", [1, 1, "L", D])], ["y"])


def _mid_site(mid) -> object:
    """rotate_half split at ``mid``: RoPE exactly when ``mid`` is 8."""
    g = Graph()
    y = g.rope("x", "cos", "sin", mid=mid(g))
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    return g.model([("x", ["B", 3, "L", D]), ("cos", [1, 1, "L", D]), ("sin", [1, 1, "L", D])], ["y"])


# Each wraps to 1 in ONNX: the table is one channel wide, broadcast over all 16 channels.
WRAPS_TO_ONE = {
    "int32 of 2**32+1": _cast_chain(2**32 + 1, TensorProto.INT32),
    "int32 of -(2**32)+1": _cast_chain(-(2**32) + 1, TensorProto.INT32),
    "uint8 of 257": _cast_chain(257, TensorProto.UINT8),
    "int16 of 65537": _cast_chain(65537, TensorProto.INT16),
    "uint16 of 65537": _cast_chain(65537, TensorProto.UINT16),
    "int8 of 257": _cast_chain(257, TensorProto.INT8),
}


@pytest.mark.parametrize("case", sorted(WRAPS_TO_ONE))
def test_int_to_int_cast_wraps_and_the_table_is_read_one_channel_wide(case: str) -> None:
    """Exactly RoPE with every channel reading cos[..., 0]: it may fuse, through a widening Gather
    of channel 0 — never with the whole table (what a folder keeping 2**32 + 1 would prove)."""
    result, fused = fuse_and_check(_table_end_site(WRAPS_TO_ONE[case]), FEEDS)
    if result.fused == 0:
        assert result.skipped, "a sum of products on a head-sized axis must be reported"
        return
    node = next(n for n in fused.graph.node if n.op_type == "RoPECustomer")
    assert node.input[1] != "cos", "the whole table was taken: the bound was not folded as ONNX does"


# Each is 8 in ONNX: the site is exactly RoPE and must fuse (and compute what the original does).
WRAPS_TO_EIGHT = {
    "int32 of 2**32+8": _cast_chain(2**32 + 8, TensorProto.INT32),
    "int32 of -(2**32)+8": _cast_chain(-(2**32) + 8, TensorProto.INT32),
    "uint8 of 264": _cast_chain(264, TensorProto.UINT8),
    "int8 of 264": _cast_chain(264, TensorProto.INT8),
    "int16 of 65544": _cast_chain(65544, TensorProto.INT16),
    "uint32 of 2**32+8": _cast_chain(2**32 + 8, TensorProto.UINT32),
    "int64 of int32 8": _cast_chain(8, TensorProto.INT64, np.int32),
}


@pytest.mark.parametrize("case", sorted(WRAPS_TO_EIGHT))
def test_int_to_int_cast_keeps_the_low_bits_and_the_true_site_fuses(case: str) -> None:
    result, _ = fuse_and_check(_mid_site(WRAPS_TO_EIGHT[case]), FEEDS)
    assert result.fused == 1, reasons(result)


def test_a_cast_that_keeps_the_value_still_fuses() -> None:
    result, _ = fuse_and_check(_table_end_site(_cast_chain(D, TensorProto.INT32)), FEEDS)
    assert result.fused == 1, reasons(result)


# Outside int64: ONNX Runtime wraps these to 1; the value is unknown to the proof.
OVERFLOWS = {
    "Add(MAX, MAX) + 3": _binary("Add", INT64_MAX, INT64_MAX, then_add=3),
    "Mul(2**32, 2**32) + 1": _binary("Mul", 2**32, 2**32, then_add=1),
    "Sub(MIN, MAX)": _binary("Sub", INT64_MIN, INT64_MAX),
    "Mul(-(2**62), 4) + 1": _binary("Mul", -(2**62), 4, then_add=1),
    "Add(MIN, -1) + 2**63 + 1": lambda g: g.op(
        "Add",
        [
            g.op("Add", [g.op("Add", [g.const([INT64_MIN]), g.const([-1])]), g.const([INT64_MAX])]),
            g.const([3]),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(OVERFLOWS))
def test_arithmetic_outside_int64_is_unknown_and_the_site_is_skipped(case: str) -> None:
    result, _ = fuse_and_check(_table_end_site(OVERFLOWS[case]), FEEDS)
    assert result.fused == 0, result.sites
    assert result.skipped, "the site must be skipped with a reason, not missed silently"


@pytest.mark.parametrize("case", ["Mul(2**62, 4) + 8", "Add(MAX, 9) - MAX - ... "])
def test_an_overflowing_split_point_is_unknown_even_when_it_wraps_to_the_right_value(case: str) -> None:
    make = (
        _binary("Mul", 2**62, 4, then_add=8)
        if case.startswith("Mul")
        else lambda g: g.op(
            "Add",
            [g.op("Add", [g.const([INT64_MAX]), g.const([INT64_MAX])]), g.const([10])],
        )
    )
    result, _ = fuse_and_check(_mid_site(make), FEEDS)
    assert result.fused == 0, result.sites
    assert result.skipped


FLOAT_CASTS = {
    "float32 1e30": _float_cast(1e30),
    "float32 -1e30": _float_cast(-1e30),
    "float32 nan": _float_cast(float("nan")),
    "float32 inf": _float_cast(float("inf")),
    "float64 1e300": _float_cast(1e300, np.float64),
}


@pytest.mark.parametrize("case", sorted(FLOAT_CASTS))
def test_float_to_int_out_of_range_is_unknown(case: str) -> None:
    model = _table_end_site(FLOAT_CASTS[case])
    result, _ = fuse_and_check(model, [])  # ONNX leaves the value undefined: no run to compare
    assert result.fused == 0, result.sites
    assert result.skipped
