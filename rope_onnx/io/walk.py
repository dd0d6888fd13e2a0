"""One walk over the main graph for the load checks: names, tensors, order and schema (issue 17).

Loading used to walk the nodes twice (once for the tensors that may carry external data, once
for order and schema) and to hand every node with attributes to ``onnx``'s ``check_node``.  A
70B export has 18,000 nodes, 10,000 of them with attributes (6,000 Constants), yet only ~40
distinct attribute lists: this walk reads each node once and decides each distinct attribute
list once, keyed by its bytes (:func:`walk_graph`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import onnx
from onnx import ModelProto, NodeProto, TensorProto, checker

from rope_onnx.graph.conventions import default_opset, is_default_domain
from rope_onnx.graph.protos import NodeNames
from rope_onnx.io.tensors import node_tensors

_GRAPH_TYPES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
_EXTERNAL = TensorProto.EXTERNAL
#: Nodes read per slice (:func:`_in_slices`).
_SLICE = 4096
#: ``onnx.checker.check_node`` without its isinstance check (every node here is a NodeProto).
_check_node = checker.C.check_node
_UNSEEN = frozenset({"(an op type not met yet)"})
#: A node's attributes as bytes: one attribute's serialisation, or a tuple of several.
_Held = bytes | tuple[bytes, ...]


class Walked(NamedTuple):
    """What one walk found; errors are kept, not raised, so the caller ranks them."""

    #: Each node's names as read here (:data:`~rope_onnx.graph.protos.NodeNames`).
    names: list[NodeNames]
    #: The tensors to check and to search for external data, in :func:`~rope_onnx.io.tensors.every_tensor`
    #: order; a node whose attribute bytes repeat an earlier node's, none of them external, adds none.
    tensors: list[TensorProto]
    #: The first order error (a read before definition, a tensor defined twice), as its message.
    order: str | None
    #: The first node ``check_node`` rejected, with what it raised (ranked after ``order``).
    failure: tuple[NodeProto, Exception] | None


def checker_context(model: ModelProto) -> checker.C.CheckerContext:
    """The context ``check_node`` sees: the model's IR version and opset imports."""
    ctx = checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = {o.domain: o.version for o in model.opset_import}
    return ctx


def graph_attributes(op_type: str, opset: int) -> frozenset[str]:
    """The graph-typed attributes (If, Loop, Scan bodies) the default-domain schema of ``op_type``
    declares at ``opset``; none when there is no schema (check_node reports the missing op)."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except onnx.defs.SchemaError:
        return frozenset()
    return frozenset(name for name, a in schema.attributes.items() if a.type in _GRAPH_TYPES)


def _holds_graph(attributes: list[onnx.AttributeProto], declared: frozenset[str]) -> bool:
    """A graph-typed attribute that the op's schema declares as one."""
    return any(a.type in _GRAPH_TYPES and a.name in declared for a in attributes)


