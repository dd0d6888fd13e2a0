"""Ops the proof never follows but whose output rank (or nature) it must know.

A Transpose or a normalisation upstream of a site ends the candidate (the tensor becomes an
input of the site), yet the ranks of tensors after it tell channel axes from leading ones.
"""

from __future__ import annotations

from rope_onnx.fusion.ops.base import OpRule
from rope_onnx.fusion.ops.common import same_rank

RULES = (
    *(OpRule(op, rank=same_rank) for op in ("Transpose", "Softmax", "LayerNormalization")),
    # Folded by graph.folding itself (it needs the caller's dims); it reads no values.
    OpRule("Shape", reads_values=False),
)
