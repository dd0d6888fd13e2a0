"""Ops the proof never follows but whose output rank, dims (or nature) it must know.

A normalisation upstream of a site ends the candidate (the tensor becomes an input of the site),
yet the ranks of tensors after it tell channel axes from leading ones, and its dims are what the
per-axis table proof follows back to a graph input (x's position dim through the q/k projection).
"""

from __future__ import annotations

from onnx import NodeProto

from rope_onnx.fusion.ops.base import DimsContext, OpRule
from rope_onnx.fusion.ops.common import TABLE, broadcast_dims_rule, same_dims, same_rank
from rope_onnx.fusion.ops.dimnames import SourceDims, is_size_symbol, matmul_shape


def _range_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """``Range(0, n, 1)`` has n entries (none when n < 0): TorchScript's positions ``arange(seq)``."""
    start, limit, delta = (ctx.fold(i).values for i in node.input[:3])
    if start != (0,) or delta != (1,) or len(limit) != 1:
        return None
    n = limit[0]
    if isinstance(n, int):
        return [max(n, 0)]
    return [n] if is_size_symbol(n) else None


def _matmul_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """NumPy matmul on inputs of rank >= 2: leading dims broadcast, then A's rows and B's columns."""
    a, b = ctx.dims_of(node.input[0]), ctx.dims_of(node.input[1])
    return None if a is None or b is None else matmul_shape(a, b)


RULES = (
    *(OpRule(op, rank=same_rank, dims=same_dims) for op in ("Softmax", "LayerNormalization")),
    # ONNX Runtime registers its RMS norm in the ONNX domain (onnxruntime/core/graph/contrib_ops/
    # contrib_defs.cc); output 0 has input 0's shape, as LayerNormalization's.
    OpRule("SimplifiedLayerNormalization", dims=same_dims),
    OpRule("MatMul", dims=_matmul_dims),
    OpRule("Range", dims=_range_dims),
    # Comparisons and logic: the attention masks exporters build broadcast like any element-wise op.
    *(
        OpRule(op, dims=broadcast_dims_rule)
        for op in ("Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor")
    ),
    OpRule("Not", dims=same_dims),
    # Folded by graph.folding itself (it needs the caller's dims); it reads no values.
    OpRule("Shape", reads_values=False),
    # Known to the RoPE look-alike check only (the proof treats their outputs as site inputs).
    *(OpRule(op, roles=TABLE | {"gather"}) for op in ("GatherND", "GatherElements")),
    OpRule("Flatten", roles=TABLE),
    OpRule("Constant", roles=frozenset({"stored"})),
)
