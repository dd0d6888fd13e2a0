"""The proof: does a channel expression equal RoPECustomer's definition (docs/op-contract.md)?

For an output of D channels the op computes, for c < R,
``y[c] = x[c]·cos[c] + rot(x)[c]·sin[c]`` with ``rot(x)[c] = -x[p(c)]`` for the first channel of
each pair and ``+x[p(c)]`` for the second, where p pairs (2i, 2i+1) when interleaved and
(i, i + R/2) otherwise; channels c >= R are x[c].  The tables may be any tensors the site reads:
channel c of the op's cos is channel a(c) of the site's cos leaf (likewise b(c) for sin), which is
how half-width or repeat-interleaved tables are widened exactly once by a Gather.

A site need not keep the op's channel order.  The proof reads every output channel on its own: a
pair's first channel is ``x[a]·C − x[b]·S``, its second ``x[b]·C' + x[a]·S'`` (found wherever it
sits), every other channel is one x channel passed through, and no x channel is read twice.  It
then chooses the op's channel order and the data movement that order needs
(:mod:`rope_onnx.fusion.arrange`: the op reading x's channels in another order, a Concat of x's
untouched channels around the op's output, or a Gather of that output) and checks, channel by
channel, that the op's definition moved that way gives exactly the traced polynomials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

from rope_onnx.fusion.arrange import Pair, arrange, partner
from rope_onnx.fusion.channels import Expr, Monomial, NotRope

__all__ = ["Proof", "named", "partner", "proof_fields", "prove"]

#: A proof's fields but its tensor names, and the leaf ids of (x, cos, sin): see proof_fields.
Answer = tuple[dict[str, Any], tuple[int, int, int]]
_ONE, _TWO = {1}, {2}  # the monomial lengths of a passed-through and of a rotated channel


@dataclass(frozen=True)
class Proof:
    """A proven site: the op's inputs, attributes, the table channel maps and the data movement."""

    x: str
    x_offset: int  # the op reads x channels x_offset .. x_offset + head_dim - 1 (x_channels: their min)
    cos: str
    sin: str
    cos_channels: tuple[int, ...]  # a(c): op cos channel c = site cos leaf channel a(c)
    sin_channels: tuple[int, ...]
    interleaved: int
    rotary_dim: int
    head_dim: int  # the op's x width (the site's output may hold more channels: ``before``/``after``)
    #: op x channel c = x channel x_channels[c], when the site reads x's channels in another order
    #: (DeepSeek-V3's ``rope_interleave``: evens first, then odds); () = x_offset + c.
    x_channels: tuple[int, ...] = ()
    #: site output channel j = op output channel y_channels[j] (one Gather of the op's output); () = j.
    y_channels: tuple[int, ...] = ()
    #: (first x channel, count): x channels the site passes through before / after the op's output
    #: (one Concat; DeepSeek's ``cat(q_pass, q_rot)`` under TorchScript); count 0 = none.
    before: tuple[int, int] = (0, 0)
    after: tuple[int, int] = (0, 0)

    @property
    def width(self) -> int:
        """Channels of the site's output."""
        return self.head_dim + self.before[1] + self.after[1]

    @property
    def moves(self) -> bool:
        """The site's output is the op's moved by a Gather or joined with x channels by a Concat."""
        return bool(self.y_channels or self.before[1] or self.after[1])

    def reads(self) -> tuple[int, ...]:
        """Every x channel the op reads, in the op's order."""
        return self.x_channels or tuple(range(self.x_offset, self.x_offset + self.head_dim))


Term = tuple[int, tuple[int, int], float]  # (x channel, table factor (leaf, channel), coefficient)


def _term(monomial: Monomial, coeff: float, x: int, j: int) -> Term:
    """A term of rotated output channel ``j`` (two factors: every monomial of a rotated channel
    has two), which must be x times one table channel."""
    f, g = monomial
    if f[0] == x:
        if g[0] != x:
            return f[1], g, coeff
    elif g[0] == x:
        return g[1], f, coeff
    raise NotRope(f"channel {j} has a term that is not x times a table")


