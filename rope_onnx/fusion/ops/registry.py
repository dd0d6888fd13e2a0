"""All op rules, by op type: the one table the tracer, shape rules, folding and candidates read."""

from __future__ import annotations

from collections.abc import Mapping

from onnx import NodeProto

from rope_onnx.fusion.ops import axes, branches, concat, elementwise, repeat, reshape, shape_only, slicing
from rope_onnx.fusion.ops.base import OpRule
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.folding import DimsHint, Folder, IntValue, int_values
from rope_onnx.graph.index import GraphIndex

__all__ = ["ANCHOR_OPS", "FOLDERS", "RULES", "fold_ints", "reads_values", "rule_for"]


def _collect() -> dict[str, OpRule]:
    rules: dict[str, OpRule] = {}
    for family in (elementwise, slicing, concat, axes, reshape, repeat, branches, shape_only):
        for rule in family.RULES:
            if rule.op_type in rules:
                raise RuntimeError(f"two rules for {rule.op_type}")  # a programming error, caught by tests
            rules[rule.op_type] = rule
    return rules


#: Every op the pass knows, standard domain only.
RULES: Mapping[str, OpRule] = _collect()
#: Sites end in one of these ops; everything else inside a site is reached from them.
ANCHOR_OPS = frozenset(op for op, rule in RULES.items() if rule.anchor)
#: How each op folds small integer tensors (shapes, bounds).
FOLDERS: Mapping[str, Folder] = {op: rule.fold for op, rule in RULES.items() if rule.fold is not None}


def rule_for(op_type: str, domain: str) -> OpRule | None:
    """The rule of a node's op, or None for ops the pass does not know (any other domain included)."""
    return RULES.get(op_type) if is_default_domain(domain) else None


def reads_values(node: NodeProto) -> bool:
    """Whether a node's inputs flow into its output as values (``Shape`` reads only a shape)."""
    rule = rule_for(node.op_type, node.domain)
    return rule is None or rule.reads_values


def fold_ints(index: GraphIndex, name: str, hint: DimsHint | None = None) -> IntValue:
    """``name`` folded to integers with every op rule's folding (see :func:`int_values`)."""
    return int_values(index, name, FOLDERS, hint)
