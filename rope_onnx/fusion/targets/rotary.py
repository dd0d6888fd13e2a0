"""Write proven sites as ONNX Runtime's rotary ops: ``--target onnx`` (ai.onnx RotaryEmbedding, opset 23)
and ``--target ort`` (com.microsoft RotaryEmbedding).

Both ops take HALF-width caches, one value per rotated pair, and compute fp16 in fp32 with one rounding
(pinned by tests/fusion/test_ort_rotary_facts.py).  A site's table is handed over as half of itself only when
:mod:`rope_onnx.fusion.ops.repeats` proves the pairs equal; a half-width table (the seed's, Meta's,
GPT-J's split) needs no proof, only a Gather of the channels the op reads.  The Gather of one table is
shared by every site reading it (all layers): that is the tables' derivation, computed once.

Layout (ORT 1.32): 4-D input is [B, N, S, H]; [B, S, N, H] goes through the 3-D form [B, S, N*H] with
``num_heads`` (which must then be static).  The table must broadcast over the heads (a per-head table is
refused).  Caches: ai.onnx without ``position_ids`` wants exactly [B, S, R/2] (a batch-1 table is
Expanded); com.microsoft requires ``position_ids`` and 2-D caches, so the per-batch table is flattened to
[B*S, R/2] and read at ``position_ids = Range(B*S)`` reshaped to [B, S] — exact for any table.
com.microsoft needs ``num_heads`` whenever ``rotary_embedding_dim`` is set: a partial rotation whose head
count is not static rotates the window x[..., :R] whole and concatenates the pass-through channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, helper, numpy_helper

from rope_onnx.fusion.ops.repeats import RepeatProver
from rope_onnx.fusion.rewrite import ProvenSite
from rope_onnx.fusion.splice import _dead_nodes, _Names, _rebuild
from rope_onnx.graph.index import GraphIndex

MS_DOMAIN = "com.microsoft"
ONNX_OPSET = 23


class Refused(Exception):
    """This site cannot be written for the target; the message is the report's reason."""


