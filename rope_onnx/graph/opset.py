"""Raise a model's default opset to 23 (``--target onnx``: RotaryEmbedding exists from opset 23 on).

onnx's version converter is not used: measured on onnx 1.23 with this project's fixtures, it drops every
node's ``metadata_props`` and most ``value_info`` entries, and inserts Constant nodes (ReduceMean-18's
axes), so "the rest of the graph keeps its nodes, names, value_info and metadata" does not hold.  Instead
the opset entry is raised in place when every default-domain node (subgraphs included) means the same at
23 as at the model's opset: its schema did not change in between, or only changed by admitting more
element types (the versions listed in ``TYPE_ONLY``), or it is one of two ops adapted exactly here —
``Reduce*`` (18: ``axes`` moves from an attribute to an input) and ``Split`` (18: an even split without
the ``split`` input names its ``num_outputs``).  Nodes keep their names, inputs, outputs and metadata; any
other change refuses the model with a one-line reason.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, defs, helper, numpy_helper

from rope_onnx.graph.conventions import all_nodes, default_opset, is_default_domain

TARGET_OPSET = 23

_TYPES_19 = {"Cast", "CastLike", "Constant", "Equal", "Identity", "If", "Loop", "Pad", "Reshape", "Scan"}
_TYPES_19 |= {"Shape", "Size"}
_TYPES_21 = {"Cast", "CastLike", "Constant", "ConstantOfShape", "Flatten", "Identity", "If", "Loop", "Pad"}
_TYPES_21 |= {"Reshape", "Scan", "Shape", "Size", "Squeeze", "Transpose", "Unsqueeze"}
_UNARY_22 = {"Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Cos", "Cosh", "Sin", "Sinh", "Tan", "Round"}
_UNARY_22 |= {"Elu", "Selu", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Mish", "ThresholdedRelu"}
_UNARY_22 |= {"Dropout", "EyeLike", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike"}
#: Opset versions at which an op only admitted more element types (float8, int4, bfloat16, float4).
TYPE_ONLY: dict[int, set[str]] = {
    19: _TYPES_19,
    20: {"ConstantOfShape", "IsInf", "IsNaN", "ReduceMax", "ReduceMin"},
    21: _TYPES_21,
    22: _UNARY_22,
    23: _TYPES_21,
}
REDUCE_18 = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean"}
REDUCE_18 |= {"ReduceMin", "ReduceProd", "ReduceSumSquare"}


def _changes(op: str, old: int) -> list[int]:
    """Schema versions of ``op`` introduced after ``old`` up to the target."""
    try:
        first = defs.get_schema(op, old).since_version
    except Exception:  # no such op at the old opset: the checker reports it; nothing to adapt here
        return []
    return sorted({defs.get_schema(op, v).since_version for v in range(old + 1, TARGET_OPSET + 1)} - {first})


def raise_to_23(model: ModelProto) -> str:
    """Raise ``model``'s default opset to 23 in place; '' on success, else why it cannot be (unchanged)."""
    old = default_opset(model)
    if old is None:
        return "the model imports no default-domain opset"
    if old >= TARGET_OPSET:
        return ""
    blockers: set[str] = set()
    adapt = []
    for node in all_nodes(model.graph):
        if not is_default_domain(node.domain):
            continue
        for version in _changes(node.op_type, old):
            if node.op_type in TYPE_ONLY.get(version, ()):
                continue
            if version == 18 and (node.op_type in REDUCE_18 or node.op_type == "Split"):
                adapt.append(node)
                continue
            blockers.add(f"{node.op_type}-{version}")
    if blockers:
        return (
            f"opset {old} -> {TARGET_OPSET} changes {', '.join(sorted(blockers))}; re-export at opset 23 "
            "(torch.onnx.export(..., opset_version=23)) or use --target ort"
        )
    for node in adapt:
        _adapt_18(model, node)
    for entry in model.opset_import:
        if is_default_domain(entry.domain):
            entry.version = TARGET_OPSET
    return ""


def _adapt_18(model: ModelProto, node) -> None:
    if node.op_type == "Split":
        if len(node.input) < 2 or not node.input[1]:
            node.attribute.append(helper.make_attribute("num_outputs", len(node.output)))
        return
    axes = next((a for a in node.attribute if a.name == "axes"), None)
    if axes is None:
        return
    name = f"rope_onnx/{node.name or node.output[0]}/axes"  # the prefix marks what rope-onnx added
    used = {t.name for t in model.graph.initializer}
    while name in used:
        name += "_"
    model.graph.initializer.append(numpy_helper.from_array(np.array(list(axes.ints), np.int64), name))
    node.attribute.remove(axes)
    while len(node.input) < 1:
        node.input.append("")
    node.input.append(name)
