"""Static evaluation of the small integer computations exporters emit for shapes and bounds.

``x[..., : x.shape[-1] // 2]`` exports as ``Shape → Gather → Div → Unsqueeze → Slice``; a reshape to
``[*x.shape[:-1], -1, 2]`` as ``Shape → Slice → Concat → Reshape``.  To prove a site we must know
those values.  :func:`int_values` folds them: static dims become ints, dynamic dims stay symbols
(``"param:batch"``, ``"dim:<tensor>:<axis>"``) that compare equal only to the same dim, and
arithmetic on a symbol gives an opaque symbol (so it can never be mistaken for something known).
Every node used is recorded, so the rewrite can delete the bound computations with the site.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from onnx import NodeProto

from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.index import Dim, GraphIndex


class NotStatic(Exception):
    """The value depends on data, or on an op this evaluator does not fold."""


class IntValue(NamedTuple):
    """A 0-D or 1-D integer tensor whose entries are ints or dim symbols (a NamedTuple: thousands
    are made per pass, at a third of a frozen dataclass's cost)."""

    values: tuple[Dim, ...]
    scalar: bool
    nodes: frozenset[int]

    def ints(self) -> list[int]:
        """All entries as ints; raises NotStatic when any is symbolic."""
        values = self.values
        for v in values:  # a loop, not all(generator): asked for every bound a site reads
            if not isinstance(v, int):
                raise NotStatic(f"value {list(values)} has dynamic entries")
        return [int(v) for v in values]


#: Deepest chain folded (exporters' shape chains are under 10 nodes; this bounds pathological graphs).
MAX_FOLD_DEPTH = 64
_NONE: frozenset[int] = frozenset()


def opaque(node_id: int, k: int) -> str:
    """A symbol for entry k of a node's result that depends on a symbolic dim: equal only to itself."""
    return f"expr:{node_id}:{k}"


#: The shape of a tensor as the caller knows it, better than shape inference (or None).
DimsHint = Callable[[str], "list[Dim] | None"]


def int_values(
    index: GraphIndex,
    name: str,
    folders: Mapping[str, Folder],
    hint: DimsHint | None = None,
    memo: FoldMemo | None = None,
) -> IntValue:
    """Fold tensor ``name`` to an :class:`IntValue`, or raise :class:`NotStatic` saying why.

    ``folders`` says how each op folds (the pass passes the ``fold`` members of its op rules:
    what an op does to integers is written beside what it does to channels).  ``hint`` gives
    shapes the caller has proven (the tracer knows every channel width it computed, also where
    shape inference lost it, e.g. after a Slice with computed bounds or a static If).  ``memo``
    (a dict the caller keeps, empty at first) lets later calls reuse what earlier ones folded:
    the tracer passes one per candidate, whose two rotate_half Slices read one bound chain.
    """
    graph = _GRAPHS.get(index)
    if graph is None:
        graph = _GRAPHS[index] = _Graph()
    return _Fold(index, graph, folders, hint, {} if memo is None else memo).value(name, 0)


#: A tensor folded: (its value, the height of the recursion that made it, the dims each ``Shape``
#: in it read: (tensor, dims)).  See :class:`_Fold`.
FoldMemo = dict[str, tuple["IntValue", int, tuple[tuple[str, "list[Dim] | None"], ...]]]
#: A node as folding reads it: (id, op type or "" outside the standard domain, inputs, whether it
#: has one output, itself and the Constant nodes feeding it, a Shape's (start, end); (0, None) else).
_Node = tuple[int, str, tuple[str, ...], bool, frozenset[int], tuple["int | None", "int | None"]]
_Entry = IntValue | str | _Node  # a constant's value, why a leaf does not fold, or its producer


class _Graph:
    """What folding reads of one index, read once per tensor (each protobuf field read makes new
    Python objects, and a pass folds ~8k tensors at 70B).

    An entry depends only on the index: its constants, producers, node names and Shape attributes,
    none of which change while the index lives (it is read-only; :meth:`GraphIndex.constant`
    memoises on the same ground).  Not on the folders, the hint or the depth: those are applied
    by :class:`_Fold` to each entry as before.  Kept per index in a weak map, so it dies with it
    (it holds no reference to the index: a value naming its key would keep both alive).
    """

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}

    def entry(self, index: GraphIndex, name: str) -> _Entry:
        const = index.constant(name)
        producer = index.producer.get(name)
        found: _Entry
        if const is not None:
            if const.ndim > 1 or const.dtype.kind not in "iu":  # np.issubdtype(..., np.integer), cheaper
                found = f"constant '{name}' is not a 0-D/1-D integer tensor"
            else:
                used = _NONE if producer is None else frozenset({producer})
                found = _new(IntValue, (tuple(const.reshape(-1).tolist()), const.ndim == 0, used))
        elif producer is None:
            found = f"'{name}' is a graph input, known only at run time"
        else:
            domain, op_type, inputs, outputs, attributed = index.names[producer]
            op = op_type if is_default_domain(domain) else ""
            # Constant inputs a folder reads without folding (e.g. Unsqueeze axes) belong to it too.
            names, producers = index.names, index.producer
            mine = {producer}
            for i in inputs:
                p = producers.get(i)
                if p is not None and names[p][1] == "Constant":
                    mine.add(p)
            bounds: tuple[int | None, int | None] = (0, None)
            if op == "Shape" and attributed:
                node = index.nodes[producer]
                bounds = (attr_int(node, "start", 0), attr_int(node, "end"))
            found = (producer, op, inputs, len(outputs) == 1, frozenset(mine), bounds)
        self.entries[name] = found
        return found


