"""ONNX Runtime's ``com.microsoft`` ops, for the dims of what comes after them only.

ONNX Runtime's offline optimizer (EXTENDED) fuses the normalisations, activations and attention
MatMuls of a model into these ops, which ONNX shape inference cannot type: every tensor after them
(the q/k projection, the Reshape and Transpose that make x, the next layer's residual stream) loses
its shape.  The per-axis table proof follows only ops whose output-0 shape is what onnxruntime's
docs/ContribOperators.md documents:

- ``SkipLayerNormalization``, ``SkipSimplifiedLayerNormalization``: "output: 3D output tensor with
  shape (batch_size, sequence_length, hidden_size)", input 0's shape;
- ``SimplifiedLayerNormalization`` (onnxruntime registers it in the ONNX domain, with
  LayerNormalization's shape inference, in contrib_defs.cc; some tools write it in this one):
  input 0's shape;
- ``FastGelu``, ``QuickGelu``: element-wise on input 0 (FastGelu's optional bias is 1-D over the
  last axis), so input 0's shape;
- ``FusedMatMul``: "Matrix product that behaves like numpy.matmul", after transposing the last two
  axes of A / B for ``transA`` / ``transB``; ``transBatchA`` / ``transBatchB`` are not followed.

Any other op of any other domain is not followed: its output's dims are not known.
"""

from __future__ import annotations

from onnx import NodeProto

from rope_onnx.fusion.ops.base import DimsContext, OpRule
from rope_onnx.fusion.ops.common import same_dims
from rope_onnx.fusion.ops.dimnames import SourceDims, matmul_shape
from rope_onnx.graph.attributes import attr_int

__all__ = ["DOMAIN", "RULES"]

DOMAIN = "com.microsoft"

_SAME_SHAPE = (
    "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization",
    "SimplifiedLayerNormalization",
    "FastGelu",
    "QuickGelu",
)


def _fused_matmul_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    if attr_int(node, "transBatchA", 0) or attr_int(node, "transBatchB", 0):
        return None
    a, b = ctx.dims_of(node.input[0]), ctx.dims_of(node.input[1])
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return None
    if attr_int(node, "transA", 0):
        a = [*a[:-2], a[-1], a[-2]]
    if attr_int(node, "transB", 0):
        b = [*b[:-2], b[-1], b[-2]]
    return matmul_shape(a, b)


RULES = (
    *(OpRule(op, dims=same_dims) for op in _SAME_SHAPE),
    OpRule("FusedMatMul", dims=_fused_matmul_dims),
)