def walk_graph(model: ModelProto) -> Walked:
    """Each tensor has one producer, every node reads only tensors defined before it, and every
    default-domain node that ONNX defines, without a subgraph, satisfies its schema; and the
    tensors of the model (initializers, node attributes, subgraphs, model-local functions).

    Keyed by bytes, per node: its attributes, serialised (``held``: one attribute's bytes, a tuple of
    several, None for none; the three never compare equal).  Equal bytes parse to equal
    attributes, so (1) the tensors they hold are equal, and a tensor's checks read only the
    tensor: an earlier copy already decides them (and, failing, is reported first); only when
    none of them is external (their references must all be listed) is a repeat left out of
    ``tensors``.  (2) ``check_node``'s verdict reads, of a node, its op type and domain, its input
    and output counts, which names are empty, and its attributes (checker.cc ``check_node``,
    ``check_attribute``, ``check_tensor``; schema.cc ``OpSchema::Verify``); names themselves reach
    only the message, the context is this model's throughout.  So a node without empty names
    whose (domain, op_type, input count, output count, ``held``) once passed, or was found not to
    apply (no ONNX op, or a declared subgraph holder), passes again.  A node with an empty name,
    or with an external tensor (whose location check_node resolves on disk), is always checked.

    An order error outranks any schema error, as if the order were checked first; once one is
    met the walk only gathers the remaining tensors.
    """
    graph = model.graph
    tensors: list[TensorProto] = graph.initializer[:]
    for sparse in graph.sparse_initializer:
        tensors += (sparse.values, sparse.indices)
    # every name defined so far, mapped to itself: a node's reads are looked up here, so each tensor's
    # name is one str object wherever it is read (protobuf makes a new str per read: two names a node,
    # 13 MiB of the peak at 200,000 nodes: the names are held while inference runs)
    defined = {i.name: i.name for i in graph.input} | {t.name: t.name for t in graph.initializer}
    defined |= {sparse.values.name: sparse.values.name for sparse in graph.sparse_initializer}
    defined[""] = ""  # an omitted optional input
    read = defined.__getitem__
    ctx, opset = checker_context(model), default_opset(model) or 0
    rules: dict[tuple[str, str], frozenset[str] | None] = {}  # None: check_node does not apply
    listed: dict[_Held, bool] = {}  # attribute bytes -> whether they hold an external tensor
    cleared: set[tuple[str, str, int, int, _Held | None]] = set()  # keys that need no check_node
    failure: tuple[NodeProto, Exception] | None = None
    lexical = checker.LEXICAL_SCOPE_CONTEXT
    names: list[NodeNames] = []
    nodes, append = graph.node, names.append
    op_types: dict[str, str] = {}  # protobuf makes a new str per read: one per op type, not per node
    shared = op_types.setdefault  # (52 bytes a node: 10 MB at 200,000 nodes)
    for position, node in enumerate(_in_slices(nodes)):
        domain, op_type = node.domain, shared(node.op_type, node.op_type)  # one str per op type
        # slices, not iteration: protobuf ends every iteration of a repeated field by formatting an IndexError
        try:
            inputs, ordered = tuple(map(read, node.input[:])), True  # each read defined before
        except KeyError:
            inputs, ordered = tuple(node.input[:]), False
        outputs = tuple(node.output[:])
        held: _Held | None = None
        external = False
        attributes = node.attribute
        if attributes:  # the container, not a slice: most nodes hold one attribute, read by index
            held = (
                attributes[0].SerializeToString()
                if len(attributes) == 1
                else tuple([a.SerializeToString() for a in attributes[:]])
            )
            external = listed.get(held, True)
            if external:  # first met, or holding external data: every tensor is listed
                start = len(tensors)
                node_tensors(attributes[:], node, tensors)
                external = listed[held] = any(t.data_location == _EXTERNAL for t in tensors[start:])
        append((domain, op_type, inputs, outputs, held is not None))
        if ordered and len(outputs) == 1 and (output := outputs[0]) not in defined:
            defined[output] = output  # the common case, decided here without a call
        elif (order := _order_error(defined, node, inputs, outputs)) is not None:
            for later in nodes[position + 1 :]:
                if later.attribute:
                    node_tensors(later.attribute[:], later, tensors)
            return Walked(names, _with_functions(model, tensors), order, failure)
        if failure is not None:
            continue
        plain = not external and "" not in inputs and "" not in outputs
        key = (domain, op_type, len(inputs), len(outputs), held) if plain else None
        if key is not None and key in cleared:
            continue
        graphs = rules.get((domain, op_type), _UNSEEN)
        if graphs is _UNSEEN:
            applies = is_default_domain(domain) and onnx.defs.has(op_type)
            graphs = rules[domain, op_type] = graph_attributes(op_type, opset) if applies else None
        if graphs is None or (graphs and held is not None and _holds_graph(attributes[:], graphs)):
            if key is not None:
                cleared.add(key)
            continue  # not an ONNX op, or a subgraph holder: left to its consumers
        try:
            _check_node(node.SerializeToString(), ctx, lexical)
        except Exception as exc:  # raised once the order is known to be sound
            failure = (node, exc)
            continue
        if key is not None:
            cleared.add(key)
    return Walked(names, _with_functions(model, tensors), None, failure)


def _in_slices(nodes: Sequence[NodeProto]) -> Iterator[NodeProto]:
    """The nodes, read a slice at a time (a slice, not iteration: see the loop above).

    One slice of the whole graph would hold a Python wrapper of every node at once: on a
    200,000-node graph ~100 MB at the load's peak, and ~16 MB that stay in the heap after it.
    """
    for start in range(0, len(nodes), _SLICE):
        yield from nodes[start : start + _SLICE]


def _order_error(
    defined: dict[str, str], node: NodeProto, inputs: tuple[str, ...], outputs: tuple[str, ...]
) -> str | None:
    """Record the node's outputs as defined; the message of an order error, if it makes one."""
    missing = [name for name in inputs if name not in defined]
    if missing:
        return (
            f"node '{node.name}' ({node.op_type}) reads '{missing[0]}' before it is defined "
            "(graph not in topological order, a cycle, or a dangling input); fix or re-export the model"
        )
    if len(outputs) == 1 and (output := outputs[0]) not in defined:
        defined[output] = output
        return None
    for name in outputs:
        if name and name in defined:
            return f"tensor '{name}' is defined twice; the file is corrupt"
        defined[name] = name
    return None


def _with_functions(model: ModelProto, tensors: list[TensorProto]) -> list[TensorProto]:
    """``tensors`` extended by those of the model-local functions' nodes (and their subgraphs)."""
    for function in model.functions:
        for node in function.node:
            if node.attribute:
                node_tensors(node.attribute[:], node, tensors)
    return tensors


__all__ = ["Walked", "checker_context", "graph_attributes", "walk_graph"]
