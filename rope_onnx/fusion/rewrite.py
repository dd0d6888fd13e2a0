"""Apply proven sites to the ModelProto: one RoPECustomer per site, shared table widening, DCE.

The graph is edited directly (not through onnx-graphsurgeon, whose export drops or rewrites
value_info, doc strings and metadata): every untouched node, tensor name, value_info entry,
initializer and external-data reference stays exactly as it was.  Work is linear in the number of
nodes: one consumer count, one worklist of candidate-dead nodes, one in-place splice of the node list
(:mod:`rope_onnx.fusion.splice`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from onnx import ModelProto, NodeProto, helper, numpy_helper

from rope_onnx.fusion.prove import Proof
from rope_onnx.fusion.splice import Producers, _dead_nodes, _Names, _rebuild
from rope_onnx.graph.index import GraphIndex
from rope_onnx.op.contract import ATTR_INTERLEAVED, ATTR_ROTARY_DIM, OP_TYPE


@dataclass(frozen=True)
class ProvenSite:
    anchor: int  # index of the node whose output is the site's output
    output: str
    proof: Proof
    nodes: frozenset[int]  # every node the proof followed (candidates for removal)
    assumes: tuple[str, ...] = ()  # run-time shape facts the graph cannot show (see fuse.check_site)
    widths: dict[str, int] = field(default_factory=dict)  # static last dim of x, cos and sin
    #: (tensor, offset, count) of the x channels passed through before / after the op (Proof.before/after):
    #: an existing tensor holding exactly them (offset 0), or x itself
    around: tuple[tuple[str, int, int], ...] = ()
    #: inputs the rewrite creates (fusion.views): name -> (source, constant Reshape target)
    views: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)

    def original(self, name: str) -> str:
        """The graph tensor an input of the proof is (a view: the tensor it regroups)."""
        return self.views[name][0] if name in self.views else name


@dataclass(frozen=True)
class Applied:
    """What :func:`apply_sites` did: per site, the original nodes it removed; who writes each tensor now."""

    removed: list[int]
    producers: Producers | None  # None: the graph did not match the index and was rebuilt (see _rebuild)


def apply_sites(model: ModelProto, index: GraphIndex, sites: Sequence[ProvenSite], domain: str) -> Applied:
    """Rewrite ``model`` in place; returns the number of original nodes each site removed."""
    names = _Names(model, index)
    fused: dict[int, NodeProto] = {}
    after: dict[int, list[NodeProto]] = {}  # producer index (-1: graph start) -> widening nodes
    widened: dict[tuple[str, tuple[int, ...]], str] = {}
    slot: dict[str, int] = {}  # tensor the rewrite created -> the node it is written after
    made: dict[tuple[str, tuple[int, ...]], str] = {}  # view (source, shape) -> the tensor created for it

    def place(name: str) -> int:
        return slot[name] if name in slot else index.producer.get(name, -1)

    def view_input(site: ProvenSite, name: str) -> str:
        """``name`` itself, or the tensor created for a view: its source reshaped to a constant shape
        (only the trailing axis regrouped, proven by fusion.ops.reshape; shared by equal views)."""
        if name not in site.views:
            return name
        key = site.views[name]
        if key not in made:
            source, shape = key
            stem = source.rsplit("/", 1)[-1] or "x"
            target = names.fresh(f"rope_onnx/{stem}/view_shape")
            model.graph.initializer.append(numpy_helper.from_array(np.array(shape, dtype=np.int64), target))
            out = names.fresh(f"rope_onnx/{stem}/view")
            node = helper.make_node("Reshape", [source, target], [out], name=names.fresh(f"{out}/Reshape"))
            after.setdefault(place(source), []).append(node)
            slot[out] = place(source)
            made[key] = out
        return made[key]

    def table_input(table: str, channels: tuple[int, ...], width: int) -> str:
        if channels == tuple(range(width)):
            return table
        key = (table, channels)
        if key not in widened:
            stem = table.rsplit("/", 1)[-1] or "table"
            idx = names.fresh(f"rope_onnx/{stem}/channels")
            model.graph.initializer.append(numpy_helper.from_array(np.array(channels, dtype=np.int64), idx))
            out = names.fresh(f"rope_onnx/{stem}/full_width")
            node = helper.make_node("Gather", [table, idx], [out], name=names.fresh(f"{out}/Gather"), axis=-1)
            after.setdefault(place(table), []).append(node)
            widened[key] = out
        return widened[key]

    windows: dict[tuple[str, int, int], str] = {}

    def x_input(x: str, offset: int, width: int, x_width: int) -> str:
        """x itself, or x[..., offset:offset + width] when the site rotates a window of it."""
        if offset == 0 and x_width == width:
            return x
        key = (x, offset, width)
        if key not in windows:
            stem = x.rsplit("/", 1)[-1] or "x"
            bounds = [names.fresh(f"rope_onnx/{stem}/{n}") for n in ("start", "end", "axis")]
            for name, value in zip(bounds, (offset, offset + width, -1), strict=True):
                model.graph.initializer.append(numpy_helper.from_array(np.array([value], np.int64), name))
            out = names.fresh(f"rope_onnx/{stem}/window")
            node = helper.make_node("Slice", [x, *bounds], [out], name=names.fresh(f"{out}/Slice"))
            after.setdefault(place(x), []).append(node)
            windows[key] = out
        return windows[key]

    def x_permuted(x: str, channels: tuple[int, ...]) -> str:
        """x's channels in the order the site reads them (one Gather, shared by equal orders)."""
        return table_input(x, channels, -1)

    for number, site in enumerate(sorted(sites, key=lambda s: s.anchor)):
        p = site.proof
        x = view_input(site, p.x)
        inputs = [
            x_permuted(x, p.x_channels)
            if p.x_channels
            else x_input(x, p.x_offset, p.head_dim, site.widths[p.x]),
            table_input(view_input(site, p.cos), p.cos_channels, site.widths[p.cos]),
            table_input(view_input(site, p.sin), p.sin_channels, site.widths[p.sin]),
        ]
        out = names.fresh(f"rope_onnx/{OP_TYPE}_{number}/output") if p.moves else site.output
        node = helper.make_node(
            OP_TYPE, inputs, [out], name=names.fresh(f"rope_onnx/{OP_TYPE}_{number}"), domain=domain
        )
        attributes = {ATTR_INTERLEAVED: p.interleaved, ATTR_ROTARY_DIM: p.rotary_dim}
        node.attribute.extend(helper.make_attribute(key, value) for key, value in sorted(attributes.items()))
        if not p.moves:
            fused[site.anchor] = node
            continue
        # after the last producer of its inputs (their widening nodes were placed there first)
        after.setdefault(max(place(site.original(n)) for n in (p.x, p.cos, p.sin)), []).append(node)
        if p.y_channels:  # the site's order of the op's output channels: one Gather
            order = names.fresh(f"rope_onnx/{OP_TYPE}_{number}/order")
            model.graph.initializer.append(numpy_helper.from_array(np.array(p.y_channels, np.int64), order))
            last = helper.make_node(
                "Gather", [out, order], [site.output], name=names.fresh(f"{out}/Gather"), axis=-1
            )
        else:  # the channels the site passes through, joined around the op's output: one Concat
            runs = [(x_input(view_input(site, t), o, n, site.widths[t]), n) for t, o, n in site.around]
            parts = [name for name, n in runs[:1] if n] + [out] + [name for name, n in runs[1:] if n]
            last = helper.make_node(
                "Concat", parts, [site.output], name=names.fresh(f"{out}/Concat"), axis=-1
            )
        fused[site.anchor] = last
    dead = _dead_nodes(index, sites, fused, after)
    producers = _rebuild(model, index, fused, after, dead)
    return Applied([len(dead & s.nodes) + 1 for s in sites], producers)


def rope_nodes(
    model: ModelProto,
    outputs: set[str],
    op_types: tuple[str, ...] = (OP_TYPE,),
    made_by: Mapping[str, NodeProto] | Producers | None = None,
) -> dict[str, NodeProto]:
    """The fused op computing each site ``output``: its producer, or the op behind the one Gather/Concat
    that moves the op's channels into the site's order (Proof.y_channels, before/after).
    ``made_by``: the graph's producers where the caller has them (:attr:`Applied.producers`)."""
    if not outputs:
        return {}
    if made_by is None:
        made_by = {o: n for n in model.graph.node for o in n.output}
    found = {}
    for output in outputs:
        node = made_by.get(output)
        if node is not None and node.op_type not in op_types:
            behind = [made_by[i] for i in node.input if i in made_by and made_by[i].op_type in op_types]
            node = behind[0] if len(behind) == 1 else None
        if node is not None:
            found[output] = node
    return found
