"""All op rules, by op type: the one table the tracer, shape rules, folding and candidates read."""

from __future__ import annotations

from collections.abc import Mapping

from onnx import NodeProto

from rope_onnx.fusion.ops import (
    axes,
    branches,
    casts,
    concat,
    contrib,
    elementwise,
    repeat,
    reshape,
    shape_only,
    slicing,
    transpose,
)
from rope_onnx.fusion.ops.base import DimsRule, OpRule
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.folding import DimsHint, Folder, FoldMemo, IntValue, int_values
from rope_onnx.graph.index import GraphIndex

__all__ = [
    "ANCHOR_OPS",
    "DOMAIN_RULES",
    "FOLDERS",
    "RULES",
    "dims_rule_for",
    "fold_ints",
    "has_role",
    "reads_values",
    "reads_values_of",
    "rule_for",
]


def _collect() -> dict[str, OpRule]:
    rules: dict[str, OpRule] = {}
    for family in (
        elementwise,
        casts,
        slicing,
        concat,
        axes,
        reshape,
        repeat,
        branches,
        transpose,
        shape_only,
    ):
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


#: Ops of other domains, by (domain, op type): only their ``dims`` (:mod:`.contrib`).
DOMAIN_RULES: Mapping[tuple[str, str], OpRule] = {
    (contrib.DOMAIN, rule.op_type): rule for rule in contrib.RULES
}


def dims_rule_for(node: NodeProto) -> DimsRule | None:
    """How ``node``'s op names its output dims (any domain with a documented shape contract), or None."""
    rule = rule_for(node.op_type, node.domain) or DOMAIN_RULES.get((node.domain, node.op_type))
    return None if rule is None else rule.dims


def reads_values(node: NodeProto) -> bool:
    """Whether a node's inputs flow into its output as values (``Shape`` reads only a shape)."""
    return reads_values_of(node.op_type, node.domain)


def reads_values_of(op_type: str, domain: str) -> bool:
    """:func:`reads_values` of an op named by (op_type, domain), as ``GraphIndex.names`` holds them."""
    rule = rule_for(op_type, domain)
    return rule is None or rule.reads_values


def has_role(node: NodeProto | None, role: str) -> bool:
    """Whether ``node``'s op plays ``role`` for the RoPE look-alike check (see ``OpRule.roles``)."""
    rule = None if node is None else rule_for(node.op_type, node.domain)
    return rule is not None and role in rule.roles


def fold_ints(
    index: GraphIndex, name: str, hint: DimsHint | None = None, memo: FoldMemo | None = None
) -> IntValue:
    """``name`` folded to integers with every op rule's folding (see :func:`int_values`)."""
    return int_values(index, name, FOLDERS, hint, memo)
