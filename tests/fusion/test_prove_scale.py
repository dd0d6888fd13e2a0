"""Scale of the proof in the channel count: each channel's polynomial is read a bounded number of
times (counted, never timed).

``prove`` reads every output channel on its own (fusion.prove) and ``arrange`` checks each one once
against the op's definition; a proof that compared channels with each other (a search for a pair's
other half by scanning, a permutation check by pairs) would read each polynomial O(width) times.
The site here is RoPE built with the channel algebra as the tracer builds it (x·cos + rotate_half(x)·sin),
its polynomials wrapped so that every read of one is counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rope_onnx.fusion.channels import Expr, NotRope, add, leaf, mul, scale
from rope_onnx.fusion.prove import prove

NONE: frozenset[int] = frozenset()


class CountingPoly(dict):
    """A channel polynomial that counts how often the proof reads it."""

    reads = 0

    def _read(self) -> None:
        CountingPoly.reads += 1

    def items(self) -> Any:
        self._read()
        return super().items()

    def __iter__(self) -> Any:
        self._read()
        return super().__iter__()

    def __eq__(self, other: object) -> bool:
        self._read()
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        self._read()
        return super().__ne__(other)

    __hash__ = None  # type: ignore[assignment]


def _rope(width: int, rotary: int) -> Expr:
    """x·cos + rotate_half(x)·sin on the first ``rotary`` channels, the rest of x passed through."""
    x, cos, sin = leaf(0, width), leaf(1, rotary), leaf(2, rotary)
    half = rotary // 2
    x1, x2 = Expr(x.grid[:half]), Expr(x.grid[half:rotary])
    rotated = Expr(np.concatenate([scale(x2, -1.0, NONE).grid, x1.grid]))
    y = add(mul(Expr(x.grid[:rotary]), cos, NONE), mul(rotated, sin, NONE), 1.0, NONE)
    return Expr(np.concatenate([y.grid, x.grid[rotary:]]))


def _counted(expr: Expr) -> Expr:
    polys = [CountingPoly(p) for p in expr.grid.flat]
    grid = np.empty(len(polys), dtype=object)
    grid[:] = polys
    return Expr(grid)


def _reads(width: int, rotary: int) -> int:
    expr = _counted(_rope(width, rotary))
    CountingPoly.reads = 0
    proof = prove(expr, ["x", "cos", "sin"])
    assert (proof.x, proof.cos, proof.sin) == ("x", "cos", "sin")
    assert (proof.rotary_dim, proof.head_dim, proof.interleaved) == (rotary, width, 0)
    assert proof.cos_channels == tuple(range(rotary)) and proof.x_offset == 0 and not proof.moves
    return CountingPoly.reads


@pytest.mark.parametrize("rotary_share", [1, 2])  # all channels rotated; half of them passed through
def test_each_channel_is_read_a_bounded_number_of_times(rotary_share: int) -> None:
    for width in (64, 4096):  # a quadratic proof reads each channel ~width/2 times: ~2000 at 4096
        reads = _reads(width, width // rotary_share)
        assert reads <= 8 * width, (width, reads)


def test_a_flipped_sign_is_still_found_at_any_width() -> None:
    expr = _rope(4096, 4096)
    polys = list(expr.grid.flat)
    (direct, cross) = polys[4000].items()
    polys[4000] = {direct[0]: direct[1], cross[0]: -cross[1]}  # a second half that turns the wrong way
    grid = np.empty(len(polys), dtype=object)
    grid[:] = polys
    with pytest.raises(NotRope, match=r"^channel 1952 is x\[1952\]·cos − x\[4000\]·sin and no channel is"):
        prove(Expr(grid), ["x", "cos", "sin"])