def pairs(rotary: int, interleaved: int) -> list[tuple[int, int]]:
    """Op channels rotated together, i.e. reading one cache entry."""
    if interleaved:
        return [(2 * i, 2 * i + 1) for i in range(rotary // 2)]
    return [(i, i + rotary // 2) for i in range(rotary // 2)]


def half_channels(channels: Sequence[int], rotary: int, interleaved: int) -> tuple[int, ...]:
    """The table channel each cache entry i reads: that of the first channel of pair i."""
    return tuple(channels[a] for a, _ in pairs(rotary, interleaved))


class _Writer:
    """Places helper nodes right after the last producer of their inputs (topological by construction)."""

    def __init__(self, model: ModelProto, index: GraphIndex) -> None:
        self.model, self.index = model, index
        self.names = _Names(model, index)
        self.after: dict[int, list[NodeProto]] = {}
        self.slot: dict[str, int] = {}
        self.shared: dict[tuple, str] = {}

    def _slot_of(self, name: str) -> int:
        if name in self.slot:
            return self.slot[name]
        return self.index.producer.get(name, -1)

    def const(self, base: str, values: Sequence[int]) -> str:
        key = ("const", tuple(values))
        if key not in self.shared:
            name = self.names.fresh(f"rope_onnx/{base}")
            self.model.graph.initializer.append(numpy_helper.from_array(np.array(values, np.int64), name))
            self.shared[key] = name
        return self.shared[key]

    def scalar(self, value: int) -> str:
        key = ("scalar", value)
        if key not in self.shared:
            name = self.names.fresh("rope_onnx/scalar")
            self.model.graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
            self.shared[key] = name
        return self.shared[key]

    def node(self, op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = self.names.fresh(f"rope_onnx/{base}")
        domain = str(attrs.pop("domain", ""))
        node = helper.make_node(
            op, inputs, [out], name=self.names.fresh(f"{out}/{op}"), domain=domain, **attrs
        )
        slot = max((self._slot_of(i) for i in inputs if i), default=-1)
        self.after.setdefault(slot, []).append(node)
        self.slot[out] = slot
        return out

    def take(self, name: str, output: str) -> NodeProto:
        """Remove the helper producing ``name`` and return it writing ``output`` (the site's tensor)."""
        nodes = self.after[self.slot[name]]
        node = next(n for n in nodes if n.output[0] == name)
        nodes.remove(node)
        node.output[0] = output
        return node

    def stem(self, name: str) -> str:
        return name.rsplit("/", 1)[-1] or "t"


def _aligned(dims: list, rank: int) -> list:
    return [1] * (rank - len(dims)) + list(dims)


def _layout(index: GraphIndex, site: ProvenSite, x_dims: list) -> tuple[int, int]:
    """(head axis, seq axis) of 4-D x, from the axis the tables broadcast over."""
    p = site.proof
    if len(x_dims) != 4:
        raise Refused(f"x '{p.x}' has rank {len(x_dims)}; the rotary ops take [B, N, S, H] or [B, S, N, H]")
    heads = None
    for table in (p.cos, p.sin):
        dims = index.dims(table)
        if dims is None or len(dims) > 4:
            raise Refused(f"table '{table}' has no known rank <= 4")
        t = _aligned(dims, 4)
        h = 1 if t[1] == 1 else 2 if t[2] == 1 else None
        if h is None:
            raise Refused(
                f"table '{table}' {dims} differs per head; the rotary ops share one table across heads"
            )
        heads = h if heads is None else heads
        if heads != h:
            raise Refused("cos and sin broadcast over different axes")
    assert heads is not None
    return heads, 3 - heads


def plan_site(prover: RepeatProver, site: ProvenSite) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The half-cache channels of cos and sin, or Refused when a table's repeats are not proven."""
    p = site.proof
    out = []
    for table, channels in ((p.cos, p.cos_channels), (p.sin, p.sin_channels)):
        why = prover.repeats(
            table, [(channels[a], channels[b]) for a, b in pairs(p.rotary_dim, p.interleaved)]
        )
        if why:
            raise Refused(why)
        out.append(half_channels(channels, p.rotary_dim, p.interleaved))
    return out[0], out[1]


def check_sites(index: GraphIndex, sites: Sequence[ProvenSite], target: str) -> list[tuple[ProvenSite, str]]:
    """Each site with '' (writable) or the reason the target refuses it."""
    prover = RepeatProver(index)
    out = []
    for site in sites:
        try:
            if site.views:  # fusion.views: the atc writer creates them; these writers read graph tensors
                view = min(site.views)
                source = site.views[view][0]
                raise Refused(f"the site reads '{view}', a view of '{source}' that only --target atc writes")
            plan_site(prover, site)
            x_dims = index.dims(site.proof.x)
            if x_dims is None:
                raise Refused(f"x '{site.proof.x}' has no known rank")
            _layout(index, site, x_dims)
            out.append((site, ""))
        except Refused as why:
            out.append((site, str(why)))
    return out


def apply_rotary(model: ModelProto, index: GraphIndex, sites: Sequence[ProvenSite], target: str) -> list[int]:
    """Rewrite ``model`` in place (every site was accepted by :func:`check_sites`); nodes removed per site."""
    w = _Writer(model, index)
    prover = RepeatProver(index)
    fused: dict[int, NodeProto] = {}
    for number, site in enumerate(sorted(sites, key=lambda s: s.anchor)):
        fused[site.anchor] = _write_site(w, prover, site, target, number)
    dead = _dead_nodes(index, sites, fused, w.after)
    _rebuild(model, index, fused, w.after, dead)
    if target == "ort" and all(o.domain != MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return [len(dead & s.nodes) + 1 for s in sites]


def _write_site(w: _Writer, prover: RepeatProver, site: ProvenSite, target: str, number: int) -> NodeProto:
    p = site.proof
    cos_half, sin_half = plan_site(prover, site)
    x_dims = w.index.dims(p.x) or []
    heads, seq = _layout(w.index, site, x_dims)
    x = p.x
    if p.x_channels:  # the op reads x's channels in another order (DeepSeek's rope_interleave)
        key = ("reorder", p.x, p.x_channels)
        if key not in w.shared:
            order = w.const("channels", list(p.x_channels))
            w.shared[key] = w.node("Gather", [x, order], f"{w.stem(x)}/reordered", axis=-1)
        x = w.shared[key]
    elif p.x_offset or site.widths[p.x] != p.head_dim:  # the site rotates a window of x's channels
        x = _window(w, x, p.x_offset, p.head_dim, site.widths[p.x])
    half = p.rotary_dim // 2
    caches = [
        _cache(w, t, ch, site.widths[t], half, heads) for t, ch in ((p.cos, cos_half), (p.sin, sin_half))
    ]
    shape_x = w.node("Shape", [x], f"{w.stem(x)}/shape")
    batch = w.node("Slice", [shape_x, w.const("b", [0]), w.const("b", [1])], f"{w.stem(x)}/batch")
    length = w.node("Slice", [shape_x, w.const("b", [seq]), w.const("b", [seq + 1])], f"{w.stem(x)}/length")
    target_shape = w.node("Concat", [batch, length, w.const("b", [1])], f"{w.stem(x)}/cache_shape", axis=0)
    caches = [w.node("Expand", [c, target_shape], f"{w.stem(c)}/per_token") for c in caches]
    n_static = x_dims[heads] if isinstance(x_dims[heads], int) else None
    partial = p.rotary_dim < p.head_dim
    src = x
    transposed = heads == 2 and n_static is None  # no num_heads to give: rotate [B, N, S, H] instead
    if transposed:
        src = w.node("Transpose", [src], f"{w.stem(x)}/bnsh", perm=[0, 2, 1, 3])
        heads = 1
    window = partial and target == "ort" and n_static is None  # num_heads unknown: rotate x[..., :R] whole
    attrs: dict[str, Any] = {"interleaved": p.interleaved}
    if partial and not window:
        attrs["rotary_embedding_dim"] = p.rotary_dim
        if target == "ort":
            attrs["num_heads"] = n_static
    rotated = src
    if window:
        bounds = [w.const("b", [0]), w.const("b", [p.rotary_dim]), w.const("b", [-1])]
        rotated = w.node("Slice", [src, *bounds], f"{w.stem(x)}/rotated")
    if heads == 2:  # [B, S, N, H] -> [B, S, N*H]
        attrs["num_heads"] = n_static
        rotated = w.node("Reshape", [rotated, w.const("b", [0, 0, -1])], f"{w.stem(x)}/bsd")
    if target == "onnx":
        inputs = [rotated, *caches]
        domain = ""
    else:
        flat = w.const("b", [-1, half])
        caches = [w.node("Reshape", [c, flat], f"{w.stem(c)}/tokens") for c in caches]
        count = w.node("Mul", [batch, length], "tokens/count")
        count = w.node("Squeeze", [count, w.const("b", [0])], "tokens/count_scalar")
        ids = w.node("Range", [w.scalar(0), count, w.scalar(1)], "tokens/range")
        pos = w.node(
            "Reshape", [ids, w.node("Concat", [batch, length], "tokens/shape", axis=0)], "position_ids"
        )
        inputs = [rotated, pos, *caches]
        domain = MS_DOMAIN
    out = w.node("RotaryEmbedding", inputs, f"RotaryEmbedding_{number}", domain=domain, **attrs)
    if heads == 2:
        out = w.node("Reshape", [out, shape_x], f"{w.stem(x)}/bnsh_back")
    if window:
        bounds = [w.const("b", [p.rotary_dim]), w.const("b", [p.head_dim]), w.const("b", [-1])]
        rest = w.node("Slice", [src, *bounds], f"{w.stem(x)}/pass")
        out = w.node("Concat", [out, rest], f"{w.stem(x)}/joined", axis=-1)
    if transposed:
        out = w.node("Transpose", [out], f"{w.stem(x)}/bsnh", perm=[0, 2, 1, 3])
    if p.y_channels:  # the site's order of the op's output channels
        out = w.node("Gather", [out, w.const("channels", list(p.y_channels))], f"{w.stem(x)}/order", axis=-1)
    elif p.moves:  # the x channels the site passes through, joined around the op's output
        before, after = ([_window(w, t, o, n, site.widths[t])] if n else [] for t, o, n in site.around)
        out = w.node("Concat", [*before, out, *after], f"{w.stem(x)}/joined", axis=-1)
    return w.take(out, site.output)


def _window(w: _Writer, x: str, offset: int, width: int, x_width: int) -> str:
    """x[..., offset:offset + width] (x itself when that is all of it), shared by equal windows."""
    if offset == 0 and x_width == width:
        return x
    key = ("window", x, offset, width)
    if key not in w.shared:
        bounds = [w.const("b", [v]) for v in (offset, offset + width, -1)]
        w.shared[key] = w.node("Slice", [x, *bounds], f"{w.stem(x)}/window")
    return w.shared[key]


def _cache(w: _Writer, table: str, channels: tuple[int, ...], width: int, half: int, heads: int) -> str:
    """The half cache [tB, tS, R/2] of ``table`` (shared by every site reading the same table)."""
    key = ("cache", table, channels, heads)
    if key in w.shared:
        return w.shared[key]
    t = table
    if channels != tuple(range(width)):
        t = w.node("Gather", [t, w.const("channels", list(channels))], f"{w.stem(table)}/half", axis=-1)
    rank = len(w.index.dims(table) or [])
    if rank < 4:
        t = w.node("Unsqueeze", [t, w.const("b", list(range(4 - rank)))], f"{w.stem(table)}/rank4")
    t = w.node("Squeeze", [t, w.const("b", [heads])], f"{w.stem(table)}/cache")
    w.shared[key] = t
    return t
