"""Splice a rewrite into the graph: fresh names, the nodes it leaves dead, the in-place edit of the lists.

Why in place: clearing ``graph.node`` and extending it again copies every NodeProto back into the
graph (20-45 ms at 18,000 nodes) although a rewrite touches a few hundred positions.  upb deletes and
inserts in a repeated field by moving pointers, so only the touched positions are edited, from the
back so that the positions still to edit keep their meaning.  The result is the same list, in the same
order, as a rebuild; untouched nodes stay the very messages (and Python objects) of the index.

Every question the edit asks ("is this tensor still read?", "is this name taken?", "who writes this
tensor now?") is answered from the :class:`GraphIndex` plus the few nodes the rewrite removes or adds,
not by another scan of the graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from onnx import ModelProto, NodeProto

from rope_onnx.graph.index import GraphIndex, outer_inputs

if TYPE_CHECKING:
    from rope_onnx.fusion.rewrite import ProvenSite


class _Names:
    """Fresh, deterministic tensor and node names that collide with nothing in the graph."""

    def __init__(self, model: ModelProto, index: GraphIndex | None = None) -> None:
        graph = model.graph
        self.used = {t.name for t in graph.initializer}
        self.used |= {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
        self.used |= {sparse.values.name for sparse in graph.sparse_initializer}
        if index is None or len(index.nodes) != len(graph.node):
            self.used |= {n.name for n in graph.node}
            for node in graph.node:
                self.used.update(node.input)
                self.used.update(node.output)
            return
        # the index holds the graph's nodes, every output (producer) and every read (consumers, which
        # also has what subgraphs read: such a name counts only where a node reads it directly)
        self.used.update(
            map(attrgetter("name"), index.nodes) if index.node_names is None else index.node_names
        )
        self.used.update(index.producer)
        nodes, consumers = index.nodes, index.consumers
        if index.flat:  # no subgraph: every name consumers holds is a direct read
            self.used.update(consumers)
            return
        outer = consumers.keys() - self.used
        self.used.update(n for n in outer if any(n in nodes[i].input for i in consumers[n]))

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name


def _added(fused: dict[int, NodeProto], after: dict[int, list[NodeProto]]) -> list[NodeProto]:
    return [*fused.values(), *(n for nodes in after.values() for n in nodes)]


def _dead_nodes(
    index: GraphIndex,
    sites: Sequence[ProvenSite],
    fused: dict[int, NodeProto],
    after: dict[int, list[NodeProto]],
) -> set[int]:
    """Nodes the sites made useless: in some site, and no output read by anything that remains."""
    consumers, inputs, producer, external = index.consumers, index.inputs, index.producer, index.external_uses
    names = index.names  # each node's names as plain tuples: no protobuf read per candidate
    change: dict[str, int] = {}  # readers gained (+) or lost (-) against index.consumers
    for anchor in fused:  # the anchor is replaced: its inputs lose a reader, the fused node's gain one
        for name in inputs[anchor]:
            change[name] = change.get(name, 0) - 1
    for node in _added(fused, after):
        for name in node.input:
            change[name] = change.get(name, 0) + 1
    candidates = set().union(*(s.nodes for s in sites)) - set(fused)
    dead: set[int] = set()
    work = list(candidates)
    while work:
        i = work.pop()
        if i in dead:
            continue
        for o in names[i][3]:  # still read (by a node or as a graph output): kept
            if o and (len(consumers.get(o, ())) + change.get(o, 0) or o in external):
                break
        else:
            dead.add(i)
            for name in inputs[i]:
                left = change[name] = change.get(name, 0) - 1
                p = producer.get(name)
                if p in candidates and not len(consumers[name]) + left:
                    work.append(p)
    return dead


class Producers:
    """The node writing each tensor in the spliced graph (the ``made_by`` of a scan of ``graph.node``),
    told by the index and the nodes the splice added: each tensor has one producer (io.validate)."""

    def __init__(self, index: GraphIndex, gone: set[int], written: dict[str, NodeProto]) -> None:
        self._index, self._gone, self._written = index, gone, written

    def get(self, name: str) -> NodeProto | None:
        node = self._written.get(name)
        if node is not None:
            return node
        i = self._index.producer.get(name)
        return None if i is None or i in self._gone else self._index.nodes[i]

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __getitem__(self, name: str) -> NodeProto:
        node = self.get(name)
        if node is None:
            raise KeyError(name)
        return node


def _unread_initializers(
    index: GraphIndex, fused: dict[int, NodeProto], after: dict[int, list[NodeProto]], dead: set[int]
) -> set[str]:
    """The initializers ``dead`` nodes read that nothing else in the graph reads (nor its outputs)."""
    names = {
        name
        for i in dead
        for name in index.names[i][2]
        if name in index.initializers and name not in index.external_uses and name not in index.graph_inputs
    }
    if not names:
        return names
    if "" in names:  # the index does not list empty reads: scan the spliced list
        spliced = _order(index, fused, after, dead)
        return names - {name for node in spliced for name in (*node.input, *outer_inputs(node))}
    count = len(index.nodes)
    lost = dict.fromkeys(names, 0)  # reads the splice removes: dead nodes and replaced anchors
    for i in dead | {i for i in fused if 0 <= i < count}:
        for name in index.inputs[i]:
            if name in lost:
                lost[name] += 1
    added = [node for i, node in fused.items() if 0 <= i < count and i not in dead]
    added += [n for i, nodes in after.items() if -1 <= i < count for n in nodes]
    unread = {name for name in names if len(index.consumers.get(name, ())) == lost[name]}
    return unread - {name for node in added for name in (*node.input, *outer_inputs(node))}


def _order(
    index: GraphIndex, fused: dict[int, NodeProto], after: dict[int, list[NodeProto]], dead: set[int]
) -> list[NodeProto]:
    """The spliced node list: nodes in order, each anchor replaced, dead ones dropped, additions placed."""
    nodes = list(after.get(-1, []))
    for i, node in enumerate(index.nodes):
        if i not in dead:
            nodes.append(fused.get(i, node))
        nodes.extend(after.get(i, []))
    return nodes


def _splice(
    field: Any, count: int, fused: dict[int, NodeProto], after: dict[int, list[NodeProto]], dead: set[int]
) -> dict[str, NodeProto]:
    """Edit ``field`` (the index's nodes, in order) into :func:`_order`'s list, from the back; returns
    each output of an inserted node -> that node as it now is in the graph."""
    written: dict[str, NodeProto] = {}

    def insert(position: int, node: NodeProto) -> None:
        field.insert(position, node)  # a copy: the graph's own message is field[position]
        placed = field[position]
        written.update(dict.fromkeys(placed.output, placed))

    start = stop = -1  # a run [start, stop) of dead positions not deleted yet
    for i in sorted({i for i in (*after, *fused, *dead) if 0 <= i < count}, reverse=True):
        extra = after.get(i, ())
        if i in dead and not extra and stop != -1 and i + 1 == start:
            start = i
            continue
        if stop != -1:
            del field[start:stop]
            stop = -1
        for k, node in enumerate(extra):
            insert(i + 1 + k, node)
        if i in dead:
            start, stop = i, i + 1
        elif i in fused:
            del field[i]
            insert(i, fused[i])
    if stop != -1:
        del field[start:stop]
    for k, node in enumerate(after.get(-1, ())):
        insert(k, node)
    return written


def _rebuild(
    model: ModelProto,
    index: GraphIndex,
    fused: dict[int, NodeProto],
    after: dict[int, list[NodeProto]],
    dead: set[int],
) -> Producers | None:
    """Write the rewrite into ``model``: nodes, and the value_info and initializers only dead nodes had.

    Returns who writes each tensor now (None where the graph no longer matched the index and was
    rebuilt from it: its nodes are then copies, not the index's)."""
    graph = model.graph
    unused_inits = _unread_initializers(index, fused, after, dead)
    count = len(index.nodes)
    producers = None
    if len(graph.node) == count:
        written = _splice(graph.node, count, fused, after, dead)
        producers = Producers(index, dead | {i for i in fused if 0 <= i < count}, written)
    else:
        new_nodes = _order(index, fused, after, dead)
        del graph.node[:]
        graph.node.extend(new_nodes)
    if graph.value_info:  # the declarations of tensors no node writes any more
        gone = {o for i in dead for o in index.names[i][3]}
        kept = {o for n in fused.values() for o in n.output}
        gone |= {o for i in fused for o in index.names[i][3]} - kept
        _delete(graph.value_info, [k for k, v in enumerate(graph.value_info) if v.name in gone])
    if unused_inits:
        _delete(graph.initializer, [k for k, t in enumerate(graph.initializer) if t.name in unused_inits])
    return producers


def _delete(field: Any, positions: Iterable[int]) -> None:
    """Delete ``positions`` of a repeated field, a run of neighbours at a time, from the back."""
    stop = start = -1
    for i in sorted(positions, reverse=True):
        if i + 1 != start:
            if stop != -1:
                del field[start:stop]
            stop = i + 1
        start = i
    if stop != -1:
        del field[start:stop]
