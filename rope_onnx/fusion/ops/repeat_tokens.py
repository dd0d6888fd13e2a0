"""Small helpers of the repeat proof: op families, attribute readers, token array maps, and the recovery of
a symbolic last dim that shape inference leaves unnamed (TorchScript's repeat-interleave reshapes)."""

from __future__ import annotations

import numpy as np

from rope_onnx.fusion.ops.registry import fold_ints
from rope_onnx.graph.attributes import attr_ints
from rope_onnx.graph.folding import NotStatic
from rope_onnx.graph.index import GraphIndex

#: Elementwise ops of one tensor whose output element depends only on the same input element.
UNARY = frozenset(
    {"Cos", "Sin", "Cast", "Neg", "Identity", "Sqrt", "Exp", "Reciprocal", "Abs", "Log", "Tanh", "Sigmoid"}
)
BINARY = frozenset({"Mul", "Add", "Sub", "Div", "Pow"})
MAX_DEPTH = 64


def last_dim_dims(index: GraphIndex, name: str, depth: int = 0) -> list | None:
    """index.dims, with a symbolic LAST dim recovered through unary ops, Unsqueeze/Squeeze of other
    axes and a Reshape to `[*leading, -1]` (TorchScript's repeat-interleave leaves it unnamed)."""
    dims = index.dims(name)
    node = index.node_of(name)
    if not dims or isinstance(dims[-1], int) or node is None or depth > MAX_DEPTH:
        return dims
    src = last_dim_dims(index, node.input[0], depth + 1) if node.input else None
    if not src or not isinstance(src[-1], int):
        return dims
    last = None
    if node.op_type in UNARY:
        last = src[-1]
    elif node.op_type in ("Unsqueeze", "Squeeze"):
        axes = attr_ints(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            value = index.constant(node.input[1])
            axes = None if value is None else [int(v) for v in np.ravel(value)]
        ref = len(dims) if node.op_type == "Unsqueeze" else len(src)  # the rank axes refer to
        if axes is not None and all(int(a) % ref != ref - 1 for a in np.ravel(axes)):
            last = src[-1]
    elif node.op_type == "Reshape":
        try:
            target = list(fold_ints(index, node.input[1]).values)
        except NotStatic:
            target = []
        lead = target[:-1]
        if target and target[-1] == -1 and lead == src[: len(lead)] and -1 not in lead and 0 not in lead:
            rest = src[len(lead) :]
            if all(isinstance(d, int) for d in rest):
                last = int(np.prod(rest, dtype=np.int64))
    return dims if last is None else [*dims[:-1], last]


def _map(fn, arr: np.ndarray) -> np.ndarray:
    out = np.empty(arr.shape, dtype=object)
    for pos in np.ndindex(*arr.shape):
        out[pos] = fn(arr[pos])
    return out


def _zip(fn, *arrs: np.ndarray) -> np.ndarray:
    out = np.empty(arrs[0].shape, dtype=object)
    for pos in np.ndindex(*arrs[0].shape):
        out[pos] = fn(*(a[pos] for a in arrs))
    return out