_GRAPHS: weakref.WeakKeyDictionary[GraphIndex, _Graph] = weakref.WeakKeyDictionary()
_new = tuple.__new__  # IntValue(...) without the NamedTuple's Python-level __new__


class _Fold:
    """One :func:`int_values` call: the recursion, with each tensor folded remembered in ``memo``.

    Shape computations are DAGs, not trees (a TorchScript ``expand`` target reads one
    ``Reshape(Concat(…))`` through ``Equal`` and ``Where``; both Slices of rotate_half read one
    ``Shape → Gather → Div`` chain), and the caller may ask for several tensors of one DAG.  A
    value depends only on the index, the folders, the dims the hint gave each ``Shape`` in it, and
    the depth limit where that cuts a path (a folder may catch that ``NotStatic`` and answer
    otherwise, as Gather does).  So a value is remembered with the height of its recursion and the
    dims its Shapes read, only when no path in it was cut, and reused only where that height still
    fits under the limit and the hint still gives those dims (the tracer's grows with the candidate):
    then the recursion would run exactly as it did.  Failures are not remembered (their message may
    depend on the path).  Constants are not remembered either: :class:`_Graph` holds their value.
    """

    __slots__ = (
        "cut", "deepest", "depth", "entries", "folders", "graph", "hint", "index", "inputs", "memo",
        "reads",
    )  # fmt: skip

    def __init__(
        self,
        index: GraphIndex,
        graph: _Graph,
        folders: Mapping[str, Folder],
        hint: DimsHint | None,
        memo: FoldMemo,
    ) -> None:
        self.graph, self.entries, self.index = graph, graph.entries, index
        self.folders, self.hint, self.memo = folders, hint, memo
        self.cut = 0  # paths cut by the depth limit so far
        self.deepest = 0  # the deepest recursion level reached so far
        self.reads: list[tuple[str, list[Dim] | None]] = []  # the dims every Shape folded so far read
        # The node being folded: its inputs and depth, which ``_arg`` reads (a bound method handed
        # to every folder, not a closure made per node; bound per call, not kept: that would make
        # each folder a reference cycle, alive until the next collection).
        self.inputs: Sequence[str] = ()
        self.depth = -1

    def value(self, name: str, depth: int) -> IntValue:
        """``name`` folded as if read at ``depth`` (the top-level call: 0)."""
        self.inputs, self.depth = (name,), depth - 1
        return self._arg(0)

    def _arg(self, i: int) -> IntValue:
        """Input ``i`` of the node being folded, folded one level deeper; the node's inputs and depth
        are as they were when it returns or raises (its folder may ask for more inputs, or recover)."""
        inputs, depth = self.inputs, self.depth
        name = inputs[i]
        depth += 1
        if depth > self.deepest:  # also where it fails: a folder catching that answers from here
            self.deepest = depth
        if depth > MAX_FOLD_DEPTH:
            self.cut += 1
            raise NotStatic(f"'{name}' is computed by a chain too deep to fold")
        entry = self.entries.get(name) or self.graph.entry(self.index, name)
        if isinstance(entry, IntValue):
            return entry
        if isinstance(entry, str):
            raise NotStatic(entry)
        found = self.memo.get(name)
        if found is not None:
            value, height, reads = found
            if depth + height <= MAX_FOLD_DEPTH and (not reads or self._still(reads)):
                if depth + height > self.deepest:
                    self.deepest = depth + height
                if reads:
                    self.reads += reads
                return value
        node_id, op, node_inputs, single, mine, bounds = entry
        outer, cut, start = self.deepest, self.cut, len(self.reads)
        self.deepest = depth
        try:
            if op == "Shape":
                source = node_inputs[0]
                dims = _known_dims(self.index, source, self.hint)
                self.reads.append((source, dims))
                if dims is None:
                    raise NotStatic(f"rank of '{source}' is unknown")
                values: Sequence[Dim] = dims[bounds[0] : bounds[1]]
                scalar, used = False, mine
            else:
                folder = self.folders.get(op) if op else None
                node = self.index.nodes[node_id]
                if folder is None:
                    raise NotStatic(
                        f"'{name}' is computed by {node.op_type} node '{node.name}', which is not folded"
                    )
                self.inputs, self.depth = node_inputs, depth
                values, scalar, used = folder(
                    self.index, node if single else _only_output(node, name), node_id, self._arg
                )
                used = used | mine if used else mine
        finally:
            self.inputs, self.depth = inputs, depth - 1
            height = self.deepest - depth
            if outer > self.deepest:
                self.deepest = outer
        value = _new(IntValue, (tuple(values), scalar, used))
        if self.cut == cut:
            self.memo[name] = (value, height, tuple(self.reads[start:]) if len(self.reads) > start else ())
        return value

    def _still(self, reads: tuple[tuple[str, list[Dim] | None], ...]) -> bool:
        """Whether every Shape of a remembered value would read the same dims now."""
        return all(_known_dims(self.index, tensor, self.hint) == dims for tensor, dims in reads)


def _only_output(node: NodeProto, name: str) -> NodeProto:
    """A node of several outputs as its folder sees it: only the one folded keeps its name."""
    view = NodeProto()
    view.CopyFrom(node)
    for k, out in enumerate(node.output):
        view.output[k] = out if out == name else ""
    return view


#: How one op folds: (index, node, node id, fold input i) -> (entries, is 0-D, nodes used).  A node
#: with several outputs (Split) comes with only the output being folded named, the others blank.
Folder = Callable[
    [GraphIndex, NodeProto, int, Callable[[int], IntValue]], tuple[list[Dim], bool, frozenset[int]]
]


def _known_dims(index: GraphIndex, name: str, hint: DimsHint | None) -> list[Dim] | None:
    known = hint(name) if hint is not None else None
    return known if known is not None else index.dims(name)
