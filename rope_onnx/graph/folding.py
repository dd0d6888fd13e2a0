"""Static evaluation of the small integer computations exporters emit for shapes and bounds.

``x[..., : x.shape[-1] // 2]`` exports as ``Shape → Gather → Div → Unsqueeze → Slice``; a reshape to
``[*x.shape[:-1], -1, 2]`` as ``Shape → Slice → Concat → Reshape``.  To prove a site we must know
those values.  :func:`int_values` folds them: static dims become ints, dynamic dims stay symbols
(``"param:batch"``, ``"dim:<tensor>:<axis>"``) that compare equal only to the same dim, and
arithmetic on a symbol gives an opaque symbol (so it can never be mistaken for something known).
Every node used is recorded, so the rewrite can delete the bound computations with the site.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
from onnx import NodeProto

from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.index import Dim, GraphIndex


class NotStatic(Exception):
    """The value depends on data, or on an op this evaluator does not fold."""


@dataclass(frozen=True)
class IntValue:
    """A 0-D or 1-D integer tensor whose entries are ints or dim symbols."""

    values: tuple[Dim, ...]
    scalar: bool
    nodes: frozenset[int]

    def ints(self) -> list[int]:
        """All entries as ints; raises NotStatic when any is symbolic."""
        if not all(isinstance(v, int) for v in self.values):
            raise NotStatic(f"value {list(self.values)} has dynamic entries")
        return [int(v) for v in self.values]


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
    _depth: int = 0,
) -> IntValue:
    """Fold tensor ``name`` to an :class:`IntValue`, or raise :class:`NotStatic` saying why.

    ``folders`` says how each op folds (the pass passes the ``fold`` members of its op rules:
    what an op does to integers is written beside what it does to channels).  ``hint`` gives
    shapes the caller has proven (the tracer knows every channel width it computed, also where
    shape inference lost it, e.g. after a Slice with computed bounds or a static If).  Inside a
    :func:`memo` block for ``index`` and ``folders``, results are shared (:class:`FoldMemo`).
    """
    found = _MEMOS.get(id(index))
    if found is not None and found.index is index and found.folders is folders:
        return found.fold(name, hint, _depth, None)
    if _depth > MAX_FOLD_DEPTH:
        raise NotStatic(f"'{name}' is computed by a chain too deep to fold")

    def arg(tensor: str) -> IntValue:
        return int_values(index, tensor, folders, hint, _depth + 1)

    return _evaluate(index, name, folders, partial(_known_dims, index, hint), arg)


#: Longest chain of folded tensors behind one value (deeper chains are refused, not folded).
MAX_FOLD_DEPTH = 64


def _known_dims(index: GraphIndex, hint: DimsHint | None, name: str) -> list[Dim] | None:
    """The dims ``Shape(name)`` reads: the caller's hint, else shape inference's."""
    known = hint(name) if hint is not None else None
    return known if known is not None else index.dims(name)


def _evaluate(
    index: GraphIndex,
    name: str,
    folders: Mapping[str, Folder],
    ask: Callable[[str], list[Dim] | None],
    fold_input: Callable[[str], IntValue],
) -> IntValue:
    """One step of :func:`int_values`: ``ask`` gives the dims a ``Shape`` reads (:func:`_known_dims`),
    ``fold_input`` folds an input."""
    const = index.constant(name)
    if const is not None:
        if const.ndim > 1 or not np.issubdtype(const.dtype, np.integer):
            raise NotStatic(f"constant '{name}' is not a 0-D/1-D integer tensor")
        producer = index.producer.get(name)
        used = frozenset() if producer is None else frozenset({producer})
        return IntValue(tuple(int(v) for v in const.reshape(-1)), const.ndim == 0, used)
    node_id = index.producer.get(name)
    if node_id is None:
        raise NotStatic(f"'{name}' is a graph input, known only at run time")
    node = index.nodes[node_id]
    standard = is_default_domain(node.domain)

    def arg(i: int) -> IntValue:
        return fold_input(node.input[i])

    if standard and node.op_type == "Shape":
        values, scalar, used = _shape(node, ask(node.input[0]))
    elif standard and node.op_type in folders:
        values, scalar, used = folders[node.op_type](index, _only_output(node, name), node_id, arg)
    else:
        raise NotStatic(f"'{name}' is computed by {node.op_type} node '{node.name}', which is not folded")
    # Constant inputs a folder reads without folding (e.g. Unsqueeze axes) belong to it too.
    constants = {p for i in node.input if (p := index.producer.get(i)) is not None}
    used |= {p for p in constants if index.nodes[p].op_type == "Constant"}
    return IntValue(tuple(values), scalar, used | {node_id})


def _only_output(node: NodeProto, name: str) -> NodeProto:
    """``node`` as its folder sees it: with several outputs, only the one folded keeps its name."""
    if len(node.output) == 1:
        return node
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


def _shape(node: NodeProto, dims: list[Dim] | None) -> tuple[list[Dim], bool, frozenset[int]]:
    """``Shape`` is folded here, not by an op rule: it needs the caller's dims hint."""
    if dims is None:
        raise NotStatic(f"rank of '{node.input[0]}' is unknown")
    start, end = attr_int(node, "start", 0), attr_int(node, "end")
    return list(dims[slice(start, end)]), False, frozenset()


