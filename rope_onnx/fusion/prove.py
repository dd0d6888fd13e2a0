"""The proof: does a channel expression equal RoPECustomer's definition (docs/op-contract.md)?

For an output of D channels the op computes, for c < R,
``y[c] = x[c]·cos[c] + rot(x)[c]·sin[c]`` with ``rot(x)[c] = -x[p(c)]`` for the first channel of
each pair and ``+x[p(c)]`` for the second, where p pairs (2i, 2i+1) when interleaved and
(i, i + R/2) otherwise; channels c >= R are x[c].  The tables may be any tensors the site reads:
channel c of the op's cos is channel a(c) of the site's cos leaf (likewise b(c) for sin), which is
how half-width or repeat-interleaved tables are widened exactly once by a Gather.
"""

from __future__ import annotations

from dataclasses import dataclass

from rope_onnx.fusion.channels import Expr, Monomial, NotRope


@dataclass(frozen=True)
class Proof:
    """A proven site: the op's inputs, attributes and the table channel maps."""

    x: str
    x_offset: int  # the site rotates x channels x_offset .. x_offset + head_dim - 1
    cos: str
    sin: str
    cos_channels: tuple[int, ...]  # a(c): op cos channel c = site cos leaf channel a(c)
    sin_channels: tuple[int, ...]
    interleaved: int
    rotary_dim: int
    head_dim: int


def partner(c: int, rotary: int, interleaved: int) -> tuple[int, float]:
    """The channel paired with ``c`` and the sign it enters rot(x) with."""
    if interleaved:
        return (c + 1, -1.0) if c % 2 == 0 else (c - 1, 1.0)
    half = rotary // 2
    return (c + half, -1.0) if c < half else (c - half, 1.0)


def _split_terms(poly: dict[Monomial, float], x: int, c: int) -> tuple[tuple, tuple]:
    """(direct, rotated) = ((table factor, coeff), (x channel, table factor, coeff)) of output channel
    c, whose own x channel is ``c`` (the caller adds the site's offset into x)."""
    direct = rotated = None
    for monomial, coeff in poly.items():
        xs = [f for f in monomial if f[0] == x]
        others = [f for f in monomial if f[0] != x]
        if len(xs) != 1 or len(others) != 1:
            raise NotRope(f"channel {c} has a term that is not x times a table")
        if xs[0][1] == c and direct is None:
            direct = (others[0], coeff)
        else:
            rotated = (xs[0][1], others[0], coeff)
    if direct is None or rotated is None:
        raise NotRope(f"channel {c} is not x·cos plus a partner channel times sin")
    return direct, rotated


def _offset(poly: dict[Monomial, float], x: int) -> int:
    """Which x channel output channel 0 starts at: the one its +1 (direct, x·cos) term reads."""
    direct = [f[1] for m, c in poly.items() if c == 1.0 for f in m if f[0] == x]
    if len(direct) != 1:
        raise NotRope("channel 0 has no single x·cos term")
    return direct[0]


def _prove_with_x(polys: list[dict], x: int, names: list[str], rotary: int) -> Proof:
    head = len(polys)
    offset = _offset(polys[0], x)
    polys = [_shift(poly, x, offset) for poly in polys]
    _, (p0, _, _) = _split_terms(polys[0], x, 0)
    interleaved = 0 if p0 == rotary // 2 else 1 if p0 == 1 else -1
    if interleaved < 0:
        raise NotRope(f"channel 0 is paired with channel {p0}, neither 1 (pairs) nor R/2={rotary // 2}")
    cos_leaf = sin_leaf = None
    cos_channels, sin_channels = [], []
    for c in range(rotary):
        ((cos_f, cos_coeff), (pc, sin_f, sin_coeff)) = _split_terms(polys[c], x, c)
        want_partner, want_sign = partner(c, rotary, interleaved)
        if pc != want_partner:
            raise NotRope(f"channel {c} is paired with {pc}, the layout needs {want_partner}")
        if cos_coeff != 1.0 or sin_coeff != want_sign:
            raise NotRope(
                f"channel {c} has signs ({cos_coeff:+g}, {sin_coeff:+g}); "
                f"a rotation needs (+1, {want_sign:+g})"
            )
        cos_leaf = cos_f[0] if cos_leaf is None else cos_leaf
        sin_leaf = sin_f[0] if sin_leaf is None else sin_leaf
        if (cos_f[0], sin_f[0]) != (cos_leaf, sin_leaf):
            raise NotRope(f"channel {c} reads other cos/sin tensors than channel 0")
        cos_channels.append(cos_f[1])
        sin_channels.append(sin_f[1])
    for c in range(rotary, head):
        if polys[c] != {((x, c),): 1.0}:
            raise NotRope(f"channel {c} after the rotated part is not x[{c}] passed through")
    return Proof(
        names[x],
        offset,
        names[cos_leaf],
        names[sin_leaf],
        tuple(cos_channels),
        tuple(sin_channels),
        interleaved,
        rotary,
        head,
    )


def _shift(poly: dict[Monomial, float], x: int, offset: int) -> dict[Monomial, float]:
    """Renumber x's channels so that the site's first channel is 0 (negative ones cannot match)."""
    if not offset:
        return poly
    return {tuple(sorted((f[0], f[1] - offset) if f[0] == x else f for f in m)): c for m, c in poly.items()}


def prove(expr: Expr, leaf_names: list[str]) -> Proof:
    """Return the :class:`Proof` that ``expr`` (grid of one axis) is RoPE, or raise NotRope(reason)."""
    if expr.k != 1:
        raise NotRope("the output is not a tensor of channels")
    polys = list(expr.grid.flat)
    degrees = [max((len(m) for m in p), default=0) for p in polys]
    rotary = next((c for c, d in enumerate(degrees) if d != 2), len(polys))
    if rotary == 0:
        raise NotRope("channel 0 is not rotated")
    if rotary % 2:
        raise NotRope(f"{rotary} channels are rotated, an odd number")
    if any(d != 1 for d in degrees[rotary:]):
        raise NotRope(f"channels after the first {rotary} are neither rotated nor passed through")
    if len(polys[0]) != 2:
        raise NotRope(f"channel 0 is a sum of {len(polys[0])} products, RoPE has 2")
    first, second = (set(f[0] for f in m) for m in polys[0])
    candidates = sorted(first & second)  # x is read by both terms of every rotated channel
    reasons = []
    for x in candidates:
        try:
            return _prove_with_x(polys, x, leaf_names, rotary)
        except NotRope as why:
            reasons.append(str(why))
    raise NotRope(reasons[0] if reasons else "no tensor is rotated with its own channels")
