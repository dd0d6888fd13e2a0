"""Reshape on the channel grid, allowed only when it provably keeps every leading dim.

Exporters reshape to pairs (``[..., D] → [..., D/2, 2]``) and flatten back.  Such a reshape only
regroups the trailing channels, which the grid models exactly — *if* the leading part of the
target shape equals the input's leading dims.  Target shapes are often computed in-graph
(``Shape → Slice → Concat``); :mod:`rope_onnx.graph.folding` folds them, and each leading entry must be
``0`` (copy), the same static size, or the very same symbolic dim.  Anything else refuses.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.ops.base import OpRule, ShapeContext, TraceContext
from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.folding import NotStatic
from rope_onnx.graph.index import Dim


def _same_dim(target: Dim, source: Dim, allow_zero: bool) -> bool:
    return (target == 0 and not allow_zero) or target == source


def _reshape(t: TraceContext, node: NodeProto, out: str, k: int) -> Expr:
    source_dims = t.dims(node.input[0])
    if source_dims is None:
        raise NotRope(f"Reshape node '{node.name}': the input's rank is unknown")
    try:
        target = t.fold(node.input[1])
    except NotStatic as why:
        raise NotRope(f"Reshape node '{node.name}': target shape is not static ({why})") from why
    allow_zero = bool(attr_int(node, "allowzero", 0))
    shape = list(target.values)
    lead = len(shape) - k
    k_in = len(source_dims) - lead
    if lead < 0 or k_in < 1:
        raise NotRope(f"Reshape node '{node.name}' changes the leading axes")
    lead_target, grid_target = shape[:lead], shape[lead:]
    inferred_lead = [i for i, d in enumerate(lead_target) if d == -1]
    for i, (want, have) in enumerate(zip(lead_target, source_dims[:lead], strict=True)):
        if i in inferred_lead:
            continue
        if not _same_dim(want, have, allow_zero):
            raise NotRope(f"Reshape node '{node.name}' may change leading dim {i} ({have} -> {want})")
    value = t.expr(node.input[0], k_in)
    grid_in = value.grid.shape
    size = int(np.prod(grid_in))
    grid_out: list[int] = []
    for i, entry in enumerate(grid_target):
        d: Dim | None = entry
        if d == 0 and not allow_zero:
            d = source_dims[lead + i] if lead + i < len(source_dims) else None
        if not isinstance(d, int) or d < -1:
            raise NotRope(f"Reshape node '{node.name}': channel dims {grid_target} are not static")
        grid_out.append(d)
    if grid_out.count(-1) + len(inferred_lead) > 1:
        raise NotRope(f"Reshape node '{node.name}' infers more than one dim")
    if -1 in grid_out:
        known = int(np.prod([d for d in grid_out if d != -1]))
        if known == 0 or size % known:
            raise NotRope(f"Reshape node '{node.name}' cannot regroup {size} channels as {grid_out}")
        grid_out[grid_out.index(-1)] = size // known
    if int(np.prod(grid_out)) != size:
        raise NotRope(f"Reshape node '{node.name}' regroups {size} channels into {grid_out}")
    return value.with_grid(value.grid.reshape(grid_out), target.nodes)


def _reshape_rank(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    return len(ctx.fold(node.input[1]).values)


def _reshape_width(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """Last dim of a Reshape's output: static, copied, or the -1 left after cancelling equal dims."""
    source = ctx.index.dims(node.input[0])
    target = list(ctx.fold(node.input[1]).values)
    last = target[-1]
    if isinstance(last, int) and last > 0:
        return last
    if source is None:
        return None
    if last == 0:
        return ctx.width_of(node.input[0]) if len(source) == len(target) else None
    if last != -1:
        return None
    remaining: list[Dim] = list(source)
    for d in target[:-1]:
        if d in remaining:
            remaining.remove(d)
        else:
            return None
    sizes = [d for d in remaining if isinstance(d, int)]
    return int(np.prod(sizes, dtype=np.int64)) if len(sizes) == len(remaining) else None


RULES = (OpRule("Reshape", trace=_reshape, rank=_reshape_rank, width=_reshape_width, anchor=True),)
