"""Does a candidate look like RoPE?  Structure only, no proof: so that no such site is missed silently.

The proof (:mod:`rope_onnx.fusion.trace`, :mod:`rope_onnx.fusion.prove`) decides what fuses; a
candidate it cannot even trace (a channel width it cannot know, an op it does not model) used to be
dropped without a word.  A sum (or difference) of two products, on a head-sized axis, where one
factor comes from Sin/Cos, a gathered table or a graph input, is what every RoPE site looks like: such a
candidate is reported in ``skipped`` with where the proof stopped.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.ops.registry import has_role
from rope_onnx.graph.index import GraphIndex

#: The ops' part in it is their rules' ``roles`` (:mod:`rope_onnx.fusion.ops`): "table" ops a table passes
#: through between its Sin/Cos (or gathered cache) and the site's Mul, "table_root"/"gather" where it
#: comes from, "wrapper" the precision wrappers looked through, "product"/"sum" the site's own ops.
MAX_HOPS = 12


def _is_table(index: GraphIndex, name: str) -> bool:
    """``name`` is (a view of) a Sin/Cos result, of a Gather from a constant cache, or of a graph
    input (tables computed outside the model)."""
    todo, seen = [(name, 0)], set()
    while todo:
        tensor, hops = todo.pop()
        node = index.node_of(tensor)
        if tensor in index.graph_inputs and tensor not in index.initializers:
            return True  # tables handed to the model (position embeddings as inputs)
        if tensor in seen or hops > MAX_HOPS:
            continue
        if _stored(index, tensor) and not _scale(index, tensor):
            return True  # a folded table (static shapes)
        if node is None:
            continue
        seen.add(tensor)
        if has_role(node, "table_root"):
            return True
        if has_role(node, "gather") and node.input and _stored(index, node.input[0]):
            return True
        if has_role(node, "table"):
            todo.extend((i, hops + 1) for i in node.input[:1] if i)
    return False


def _stored(index: GraphIndex, name: str) -> bool:
    """An initializer or a Constant node (a cache the exporter folded)."""
    node = index.node_of(name)
    return name in index.initializers or has_role(node, "stored")


def _through_casts(index: GraphIndex, name: str) -> NodeProto | None:
    """The producer of ``name``, looking through Casts and Identities (precision wrappers)."""
    node = index.node_of(name)
    for _ in range(MAX_HOPS):
        if node is None or not has_role(node, "wrapper") or not node.input:
            return node
        node = index.node_of(node.input[0])
    return node


def _scale(index: GraphIndex, name: str) -> bool:
    """A one-element constant: ``Mul`` by it scales, it does not multiply two tensors."""
    if name in index.initializers:
        return int(np.prod(index.initializers[name].dims)) == 1
    node = index.node_of(name)
    if not has_role(node, "stored"):
        return False
    value = index.constant(name)
    return value is not None and value.size == 1


def _product_with_table(index: GraphIndex, name: str) -> bool:
    """A product of two tensors, one of them a table."""
    node = _through_casts(index, name)
    if node is None or not has_role(node, "product") or any(_scale(index, i) for i in node.input):
        return False
    return any(_is_table(index, i) for i in node.input if i)


def looks_like_rope(index: GraphIndex, anchor: int) -> bool:
    """Add/Sub of two Muls, each by a table (x·cos ± rot(x)·sin).  Both, not one: a residual sum
    with an embedding lookup scaled by a constant is a product with a gathered table too."""
    node: NodeProto | None = index.nodes[anchor]
    if node is not None and has_role(node, "wrapper"):  # a rounding Cast ending an fp32 site
        node = _through_casts(index, node.output[0])
    if node is None or not has_role(node, "sum") or len(node.input) != 2:
        return False
    return all(_product_with_table(index, i) for i in node.input)
