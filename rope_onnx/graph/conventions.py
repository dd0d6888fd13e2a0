"""Three ONNX conventions every part of rope-onnx needs, written once.

- The default operator set answers to two spellings of its domain, ``""`` and ``"ai.onnx"``
  (the ONNX spec treats them as one); a node in either is a standard op.
- A model's default-domain opset version is the ``opset_import`` entry of that domain.
- Nodes live in the main graph and, recursively, in the ``GRAPH``/``GRAPHS`` attributes of
  control-flow nodes (If, Loop, Scan bodies).
"""

from __future__ import annotations

from collections.abc import Iterator

from onnx import AttributeProto, GraphProto, ModelProto, NodeProto

__all__ = [
    "DEFAULT_DOMAINS",
    "all_nodes",
    "default_opset",
    "is_default_domain",
    "subgraphs",
    "walk_graphs",
]

#: The two spellings of the default (standard) operator domain.
DEFAULT_DOMAINS = ("", "ai.onnx")


def is_default_domain(domain: str) -> bool:
    """Whether ``domain`` names ONNX's standard operator set."""
    return domain in DEFAULT_DOMAINS


def default_opset(model: ModelProto) -> int | None:
    """The model's default-domain opset version, or None when it imports none."""
    return next((entry.version for entry in model.opset_import if is_default_domain(entry.domain)), None)


def subgraphs(node: NodeProto) -> Iterator[GraphProto]:
    """The graphs a node carries as attributes (its If branches, Loop/Scan bodies), one level deep."""
    for attribute in node.attribute:
        if attribute.type == AttributeProto.GRAPH:
            yield attribute.g
        elif attribute.type == AttributeProto.GRAPHS:
            yield from attribute.graphs


def walk_graphs(graph: GraphProto) -> Iterator[GraphProto]:
    """``graph`` and every graph nested inside its nodes, depth first."""
    yield graph
    for node in graph.node:
        for sub in subgraphs(node):
            yield from walk_graphs(sub)


def all_nodes(graph: GraphProto) -> Iterator[NodeProto]:
    """Every node of ``graph`` and of its nested graphs."""
    for each in walk_graphs(graph):
        yield from each.node
