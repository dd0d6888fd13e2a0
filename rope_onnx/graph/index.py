"""A read-mostly index over one ONNX graph, built in a single linear pass.

The fusion pass asks four questions many times: who produces a tensor, who consumes it, is it a
(small, inline) constant, and what is its shape and element type.  Answering them from dicts built
once keeps matching linear in the number of nodes, with no per-candidate graph scans.  Nodes are
referred to by their position in ``graph.node`` (stable while the pass runs: edits are applied
once at the end).  Shapes come from one ``onnx.shape_inference`` run over the graph only — the
weights stay on disk — and are used read-only: the output keeps the model's own value_info.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto

from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.inference import flat_facts, graph_bytes, inference_input, inferred_types
from rope_onnx.graph.protos import (
    NodeNames,
    constant_node_value,
    outer_inputs,
    release_freed_heap,
    small_tensor,
    type_info,
)
from rope_onnx.graph.shapes import (
    TypeInfo,
    dim_name,
    mark_generated,
    merge_one,
    split_undeclared,
)

#: A dimension: a static size or a symbolic name (see :func:`rope_onnx.graph.shapes.dim_name`).
Dim = int | str

#: Ops whose output has the one element type of all their inputs (ONNX type constraint T).
SAME_TYPE_ALL = frozenset({"Add", "Sub", "Mul", "Div", "MatMul", "Concat", "Sum", "Max", "Min"})
#: Ops whose (first) output has the element type of their first input (data movement, unary math).
SAME_TYPE_FIRST = frozenset(
    {
        "Neg", "Identity", "Reshape", "Transpose", "Slice", "Split", "Squeeze", "Unsqueeze", "Expand", "Tile",
        "Gather", "GatherND", "Flatten", "Sin", "Cos", "Sqrt", "Reciprocal", "Exp", "Abs", "Relu", "Softmax",
    }
)  # fmt: skip
_UNREAD = np.empty(0)  # constant()'s memo marker: never a value it returns
#: Graphs with this many nodes hand shape inference's freed memory back to the OS: ~4 ms of CPU
#: for the ~25 MB a 70B export's inference frees (18,000 nodes, far from any memory bound); a
#: 200,000-node chain's ~270 MB is what the bound needs returned.
_TRIM_NODES = 50_000


class GraphIndex:
    """Producers, consumers, constants and inferred types of one graph."""

    def __init__(
        self, model: ModelProto, *, infer: bool = True, names: Sequence[NodeNames] | None = None
    ) -> None:
        """``names``: each node's names as :func:`rope_onnx.io.load.load_model` read them
        (``LoadedModel.names``), for a graph unchanged since; read from the nodes when None."""
        graph = model.graph
        self.graph = graph
        #: Each tensor's type once asked for (:meth:`type_of`): declared and inferred types merged.
        self.types: dict[str, TypeInfo] = {}
        self._type_memo: dict[bytes, TypeInfo] = {}  # serialized TypeProto -> its TypeInfo
        self._pending: dict[str, bytes] = {}  # inferred, undeclared, not asked for yet: its TypeProto
        self._marked: dict[bytes, TypeInfo] = {}  # the same for inferred types, their symbols marked
        # declarations not merged yet (shapes.merge_one, on first use); inputs last: theirs is the contract
        self._unmerged = {i.name: i.type for i in (*graph.output, *graph.value_info, *graph.input)}
        #: What inference gave a declared tensor or one it typed twice, in order, not merged yet:
        #: serialized TypeProtos, or the node of a Constant it had as an initializer.
        self._to_merge: dict[str, list[bytes | int]] = {}
        self.claimed: dict[str, frozenset[int]] = {}  # axes only a declaration sizes, of merged tensors
        self._inference_ran = False  # no claims without it: nothing was checked
        self._typed_constants: dict[str, int] = {}  # outputs inference had as initializers: their node
        serialized = graph_bytes(model, names)  # None: each node is read
        #: True where one parse showed that no node holds a subgraph (every read is a direct input).
        self.flat, node_names = flat_facts(serialized, len(graph.node))
        #: Every node's name (``{n.name for n in nodes}``) as built, where one parse told it, else None.
        self.node_names: set[str] | None = node_names
        if infer:  # first: its transient memory (~1.3 KB a node) is returned before the index grows
            self._infer(model, names, serialized)
            if len(graph.node) >= _TRIM_NODES:
                release_freed_heap()
        del serialized
        self.nodes: list[NodeProto] = list(graph.node)
        if names is None:
            names = [  # slices: iterating a repeated field ends in a formatted IndexError
                (n.domain, n.op_type, tuple(n.input[:]), tuple(n.output[:]), bool(n.attribute))
                for n in self.nodes
            ]
        elif len(names) != len(self.nodes):
            raise ValueError(f"names for {len(names)} nodes, the graph has {len(self.nodes)}")
        #: Per node: (domain, op_type, inputs, outputs, has attributes), names as written.
        self.names: Sequence[NodeNames] = names
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        #: Per node: its inputs, plus what its subgraphs (If/Loop bodies) read from this graph.
        self.inputs: list[tuple[str, ...]] = []
        self._link(self.nodes, names)
        self.graph_outputs = {o.name for o in graph.output}
        #: Tensors used by something no rewrite touches: the graph's outputs.
        self.external_uses: set[str] = set(self.graph_outputs)
        self.initializers: dict[str, TensorProto] = {t.name: t for t in graph.initializer}
        self.graph_inputs = {i.name for i in graph.input}
        self._declared = {i.name: self._type_info(i.type) for i in graph.input}
        self._constants: dict[str, np.ndarray | None] = {}
        self._named: dict[str, tuple[Dim, ...] | None] = {}  # dims() of a tensor neither constant nor weight
        self._typing: set[str] = set()

    def _link(self, nodes: list[NodeProto], names: Sequence[NodeNames]) -> None:
        """Producers, consumers and read lists in one pass over the nodes' names."""
        producer, consumers, inputs, flat = self.producer, self.consumers, self.inputs, self.flat
        for i, (_, _, reads, outputs, attributed) in enumerate(names):
            for name in outputs:
                if name:
                    producer[name] = i
            if attributed and not flat:  # only attributes hold subgraphs
                outer = outer_inputs(nodes[i])
                if outer:
                    reads = (*reads, *sorted(outer))
            if "" in reads:
                reads = tuple(n for n in reads if n)
            inputs.append(reads)
            for name in reads:
                if name in consumers:
                    consumers[name].append(i)
                else:
                    consumers[name] = [i]

    def _type_info(self, t: onnx.TypeProto) -> TypeInfo:
        """:func:`~rope_onnx.graph.protos.type_info` once per distinct type (a few thousand at most)."""
        key = t.SerializeToString()
        found = self._type_memo.get(key)
        if found is None:
            found = self._type_memo[key] = type_info(t)
        return found

    def _inferred(self, key: bytes) -> TypeInfo:
        """An inferred type (serialized TypeProto) as plain values, its own symbols marked, once per type."""
        found = self._marked.get(key)
        if found is None:
            typed = type_info(onnx.TypeProto.FromString(key))
            found = self._marked[key] = mark_generated(typed, self._params)
        return found

    def type_of(self, name: str) -> TypeInfo | None:
        """The merged type of ``name``; an inferred type nothing declares is converted on first use."""
        found = self.types.get(name)
        if found is None and name in self._pending:
            found = self.types[name] = self._inferred(self._pending.pop(name))
        elif found is None and name in self._typed_constants:
            found = self.types[name] = self._constant_type(self._typed_constants.pop(name))
        elif found is None and (name in self._unmerged or name in self._to_merge):
            found = self._merge(name)
        return found

    def _merge(self, name: str) -> TypeInfo | None:
        """``name``'s declaration merged with what inference gave it; its claims recorded."""
        proto = self._unmerged.pop(name, None)
        declared = None if proto is None else self._type_info(proto)
        given = [
            self._inferred(s) if isinstance(s, bytes) else self._constant_type(s)
            for s in self._to_merge.pop(name, ())
        ]
        claim = self._inference_ran and name not in self.graph_inputs
        merged, axes = merge_one(declared, given, unchecked_is_claim=claim)
        if axes:
            self.claimed[name] = axes
        if merged is not None:
            self.types[name] = merged
        return merged

    def _constant_type(self, i: int) -> TypeInfo:
        """What inference gives a Constant's output, and an initializer: its tensor's type and dims.
        Read when first asked, from the index's own list: a rewrite may have moved ``graph.node[i]``."""
        tensor = self.nodes[i].attribute[0].t  # one attribute, ``value`` (graph/inference.py)
        return tensor.data_type, tuple(tensor.dims)

    def _infer(self, model: ModelProto, names: Sequence[NodeNames] | None, graph: bytes | None) -> None:
        """Types from shape inference run without the model's own shape annotations (docs/conventions.md).

        Tools rewrite graphs and leave ``value_info`` behind that says less than the graph does
        (onnxsim declares ``unk__19`` where the Reshape target ends in a constant 16) or, stale, says
        something else.  So inference runs on a copy without ``value_info`` and without output
        shapes; a declaration only fills what inference leaves unknown, and a dim where the two
        disagree on a static size is unknown.
        """
        try:  # serialised here: no copy of the graph outlives it (-70 MB at 200k nodes)
            data, constants = inference_input(model, names, graph)  # constants: typed as initializers
            found = inferred_types(data, trim=len(model.graph.node) >= _TRIM_NODES)
            del data
        except Exception:  # shape inference is a help, never a requirement: proofs needing it skip
            found, constants = [], {}
        inputs = model.graph.input  # their symbols are the model's (mark_generated)
        self._params = {d.dim_param for i in inputs for d in i.type.tensor_type.shape.dim if d.dim_param}
        declared = self._unmerged
        now, self._pending = split_undeclared(found, declared)
        to_merge = self._to_merge
        for n, k in now:
            to_merge.setdefault(n, []).append(k)
        for n, i in constants.items():  # a declared constant merges with its declaration, after inference's
            if n in declared:
                to_merge.setdefault(n, []).append(i)
        self._typed_constants = {n: i for n, i in constants.items() if n not in declared}
        self._inference_ran = True

    # ----------------------------------------------------------------- types and shapes
    def elem_type(self, name: str) -> int:
        """Declared or inferred; where inference stopped (an upstream op it cannot type), by the
        standard op's type constraint (its output has the type of its typed data inputs)."""
        if name in self.initializers:
            return self.initializers[name].data_type
        t = self.type_of(name)
        known = t[0] if t is not None else 0
        if known or name in self._typing:
            return known
        self._typing.add(name)  # guards against cycles while the rule recurses
        try:
            return self._elem_type_by_rule(name)
        finally:
            self._typing.discard(name)

    def _elem_type_by_rule(self, name: str) -> int:
        node = self.node_of(name)
        if node is None or node.domain not in ("", "ai.onnx") or list(node.output).index(name) != 0:
            return 0
        if node.op_type in ("Cast", "CastLike"):
            return attr_int(node, "to", 0) if node.op_type == "Cast" else self.elem_type(node.input[1])
        if node.op_type in SAME_TYPE_ALL:
            types = {self.elem_type(i) for i in node.input if i} - {0}
            return types.pop() if len(types) == 1 else 0
        if node.op_type in SAME_TYPE_FIRST and node.input:
            return self.elem_type(node.input[0])
        return 0

    def dims(self, name: str) -> list[Dim] | None:
        """The shape of ``name`` with symbolic dims named, or None when the rank is unknown.

        An initializer that is also a graph input is a default a caller may override: its
        shape is what the input declares (what a caller may feed), not the default's.
        """
        if name in self.initializers and name not in self.graph_inputs:
            return list(self.initializers[name].dims)
        const = self.constant(name)
        if const is not None:
            return list(const.shape)
        if name not in self._named:  # types are fixed once built: each tensor's dims are named once
            # a graph input: declared, never an inferred or default shape
            t = self._declared[name] if name in self.graph_inputs else self.type_of(name)
            shape = None if t is None else t[1]
            named = None if shape is None else tuple(dim_name(d, name, a) for a, d in enumerate(shape))
            self._named[name] = named
        named = self._named[name]
        return None if named is None else list(named)

    def claimed_axes(self, name: str) -> frozenset[int]:
        """Axes of ``name`` only a declaration sizes: a claim, which a proof from the graph overrides."""
        if name in self.graph_inputs or name in self.initializers:
            return frozenset()  # a contract
        self.type_of(name)  # a tensor's claims are recorded when it is merged, on the first question
        return self.claimed.get(name, frozenset())

    def rank(self, name: str) -> int | None:
        dims = self.dims(name)
        return None if dims is None else len(dims)

    # ----------------------------------------------------------------- constants
    def constant(self, name: str) -> np.ndarray | None:
        """The value of a small inline constant (initializer or Constant node), else None.

        External data is never read: a tensor stored outside the model is not "small".
        """
        found = self._constants.get(name, _UNREAD)  # one lookup: asked ~16k times a pass at 70B
        if found is not _UNREAD:
            return found
        value = None
        tensor = self.initializers.get(name)
        if tensor is None and name in self.producer:
            node = self.nodes[self.producer[name]]
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = constant_node_value(node)
        elif tensor is not None and name not in self.graph_inputs:
            value = small_tensor(tensor)
        self._constants[name] = value
        return value

    def node_of(self, name: str) -> NodeProto | None:
        i = self.producer.get(name)
        return None if i is None else self.nodes[i]

    def is_used_outside(self, name: str, inside: set[int]) -> bool:
        """True when ``name`` is a graph output or consumed (also by a subgraph) outside ``inside``."""
        if name in self.external_uses:
            return True
        return any(c not in inside for c in self.consumers.get(name, ()))
