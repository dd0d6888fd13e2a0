"""Expr.mixes_leaves against the plain scan it replaced: every term of every channel looked at."""

from __future__ import annotations

import numpy as np
import pytest

from rope_onnx.fusion.channels import Expr, Poly, _grid


def _plain_mixes(expr: Expr) -> bool:
    seen: set[int] = set()
    for poly in expr.grid.flat:
        for m in poly:
            if len(m) > 1:
                return False
            if m:
                seen.add(m[0][0])
    return len(seen) > 1


def _polys(seed: int) -> list[Poly]:
    """Random polynomials of degree 0-2 over leaves 0-2 (a product only now and then)."""
    rng = np.random.default_rng(seed)
    out: list[Poly] = []
    for _ in range(int(rng.integers(0, 6))):
        poly: Poly = {}
        for _ in range(int(rng.integers(0, 3))):
            degree = int(rng.choice([0, 1, 1, 1, 2], p=[0.1, 0.3, 0.3, 0.25, 0.05]))
            factors = tuple(sorted((int(rng.integers(0, 3)), int(rng.integers(0, 4))) for _ in range(degree)))
            poly[factors] = 1.0
        out.append(poly)
    return out


@pytest.mark.parametrize("seed", range(300))
def test_mixes_leaves_is_the_plain_scan(seed: int) -> None:
    polys = _polys(seed)
    expr = Expr(_grid(polys, (len(polys),)))
    assert expr.mixes_leaves() is _plain_mixes(expr)


def test_mixes_leaves_on_moved_grids() -> None:
    a = [{((0, j),): 1.0} for j in range(4)]
    b = [{((1, j),): -1.0} for j in range(4)]
    product = [{((0, 0), (1, 0)): 1.0}]
    for polys, want in [(a, False), (a + b, True), (b + a[:1], True), (a + product, False), ([], False)]:
        for shape in [(len(polys),)] + ([(2, len(polys) // 2)] if len(polys) % 2 == 0 and polys else []):
            expr = Expr(_grid(polys, shape))
            assert expr.mixes_leaves() is want is _plain_mixes(expr)
