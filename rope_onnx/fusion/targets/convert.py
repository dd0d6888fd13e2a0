"""``--target atc``: existing ai.onnx / com.microsoft ``RotaryEmbedding`` nodes become RoPECustomer.

ATC serves neither rotary op; RoPECustomer reads full-width tables that broadcast into x.  A rotary op's
half caches are turned into such tables once per (cache, position_ids) pair, shared by every layer:
gathered at ``position_ids`` when the op has them (caches ``[max_position, R/2]``), widened to R
channels by one Gather (rotate_half: c and c + R/2 read entry c mod R/2; interleaved: 2i and 2i + 1
read entry i) and given a heads axis.  4-D x is [B, N, S, H] (tables [B, 1, S, R]); 3-D x [B, S, N*H]
is viewed as [B, S, N, H] with the op's ``num_heads`` and reshaped back.  ``rotary_embedding_dim``
becomes ``rotary_dim``; ``interleaved`` is kept.  A node with a ``scale`` other than 1, packed batching,
an unknown rank or 3-D input without ``num_heads`` is left as it is and reported as skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from onnx import ModelProto, NodeProto, helper

from rope_onnx.fusion.targets.rotary import MS_DOMAIN, _Writer
from rope_onnx.graph.attributes import attr_float, attr_int
from rope_onnx.graph.index import GraphIndex
from rope_onnx.op.contract import ATTR_INTERLEAVED, ATTR_ROTARY_DIM, CONVERTED_PREFIX, OP_TYPE

ROTARY = "RotaryEmbedding"


@dataclass(frozen=True)
class RotaryNode:
    """One existing rotary op, read the same way whatever its domain."""

    index: int
    node: NodeProto
    domain: str  # "ai.onnx" or "com.microsoft"
    x: str
    cos: str
    sin: str
    position_ids: str  # "" when absent
    interleaved: int
    rotary_dim: int  # 0: the whole head
    num_heads: int


def rotary_nodes(index: GraphIndex, positions: Iterable[int] | None = None) -> list[RotaryNode]:
    """The rotary ops among the index's nodes (or its nodes at ``positions``, in order: a caller that
    scanned the op types already passes what it found)."""
    out = []
    nodes = index.nodes
    for i in range(len(nodes)) if positions is None else positions:
        node = nodes[i]
        if node.op_type != ROTARY or node.domain not in ("", "ai.onnx", MS_DOMAIN):
            continue
        ins = list(node.input) + [""] * 4
        if node.domain == MS_DOMAIN:
            x, pos, cos, sin = ins[:4]
        else:
            x, cos, sin, pos = ins[:4]
        out.append(
            RotaryNode(
                i,
                node,
                "com.microsoft" if node.domain == MS_DOMAIN else "ai.onnx",
                x,
                cos,
                sin,
                pos,
                attr_int(node, "interleaved", 0),
                attr_int(node, "rotary_embedding_dim", 0),
                attr_int(node, "num_heads", 0),
            )
        )
    return out


def refusal(index: GraphIndex, r: RotaryNode) -> str:
    """'' when ``r`` converts exactly, else why it is left as it is."""
    if attr_float(r.node, "scale", 1.0) != 1.0:
        return f"{r.domain}::RotaryEmbedding '{r.node.name}' has scale != 1 (RoPECustomer has no scale)"
    if attr_int(r.node, "is_packed_batching", 0):
        return f"{r.domain}::RotaryEmbedding '{r.node.name}' uses packed batching"
    rank = index.rank(r.x)
    if rank not in (3, 4):
        return (
            f"{r.domain}::RotaryEmbedding '{r.node.name}': x has {'unknown' if rank is None else rank} rank"
        )
    if rank == 3 and r.num_heads <= 0:
        return f"{r.domain}::RotaryEmbedding '{r.node.name}': 3-D x without num_heads"
    if r.position_ids:
        pos_rank = index.rank(r.position_ids)
        if pos_rank != 2:
            return (
                f"{r.domain}::RotaryEmbedding '{r.node.name}': position_ids of rank {pos_rank} (need [B, S])"
            )
    if not r.cos or not r.sin:
        return f"{r.domain}::RotaryEmbedding '{r.node.name}': no cos/sin cache"
    for cache in (r.cos, r.sin):
        dims = index.dims(cache)
        if not dims or not isinstance(dims[-1], int):
            return f"{r.domain}::RotaryEmbedding '{r.node.name}': cache '{cache}' has no static width"
        if len(dims) != (2 if r.position_ids else 3):
            want = "2-D with position_ids" if r.position_ids else "3-D without position_ids"
            return f"{r.domain}::RotaryEmbedding '{r.node.name}': cache '{cache}' {dims} is not {want}"
    return ""


def convert_rotary(model: ModelProto, index: GraphIndex, nodes: list[RotaryNode], domain: str) -> None:
    """Replace each of ``nodes`` (all accepted by :func:`refusal`) by RoPECustomer in ``domain``, in place."""
    from rope_onnx.fusion.splice import _rebuild

    w = _Writer(model, index)
    fused: dict[int, NodeProto] = {}
    for number, r in enumerate(nodes):
        fused[r.index] = _convert(w, r, domain, number)
    _rebuild(model, index, fused, w.after, set())


def _table(w: _Writer, r: RotaryNode, cache: str, heads_axis: int) -> str:
    """The full-width table of ``cache`` for this op: [B|1, 1, S, R] (4-D x) or [B|1, S, 1, R] (3-D x)."""
    key = ("table", cache, r.position_ids, r.interleaved, heads_axis)
    if key in w.shared:
        return w.shared[key]
    t = cache
    if r.position_ids:  # [max_position, R/2] read at [B, S]
        t = w.node("Gather", [t, r.position_ids], f"{w.stem(cache)}/at_positions", axis=0)
    half = (w.index.dims(cache) or ["?"])[-1]
    assert isinstance(half, int)  # refusal() checked it
    channels = [i // 2 for i in range(2 * half)] if r.interleaved else [*range(half), *range(half)]
    t = w.node("Gather", [t, w.const("channels", channels)], f"{w.stem(cache)}/full_width", axis=-1)
    t = w.node("Unsqueeze", [t, w.const("b", [heads_axis])], f"{w.stem(cache)}/table")
    w.shared[key] = t
    return t


def _convert(w: _Writer, r: RotaryNode, domain: str, number: int) -> NodeProto:
    rank = w.index.rank(r.x)
    heads_axis = 1 if rank == 4 else 2
    cos, sin = (_table(w, r, c, heads_axis) for c in (r.cos, r.sin))
    attrs: dict[str, Any] = {ATTR_INTERLEAVED: r.interleaved, ATTR_ROTARY_DIM: r.rotary_dim}
    name = w.names.fresh(f"{CONVERTED_PREFIX}{r.domain.replace('.', '_')}_{number}")
    out = r.node.output[0]
    if rank == 4:
        return helper.make_node(OP_TYPE, [r.x, cos, sin], [out], name=name, domain=domain, **attrs)
    x4 = w.node("Reshape", [r.x, w.const("b", [0, 0, r.num_heads, -1])], f"{w.stem(r.x)}/bsnh")
    y4 = w.node(OP_TYPE, [x4, cos, sin], f"{OP_TYPE}_from_{number}", domain=domain, **attrs)
    w.after[w.slot[y4]][-1].name = w.names.fresh(f"{name}/{OP_TYPE}")
    shape = w.node("Shape", [r.x], f"{w.stem(r.x)}/shape")
    return helper.make_node("Reshape", [y4, shape], [out], name=name + "/Reshape")
