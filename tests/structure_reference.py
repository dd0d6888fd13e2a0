"""The structure checks as the plain two-pass walk they replace: the reference the one-walk
loader (rope_onnx/io/walk.py) is held to by tests/io/test_node_checks.py and tests/io/test_walk.py."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import AttributeProto, checker

from rope_onnx.graph.conventions import default_opset, is_default_domain
from rope_onnx.io import walk

GRAPH_TYPES = (AttributeProto.GRAPH, AttributeProto.GRAPHS)


def two_pass_verdict(model: onnx.ModelProto, path: Path) -> str | None:
    """The two-pass check: the order of every node first, then the schema of each."""
    graph = model.graph
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    for node in graph.node:
        missing = [name for name in node.input if name not in defined]
        if missing:
            return (
                f"{path}: node '{node.name}' ({node.op_type}) reads '{missing[0]}' before it is defined "
                "(graph not in topological order, a cycle, or a dangling input); fix or re-export the model"
            )
        for name in node.output:
            if name and name in defined:
                return f"{path}: tensor '{name}' is defined twice; the file is corrupt"
            defined.add(name)
    ctx = walk.checker_context(model)
    for node in graph.node:
        if not (is_default_domain(node.domain) and onnx.defs.has(node.op_type)):
            continue
        if any(a.type in GRAPH_TYPES for a in node.attribute):
            try:
                schema = onnx.defs.get_schema(node.op_type, default_opset(model) or 0, "")
                declared = {n for n, a in schema.attributes.items() if a.type in GRAPH_TYPES}
            except onnx.defs.SchemaError:
                declared = set()
            if any(a.name in declared for a in node.attribute if a.type in GRAPH_TYPES):
                continue
        try:
            checker.check_node(node, ctx)
        except checker.ValidationError as exc:
            first = str(exc).strip().splitlines()[0]
            return (
                f"{path}: node '{node.name}' ({node.op_type}) is invalid: {first} Fix or re-export the model."
            )
    return None
