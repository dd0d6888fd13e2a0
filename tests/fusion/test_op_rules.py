"""The op rule registry: one rule per op, and the pass reads only it."""

from __future__ import annotations

import re
from pathlib import Path

from rope_onnx.fusion.ops.registry import ANCHOR_OPS, FOLDERS, RULES, rule_for

PASS = Path(__file__).resolve().parents[2] / "rope_onnx" / "fusion"


def test_sites_end_in_the_anchor_ops_the_rules_declare() -> None:
    assert frozenset({"Add", "Sub", "Concat", "Reshape"}) == ANCHOR_OPS


def test_every_traced_op_also_has_a_rank_rule() -> None:
    """The tracer asks the rank of every tensor it follows: a traced op without one would stall."""
    assert [op for op, rule in RULES.items() if rule.trace is not None and rule.rank is None] == []


def test_folding_covers_the_shape_arithmetic_exporters_emit() -> None:
    for op in ("Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Cast", "Add", "Sub", "Mul", "Div"):
        assert op in FOLDERS, op


def test_rules_apply_to_the_default_domain_only() -> None:
    assert rule_for("Mul", "") is RULES["Mul"]
    assert rule_for("Mul", "ai.onnx") is RULES["Mul"]
    assert rule_for("Mul", "com.microsoft") is None
    assert rule_for("RoPECustomer", "") is None


def test_no_op_list_outside_the_rule_modules() -> None:
    """What the pass knows about an op lives in its rule: no other module decides by op type."""
    decides = re.compile(r"op_type\s*(==|!=|in|not in)\s*[\"'(\[{]")
    offenders = [
        f"{module.relative_to(PASS)}:{number}"
        for module in PASS.rglob("*.py")
        if module.parent.name != "ops"
        for number, line in enumerate(module.read_text().splitlines(), 1)
        if decides.search(line)
    ]
    assert offenders == []
