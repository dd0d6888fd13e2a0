"""The op's channel order for a proven set of pairs, the data movement it needs, and the check.

:mod:`rope_onnx.fusion.prove` finds what each output channel computes (pairs of x channels rotated
together, channels passed through); this module places them on RoPECustomer's channels and picks the
least data movement that makes the op's output the site's, in this order of preference:

1. none: the output is the op's own order (x read as it is, as a window, or through one Gather that
   reorders x's channels: DeepSeek-V3's de-interleaved ``rope_interleave`` under dynamo);
2. a Concat: x channels passed through before (and/or after) the op's rotated output, each a
   contiguous run of x (DeepSeek's ``cat(q_pass, q_rot)`` merged into one Concat by TorchScript);
3. a Gather of the op's output: any other order (pass-through channels between rotated ones, pairs
   whose halves sit in neither layout).

Whatever was chosen, the op's definition (:func:`rope_onnx.fusion.prove.partner`) is evaluated
symbolically in that order and compared with every traced channel polynomial: the arrangement is
proven, not assumed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rope_onnx.fusion.channels import Monomial, NotRope

__all__ = ["Pair", "arrange", "partner"]


def partner(c: int, rotary: int, interleaved: int) -> tuple[int, float]:
    """The channel paired with ``c`` and the sign it enters rot(x) with."""
    if interleaved:
        return (c + 1, -1.0) if c % 2 == 0 else (c - 1, 1.0)
    half = rotary // 2
    return (c + half, -1.0) if c < half else (c - half, 1.0)


class Pair(NamedTuple):
    """One rotated pair as the site computes it: output channels (first, second) rotate x[a], x[b].

    A NamedTuple, not a frozen dataclass: a proof builds one per pair (64 per head of 128 channels)
    and a tuple is built several times faster."""

    first: int  # output channel x[a]·cos − x[b]·sin
    second: int  # output channel x[b]·cos + x[a]·sin
    a: int
    b: int
    cos: tuple[tuple[int, int], tuple[int, int]]  # table factors of (first, second)
    sin: tuple[tuple[int, int], tuple[int, int]]


def _layout(pairs: list[Pair], rank: dict[int, int], rotary: int) -> int | None:
    """0 (halves) or 1 (pairs) when the output's rotated channels, in order, are the op's; else None."""
    half = rotary // 2
    if all(rank[p.first] < half and rank[p.second] == rank[p.first] + half for p in pairs):
        return 0
    if all(rank[p.first] % 2 == 0 and rank[p.second] == rank[p.first] + 1 for p in pairs):
        return 1
    return None


def _reads(channels: list[int]) -> dict[str, Any]:
    """x_offset/x_channels for the op reading x's ``channels`` in this order (a window when contiguous)."""
    start = channels[0]
    if channels == list(range(start, start + len(channels))):
        return {"x_offset": start, "x_channels": ()}
    return {"x_offset": min(channels), "x_channels": tuple(channels)}


def _run(passed: list[tuple[int, int]]) -> tuple[int, int] | None:
    """(first x channel, count) when these passed-through channels are one contiguous run of x."""
    if not passed:
        return (0, 0)
    start = passed[0][1]
    return (start, len(passed)) if [s for _, s in passed] == list(range(start, start + len(passed))) else None


def arrange(
    polys: list[dict[Monomial, float]],
    x: int,
    pairs: list[Pair],
    passed: list[tuple[int, int]],
    tables: tuple[int, int],
) -> dict[str, Any]:
    """The Proof fields (all but tensor names) of one RoPECustomer plus data movement equal to ``polys``."""
    rotary, width = 2 * len(pairs), len(polys)
    rotated = sorted(j for p in pairs for j in (p.first, p.second))
    rank = {j: k for k, j in enumerate(rotated)}
    layout = _layout(pairs, rank, rotary)
    op_of: dict[int, int] = {}
    xs, cos, sin = [0] * rotary, [0] * rotary, [0] * rotary
    for i, p in enumerate(sorted(pairs, key=lambda p: p.first)):
        k1, k2 = (i, i + rotary // 2) if layout is None else (rank[p.first], rank[p.second])
        op_of[p.first], op_of[p.second] = k1, k2
        xs[k1], xs[k2] = p.a, p.b
        cos[k1], cos[k2] = p.cos[0][1], p.cos[1][1]
        sin[k1], sin[k2] = p.sin[0][1], p.sin[1][1]
    for m, (j, channel) in enumerate(passed):
        op_of[j] = rotary + m
        xs.append(channel)
    order = [op_of[j] for j in range(width)]
    fields: dict[str, Any] = {
        "cos_channels": tuple(cos),
        "sin_channels": tuple(sin),
        "interleaved": layout or 0,
        "rotary_dim": rotary,
    }
    start = rotated[0]
    before, after = _run(passed[:start]), _run(passed[start:])
    if order == list(range(width)):
        fields.update(_reads(xs), head_dim=width)
    elif (
        layout is not None
        and rotated == list(range(start, start + rotary))
        and before is not None
        and after is not None
    ):
        fields.update(_reads(xs[:rotary]), head_dim=rotary, before=before, after=after)
    else:
        fields.update(_reads(xs), head_dim=width, y_channels=tuple(order))
    _check(polys, x, tables, fields)
    return fields


def _check(polys: list[dict], x: int, tables: tuple[int, int], f: dict[str, Any]) -> None:
    """Every output channel equals the op's definition read through the chosen data movement."""
    head, rotary, interleaved = f["head_dim"], f["rotary_dim"], f["interleaved"]
    xs = f["x_channels"] or tuple(range(f["x_offset"], f["x_offset"] + head))
    cos_leaf, sin_leaf = tables
    cos_channels, sin_channels = f["cos_channels"], f["sin_channels"]

    def op_channel(c: int) -> dict[Monomial, float]:
        if c >= rotary:
            return {((x, xs[c]),): 1.0}
        p, sign = partner(c, rotary, interleaved)
        xc, tc = (x, xs[c]), (cos_leaf, cos_channels[c])
        xp, ts = (x, xs[p]), (sin_leaf, sin_channels[c])
        # each monomial sorted, as channels.mul builds it (sorted() of two, spelled out)
        return {(tc, xc) if tc < xc else (xc, tc): 1.0, (ts, xp) if ts < xp else (xp, ts): sign}

    (b0, nb), (a0, na) = f.get("before", (0, 0)), f.get("after", (0, 0))
    order = f.get("y_channels", ())
    for j, poly in enumerate(polys):
        if order:
            want = op_channel(order[j])
        elif j < nb:
            want = {((x, b0 + j),): 1.0}
        elif j < nb + head:
            want = op_channel(j - nb)
        else:
            want = {((x, a0 + j - nb - head),): 1.0}
        if want != poly:
            raise NotRope(f"channel {j} is not the op's channel in the order chosen for it")
    if nb + head + na != len(polys):
        raise NotRope("the op and the channels around it do not cover the output")
