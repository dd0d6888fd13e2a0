"""Integer arithmetic exactly as ONNX computes it, or "unknown".

The folder (:mod:`rope_onnx.graph.folding`) evaluates slice bounds, split sizes and shapes that a
graph computes; a proof built on a value ONNX Runtime would not compute is a wrong fusion.  Two
rules, from the ONNX operator definitions:

- ``Cast`` from an integer type to another keeps the low bits (two's complement): int32 of
  ``2**32 + 1`` is 1, uint8 of 257 is 1.  :func:`cast_int` applies that.
- Integer ``Add``/``Sub``/``Mul`` results outside the tensor type, and float→int ``Cast``s of values
  outside the target range (or NaN/inf), have no value ONNX defines; runtimes wrap or saturate as
  they please.  :func:`checked` turns them into ``None`` — unknown — so the site that needs them is
  skipped with a reason instead of being proven on a number the model never computes.
"""

from __future__ import annotations

import math

from onnx import TensorProto

#: Integer element types: (bits, signed).
INT_TYPES: dict[int, tuple[int, bool]] = {
    TensorProto.INT8: (8, True),
    TensorProto.INT16: (16, True),
    TensorProto.INT32: (32, True),
    TensorProto.INT64: (64, True),
    TensorProto.UINT8: (8, False),
    TensorProto.UINT16: (16, False),
    TensorProto.UINT32: (32, False),
    TensorProto.UINT64: (64, False),
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def cast_int(value: int, to: int) -> int:
    """``value`` converted to the integer type ``to`` as ONNX's Cast does: the low bits, kept."""
    bits, signed = INT_TYPES[to]
    low = value & ((1 << bits) - 1)
    return low - (1 << bits) if signed and low >= 1 << (bits - 1) else low


def cast_float(value: float, to: int) -> int | None:
    """A float cast to an integer type: truncated toward zero, or None when out of range."""
    if not math.isfinite(value):
        return None
    bits, signed = INT_TYPES[to]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    truncated = int(value)
    return truncated if lo <= truncated <= hi else None


def checked(value: int) -> int | None:
    """An int64 result, or None when it left int64 (ONNX defines no value for that)."""
    return value if INT64_MIN <= value <= INT64_MAX else None