# ---------------------------------------------------------------------- sharing results in one pass
#: One folded result: (value or None, the reason it is not static, the dims each ``Shape`` it reads
#: was given, how many tensors deep it went).  Tuples and lists, not objects: a 70B pass keeps ~7k of
#: them, and every object made per fold is one more for the garbage collector to walk.
_Entry = tuple[IntValue | None, str, tuple[tuple[str, tuple[Dim, ...] | None], ...], int]


def _same(answer: list[Dim] | None, kept: tuple[Dim, ...] | None) -> bool:
    """The dims given now are those a kept result read: equal, and of the same types (a NumPy 4
    is not an int 4 to ``IntValue.ints``)."""
    if answer is None or kept is None:
        return answer is kept
    return len(answer) == len(kept) and all(
        a == k and type(a) is type(k) for a, k in zip(answer, kept, strict=True)
    )


class FoldMemo:
    """Every tensor folded in one pass over one graph, folded once: the candidates of a pass fold
    the same shape chains (a layer's q and k, the Reshape and Expand targets their traces share,
    chains below several Concats: 13k folds of 9k tensors on a 70B graph before the memo).

    A fold is a function of the graph and of the dims each ``Shape`` it reads is given (the hint's,
    else inference's), and it is refused where the chain is deeper than :data:`MAX_FOLD_DEPTH` from
    the caller's start.  So a result (a value, or a failure with its reason) is kept with the dims it
    read and its height, and reused only where each of those reads gives the same dims again (taken
    in the order the fold read them, so a fold that would read something else differs at an earlier
    read) and the depth limit cannot be reached: exactly where folding again gives the same result.
    A fold in which the depth limit was hit is not kept, nor is any fold containing it.
    """

    VARIANTS = 8  #: results kept per tensor (hints of different candidates may answer differently)

    def __init__(self, index: GraphIndex, folders: Mapping[str, Folder]) -> None:
        self.index = index
        self.folders = folders
        self._entries: dict[str, list[_Entry]] = {}
        self.evaluated = 0  #: folds computed, not reused (for tests)

    def fold(self, name: str, hint: DimsHint | None, depth: int, parent: list | None) -> IntValue:
        """:func:`int_values` of ``name`` started ``depth`` tensors deep inside the fold ``parent``
        (its frame: the reads so far, its height, whether it is exact)."""
        if depth > MAX_FOLD_DEPTH:
            if parent is not None:
                parent[2] = False
            raise NotStatic(f"'{name}' is computed by a chain too deep to fold")
        try:  # the hint may raise (NotStatic too): a fold around it then depends on more than it read
            entry = self._lookup(name, hint, depth)
        except BaseException:
            if parent is not None:
                parent[2] = False
            raise
        if entry is None:
            entry = self._compute(name, hint, depth, parent)
        if parent is not None:
            if entry[2]:
                parent[0].extend(entry[2])
            if entry[3] >= parent[1]:
                parent[1] = entry[3] + 1
        if entry[0] is None:
            raise NotStatic(entry[1])
        return entry[0]

    def _lookup(self, name: str, hint: DimsHint | None, depth: int) -> _Entry | None:
        for entry in reversed(self._entries.get(name, ())):
            if depth + entry[3] <= MAX_FOLD_DEPTH and all(
                _same(_known_dims(self.index, hint, t), a) for t, a in entry[2]
            ):
                return entry
        return None

    def _read(self, hint: DimsHint | None, frame: list, tensor: str) -> list[Dim] | None:
        try:
            dims = _known_dims(self.index, hint, tensor)
        except BaseException:
            frame[2] = False  # a failure that is the hint's, not the graph's: not kept
            raise
        frame[0].append((tensor, None if dims is None else tuple(dims)))
        return dims

    def _compute(self, name: str, hint: DimsHint | None, depth: int, parent: list | None) -> _Entry:
        frame: list = [[], 0, True]  # reads, height, exact (False: the depth limit was hit inside)
        self.evaluated += 1
        read, child = (
            partial(self._read, hint, frame),
            partial(self.fold, hint=hint, depth=depth + 1, parent=frame),
        )
        try:
            value: IntValue | None = _evaluate(self.index, name, self.folders, read, child)
            reason = ""
        except NotStatic as why:
            if not frame[2]:
                if parent is not None:
                    parent[2] = False
                raise
            value, reason = None, str(why)
        except BaseException:
            if parent is not None:
                parent[2] = False
            raise
        reads = frame[0]
        entry = (value, reason, tuple(dict.fromkeys(reads)) if len(reads) > 1 else tuple(reads), frame[1])
        if frame[2]:
            kept = self._entries.get(name)
            if kept is None:
                self._entries[name] = [entry]
            else:
                kept.append(entry)
                del kept[: -self.VARIANTS]
        elif parent is not None:
            parent[2] = False
        return entry


_MEMOS: dict[int, FoldMemo] = {}  # id(index) -> the memo of the pass folding it (see memo())


@contextmanager
def memo(index: GraphIndex, folders: Mapping[str, Folder]) -> Iterator[FoldMemo]:
    """Share folds of ``index`` with ``folders`` while the block runs (one pass: the graph is not
    edited inside it); a block for the same index inside it shares the outer one's."""
    outer = _MEMOS.get(id(index))
    if outer is not None and outer.index is index and outer.folders is folders:
        yield outer
        return
    made = _MEMOS[id(index)] = FoldMemo(index, folders)
    try:
        yield made
    finally:
        if _MEMOS.get(id(index)) is made:
            del _MEMOS[id(index)]