def _pairs(polys: list[dict], rotated: list[bool], x: int) -> tuple[list[Pair], list[tuple[int, int]]]:
    """Every rotated pair and every passed-through channel (output j, x channel), or NotRope."""
    firsts: dict[int, tuple[Term, Term]] = {}  # filled in increasing j
    seconds: dict[tuple[int, int], int] = {}  # (lower, higher x channel) -> output channel
    second_terms: dict[int, tuple[Term, Term]] = {}
    passed: list[tuple[int, int]] = []
    for j, poly in enumerate(polys):
        if not rotated[j]:
            (monomial, coeff), *rest = poly.items()
            if rest or len(monomial) != 1 or monomial[0][0] != x or coeff != 1.0:
                raise NotRope(f"channel {j} is neither rotated nor an x channel passed through")
            passed.append((j, monomial[0][1]))
            continue
        if len(poly) != 2:
            raise NotRope(f"channel {j} is a sum of {len(poly)} products, RoPE has 2")
        (m1, c1), (m2, c2) = poly.items()
        t1, t2 = _term(m1, c1, x, j), _term(m2, c2, x, j)
        low, high = (t2[2], t1[2]) if t2[2] < t1[2] else (t1[2], t2[2])  # sorted() of two
        if low == -1.0 and high == 1.0:
            firsts[j] = (t1, t2) if t1[2] == 1.0 else (t2, t1)  # (+ term, − term)
        elif low == 1.0 and high == 1.0:
            if t1[0] == t2[0]:
                raise NotRope(f"channel {j} adds two products of the same x channel")
            key = (t1[0], t2[0]) if t1[0] < t2[0] else (t2[0], t1[0])
            if key in seconds:
                raise NotRope(f"channels {seconds[key]} and {j} both add x[{key[0]}] and x[{key[1]}]")
            seconds[key], second_terms[j] = j, (t1, t2)
        else:
            raise NotRope(
                f"channel {j} has signs ({high:+g}, {low:+g}); a rotation needs "
                "(+1, -1) on one channel of each pair and (+1, +1) on the other"
            )
    pairs = []
    for j, ((a, cos1, _), (b, sin1, _)) in firsts.items():
        second = seconds.pop((a, b) if a < b else (b, a), None)
        if second is None:
            raise NotRope(
                f"channel {j} is x[{a}]·cos − x[{b}]·sin and no channel is x[{b}]·cos + x[{a}]·sin "
                "(a sign flipped, or the pair's other half missing)"
            )
        if a > b:
            raise NotRope(
                f"channel {j} turns x[{a}] towards the lower channel x[{b}]: a rotation by −θ "
                "(the halves swapped), not RoPE"
            )
        t1, t2 = second_terms[second]
        direct, cross = (t1, t2) if t1[0] == b else (t2, t1)  # x[b]·cos', x[a]·sin'
        pairs.append(Pair(j, second, a, b, (cos1, direct[1]), (sin1, cross[1])))
    if seconds:
        j = min(seconds.values())
        raise NotRope(f"channel {j} is x·cos + x·sin with no partner channel of opposite sign")
    return pairs, passed


def _check_tables(pairs: list[Pair]) -> tuple[int, int]:
    """The cos and sin leaves every rotated channel reads (one each)."""
    cos_leaf, sin_leaf = pairs[0].cos[0][0], pairs[0].sin[0][0]
    cos_leaves = set(map(itemgetter(0), chain.from_iterable(p.cos for p in pairs)))
    if cos_leaves == {cos_leaf} and set(map(itemgetter(0), chain.from_iterable(p.sin for p in pairs))) == {
        sin_leaf
    }:
        return cos_leaf, sin_leaf  # else find the first channel that differs, for the reason
    for p in pairs:
        (c1, c2), (s1, s2) = p.cos, p.sin
        for c, s, j in ((c1, s1, p.first), (c2, s2, p.second)):
            if c[0] != cos_leaf or s[0] != sin_leaf:
                raise NotRope(f"channel {j} reads other cos/sin tensors than channel {pairs[0].first}")
    return cos_leaf, sin_leaf


