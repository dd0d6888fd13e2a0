"""Channel algebra: what each output channel of a candidate computes, as a polynomial.

We do not match node sequences.  We execute the candidate symbolically along its channel axes:
every element of an :class:`Expr` grid is a polynomial over *leaf channels* — ``(leaf, j)`` is
channel ``j`` of a tensor the candidate reads (x, or a cos/sin table).  Slices, splits, gathers,
concats and reshapes move polynomials around; Neg, Mul, Add and Sub combine them exactly as the
op does element-wise.  Whatever the exporter wrote — Slice or Split, Neg or ``Mul(-1)``, either
operand order, step-2 slices or a reshape to pairs — a RoPE site ends as the same polynomials:
``y[c] = x[c]·cos[a(c)] ± x[p(c)]·sin[b(c)]``, which :mod:`rope_onnx.fusion.prove` checks against the
op's definition.  A monomial is a sorted tuple of leaf channels; coefficients are exact floats.
Leaf ids are the candidate's own (0, 1, ... as its trace meets them), so alike sites compute equal
polynomials; these functions are pure and never mutate a polynomial, which lets
:mod:`rope_onnx.fusion.memo` hand one site's results to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Factor = tuple[int, int]  # (leaf id, channel)
Monomial = tuple[Factor, ...]
Poly = dict[Monomial, float]

#: A RoPE channel is a sum of two products; anything of higher degree is not RoPE.
MAX_DEGREE = 2


class NotRope(Exception):
    """The candidate stops being an exact channel computation (with the reason)."""


def _grid(polys: list[Poly], shape: tuple[int, ...]) -> np.ndarray:
    return np.fromiter(polys, dtype=object, count=len(polys)).reshape(shape)  # 5x faster than arr[:] =


@dataclass(frozen=True)
class Expr:
    """A tensor seen through its trailing ``grid.ndim`` axes (the channel grid)."""

    grid: np.ndarray  # dtype=object, each element a Poly
    nodes: frozenset[int] = field(default_factory=frozenset)  # nodes that computed it

    @property
    def k(self) -> int:
        return self.grid.ndim

    def with_grid(self, grid: np.ndarray, *more_nodes: frozenset[int]) -> Expr:
        nodes = self.nodes.union(*more_nodes) if more_nodes else self.nodes
        return Expr(grid, nodes)

    def mixes_leaves(self) -> bool:
        """Every term is one leaf channel (degree <= 1) and they come from several leaves: a linear
        mix of inputs.  One pass that stops at the first product (most tensors asked are products)."""
        seen: set[int] = set()
        for poly in self.grid.flat:
            for m in poly:
                if len(m) > 1:
                    return False
                if m:
                    seen.add(m[0][0])
        return len(seen) > 1


@dataclass(frozen=True)
class Scalar:
    """A constant that is the same number everywhere (e.g. the -1 of ``x2 * -1``)."""

    value: float
    nodes: frozenset[int] = field(default_factory=frozenset)
    #: The constant's own shape (all entries equal): it must not widen what it multiplies.
    shape: tuple[int, ...] = ()


def leaf(leaf_id: int, width: int) -> Expr:
    """Channels 0..width-1 of a leaf tensor, on a 1-D grid."""
    return Expr(_grid([{((leaf_id, j),): 1.0} for j in range(width)], (width,)))


def scale(expr: Expr, factor: float, nodes: frozenset[int]) -> Expr:
    """Multiply by a constant.  Only ±1 is exact in every precision, so only ±1 is followed."""
    if factor not in (1.0, -1.0):
        raise NotRope(f"multiplies by the constant {factor:g}")
    if factor == 1.0:  # c * 1.0 == c for every float: the polynomials (never mutated) are shared
        return expr.with_grid(expr.grid, nodes)
    polys = [{m: c * factor for m, c in poly.items()} for poly in expr.grid.flat]
    return expr.with_grid(_grid(polys, expr.grid.shape), nodes)


def _broadcast(a: Expr, b: Expr) -> tuple[list[Poly], list[Poly], tuple[int, ...]]:
    """Both grids' polynomials in one element order, and the broadcast shape."""
    ga, gb = a.grid, b.grid
    if ga.shape != gb.shape:
        try:
            ga, gb = np.broadcast_arrays(ga, gb)
        except ValueError as exc:
            raise NotRope(f"channel grids {a.grid.shape} and {b.grid.shape} do not broadcast") from exc
    return ga.ravel().tolist(), gb.ravel().tolist(), ga.shape


def add(a: Expr, b: Expr, sign: float, nodes: frozenset[int]) -> Expr:
    """a + sign·b element-wise (Add: sign=1, Sub: sign=-1).

    The two sides must hold different monomials: a sum that merges or cancels terms is equal to
    a rotation only in exact arithmetic, not in floating point, so it is not followed.
    """
    pas, pbs, shape = _broadcast(a, b)
    polys = []
    for pa, pb in zip(pas, pbs, strict=True):
        if len(pa) == 1 and len(pb) == 1:  # the common case, one term each side: no set, no copy
            ((ma, ca),) = pa.items()
            ((mb, cb),) = pb.items()
            if ma == mb:
                raise NotRope("an Add/Sub merges or cancels equal terms (not an exact rotation)")
            polys.append({ma: ca, mb: sign * cb})
            continue
        if pa.keys() & pb.keys():
            raise NotRope("an Add/Sub merges or cancels equal terms (not an exact rotation)")
        out = dict(pa)
        out.update({m: sign * c for m, c in pb.items()})
        polys.append(out)
    return Expr(_grid(polys, shape), a.nodes | b.nodes | nodes)


def mul(a: Expr, b: Expr, nodes: frozenset[int]) -> Expr:
    """a · b element-wise, where each side is one term per channel.

    Requiring single terms means every product in the result was computed by exactly one
    multiplication of two tensors, as the fused op computes it (no distributed sums).
    """
    pas, pbs, shape = _broadcast(a, b)
    polys: list[Poly] = []
    for pa, pb in zip(pas, pbs, strict=True):
        if len(pa) != 1 or len(pb) != 1:
            raise NotRope("a Mul of sums (not one product per channel)")
        ((ma, ca),) = pa.items()
        ((mb, cb),) = pb.items()
        if len(ma) == 1 and len(mb) == 1:  # two leaf channels: sorted() of two, spelled out
            fa, fb = ma[0], mb[0]
            monomial: Monomial = (fb, fa) if fb < fa else (fa, fb)
        else:
            monomial = tuple(sorted(ma + mb))
            if len(monomial) > MAX_DEGREE:
                raise NotRope("a product of more than two factors (not a rotation)")
        polys.append({monomial: ca * cb})
    return Expr(_grid(polys, shape), a.nodes | b.nodes | nodes)