def _check_permutation(pairs: list[Pair], passed: list[tuple[int, int]]) -> None:
    """Each x channel feeds one output channel or one pair: the site is a permutation of one op."""
    channels = [p.a for p in pairs] + [p.b for p in pairs] + [s for _, s in passed]
    if len(set(channels)) == len(channels):
        return  # no x channel read twice; else find the first repeat in output order, for the reason
    seen: dict[int, int] = {}
    uses = [(p.a, p.first) for p in pairs] + [(p.b, p.second) for p in pairs] + [(s, j) for j, s in passed]
    for channel, j in sorted(uses, key=lambda u: u[1]):
        if channel in seen:
            raise NotRope(
                f"x channel {channel} is read by output channels {seen[channel]} and {j}: "
                "not a permutation of one rotation"
            )
        seen[channel] = j


def prove(expr: Expr, leaf_names: Sequence[str], rank: Sequence[int] | None = None) -> Proof:
    """Return the :class:`Proof` that ``expr`` (grid of one axis) is RoPE, or raise NotRope(reason).

    ``leaf_names[i]`` is the tensor of leaf id ``i``; ``rank[i]`` (default: ``i``) orders the leaves
    the proof tries as x (see :func:`proof_fields`)."""
    return named(proof_fields(expr, rank), leaf_names)


def named(answer: Answer, leaf_names: Sequence[str]) -> Proof:
    """The :class:`Proof` of :func:`proof_fields`' answer, its leaves (x, cos, sin) named."""
    fields, (x, cos_leaf, sin_leaf) = answer
    return Proof(**{**fields, "x": leaf_names[x], "cos": leaf_names[cos_leaf], "sin": leaf_names[sin_leaf]})


def proof_fields(expr: Expr, rank: Sequence[int] | None = None) -> Answer:
    """The Proof's fields but its tensor names, and the leaf ids of (x, cos, sin); or NotRope(reason).

    A pure function of the polynomials and ``rank``: where several leaves could be x (cos and sin one
    table, say), they are tried in increasing ``rank`` (the order the pass first met them), and the first
    that proves wins, else the first one's reason is given.  Leaf names play no part, so the answer of
    one site holds for every site that computes the same polynomials (:mod:`rope_onnx.fusion.memo`).
    """
    if expr.k != 1:
        raise NotRope("the output is not a tensor of channels")
    polys = expr.grid.tolist()
    is_rotated = []  # every term of a channel is x·table (rotated) or every term is one x channel
    for j, poly in enumerate(polys):
        lengths = set(map(len, poly))
        if lengths != _ONE and lengths != _TWO:
            raise NotRope(f"channel {j} is neither rotated nor passed through")
        is_rotated.append(lengths == _TWO)
    rotated = [j for j, r in enumerate(is_rotated) if r]
    if not rotated:
        raise NotRope("no channel is rotated")
    if len(rotated) % 2:
        raise NotRope(f"{len(rotated)} channels are rotated, an odd number")
    first = polys[rotated[0]]
    if len(first) != 2:
        raise NotRope(f"channel {rotated[0]} is a sum of {len(first)} products, RoPE has 2")
    one, two = (set(f[0] for f in m) for m in first)
    candidates = sorted(one & two, key=None if rank is None else rank.__getitem__)  # x: in both terms
    reasons = []
    for x in candidates:
        try:
            pairs, passed = _pairs(polys, is_rotated, x)
            _check_permutation(pairs, passed)
            cos_leaf, sin_leaf = _check_tables(pairs)
            fields = arrange(polys, x, pairs, passed, (cos_leaf, sin_leaf))
        except NotRope as why:
            reasons.append(str(why))
            continue
        return fields, (x, cos_leaf, sin_leaf)
    raise NotRope(reasons[0] if reasons else "no tensor is rotated with its own channels")
