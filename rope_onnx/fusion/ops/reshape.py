"""Reshape on the channel grid, allowed only when it provably keeps every leading dim.

Exporters reshape to pairs (``[..., D] → [..., D/2, 2]``) and flatten back.  Such a reshape only
regroups the trailing channels, which the grid models exactly — *if* the leading part of the
target shape equals the input's leading dims.  Target shapes are often computed in-graph
(``Shape → Slice → Concat``); :mod:`rope_onnx.graph.folding` folds them, and each leading entry must be
``0`` (copy), the same static size, or the very same symbolic dim.

A reshape that also regroups the leading axes (Meta's ``q_proj(h).view(B, L, H, D/2, 2)``, whose
input is the ``[B, L, H*D]`` projection; ChatGLM's ``cache.view(-1, sq, 1, R/2, 2)``) is followed
through a :class:`View`: its input reshaped to the target's leading entries and the product of its
static trailing ones.  Reshapes are row-major, so ``reshape(src, T)`` equals
``reshape(reshape(src, T[:lead] + [prod(T[lead:])]), T)`` for every input the original accepts (the
same ``0``/``-1`` entries resolve to the same sizes): the view holds exactly the elements in the same
order, its leading dims are the output's, and the output only splits its last axis.  The view
becomes an input of the site that the rewrite creates (one Reshape with a constant shape, written
by :func:`view_shape` only where every entry is proven).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.ops.base import DimsContext, OpRule, ShapeContext, TraceContext
from rope_onnx.fusion.ops.common import TABLE
from rope_onnx.fusion.ops.dimnames import SourceDims, is_size_symbol
from rope_onnx.graph.attributes import attr_int
from rope_onnx.graph.folding import DimsHint, IntValue, NotStatic
from rope_onnx.graph.index import Dim, GraphIndex

__all__ = ["RULES", "View", "view_dims", "view_shape"]


@dataclass(frozen=True)
class View:
    """``source`` reshaped to ``shape[:lead] + [width]``, where ``shape`` is the target tensor of the
    Reshape ``node`` (the tensor a Reshape reads with its trailing grid axes merged, see above)."""

    name: str
    source: str
    shape: str
    lead: int
    width: int
    allowzero: bool
    node: str


def _inferred(source: list[Dim], others: list[Dim]) -> Dim | None:
    """The ``-1`` entry of a reshape of ``source`` whose other entries are ``others``, when the two
    products cancel to one static size or one symbol (equal symbols are equal sizes), else None."""
    have = Counter(d for d in source if not isinstance(d, int))
    take = Counter(d for d in others if not isinstance(d, int))
    size = int(np.prod([d for d in source if isinstance(d, int)], dtype=np.int64))
    known = int(np.prod([d for d in others if isinstance(d, int)], dtype=np.int64))
    if take - have or known <= 0 or size % known:
        return None
    left, quotient = have - take, size // known
    if not left:
        return quotient
    return next(iter(left)) if quotient == 1 and sum(left.values()) == 1 else None


def _lead(view: View, fold: Callable[[str], IntValue]) -> list[Dim]:
    """The target's leading entries (folded again by the caller's dims: NotRope where that fails)."""
    try:
        return list(fold(view.shape).values)[: view.lead]
    except NotStatic as why:
        raise NotRope(f"Reshape node '{view.node}': target shape is not static ({why})") from why


def view_dims(view: View, fold: Callable[[str], IntValue], dims_of: DimsHint) -> list[Dim]:
    """The view's shape: the target's leading entries as ``fold`` gives them (``0`` copies the source's
    dim, ``-1`` is what the element count leaves), then its width; an entry not shown gets its own symbol."""
    entries = _lead(view, fold)
    source = dims_of(view.source)
    for i, entry in enumerate(entries):
        if entry == 0 and not view.allowzero:
            entries[i] = source[i] if source is not None and i < len(source) else f"dim:{view.name}:{i}"
    if -1 in entries:
        i = entries.index(-1)
        rest = [*entries[:i], *entries[i + 1 :], view.width]
        found = _inferred(source, rest) if source is not None else None
        entries[i] = found if found is not None else f"dim:{view.name}:{i}"
    return [*entries, view.width]


def view_shape(view: View, fold: Callable[[str], IntValue], dims_of: DimsHint) -> list[int]:
    """A constant target for the Reshape that creates the view (``allowzero`` 0), or NotRope: each
    leading entry is a static size, the original's one ``-1`` (it resolves to the same size: the element
    count and every other entry are the same), or proven equal to the input's dim there (written ``0``).
    An entry nothing shows is not written as a second ``-1``: on an empty input ONNX cannot infer one."""
    entries = _lead(view, fold)
    source = dims_of(view.source)
    out: list[int] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, int) and (entry > 0 or entry == -1):
            out.append(entry)
        elif (entry == 0 and not view.allowzero) or (
            source is not None and i < len(source) and entry == source[i]
        ):
            out.append(0)
        else:
            raise NotRope(
                f"Reshape node '{view.node}': leading entry {i} of its target ({entry}) is neither static "
                f"nor shown equal to dim {i} of its input '{view.source}', so the view of that input the "
                "fused node would read cannot be written with a constant shape"
            )
    return [*out, view.width]


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
    if lead < 0:
        raise NotRope(f"Reshape node '{node.name}' changes the leading axes")
    if k_in < 1:
        return _through_view(t, node, out, k, target, f"Reshape node '{node.name}' changes the leading axes")
    lead_target, grid_target = shape[:lead], shape[lead:]
    inferred_lead = [i for i, d in enumerate(lead_target) if d == -1]
    for i, (want, have) in enumerate(zip(lead_target, source_dims[:lead], strict=True)):
        if i in inferred_lead:
            continue
        if not _same_dim(want, have, allow_zero):
            refusal = f"Reshape node '{node.name}' may change leading dim {i} ({have} -> {want})"
            return _through_view(t, node, out, k, target, refusal)
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


def _through_view(t: TraceContext, node: NodeProto, out: str, k: int, target: IntValue, why: str) -> Expr:
    """The output on its trailing ``k`` axes as a :class:`View` of the input regrouped (module doc),
    where those ``k`` target entries are static; else NotRope(``why``), the reason the direct rule gave.
    At k = 1 the view would be the output itself, which the tracer then makes a leaf anyway."""
    allow_zero = bool(attr_int(node, "allowzero", 0))
    grid = [d for d in target.values[len(target.values) - k :] if isinstance(d, int) and d > 0]
    if k < 2 or len(grid) != k:
        raise NotRope(why)
    lead, width = len(target.values) - k, int(np.prod(grid))
    view = View(
        f"{out} (last {k} axes merged)", node.input[0], node.input[1], lead, width, allow_zero, node.name
    )
    merged = t.view(view, why)
    return merged.with_grid(merged.grid.reshape(grid), target.nodes)


def _reshape_rank(ctx: ShapeContext, node: NodeProto, name: str) -> int | None:
    """The target's length, folded with one symbol per axis of tensors whose rank alone is known
    (``Shape(t)[:-2]`` has rank(t) - 2 entries even when inference lost t's shape)."""

    def dims(tensor: str) -> list[Dim] | None:
        known = ctx.index.dims(tensor)
        if known is not None:
            return known
        rank = ctx.rank_of(tensor)
        return None if rank is None else [f"dim:{tensor}:{axis}" for axis in range(rank)]

    return len(ctx.fold(node.input[1], dims).values)


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


def _fold_reshape(
    index: GraphIndex, node: NodeProto, node_id: int, arg: Callable[[int], IntValue]
) -> tuple[list[Dim], bool, frozenset[int]]:
    """A shape value reshaped to 1-D (``[-1]`` or its length) or, with one entry, to 0-D: the same
    entries (TorchScript's ``expand`` flattens its target so)."""
    data, target = arg(0), arg(1)
    shape = target.ints()
    n = len(data.values)
    if shape not in ([-1], [n]) and not (shape == [] and n == 1):
        raise NotStatic(f"Reshape node '{node.name}' on a shape value is not a flattening")
    return list(data.values), shape == [], data.nodes | target.nodes


def _reshape_dims(ctx: DimsContext, node: NodeProto, name: str) -> SourceDims | None:
    """The target shape, folded with ``Shape(t)`` reading t's proven dims (exporters build targets as
    ``Concat(Unsqueeze(Gather(Shape(t), i)), …)``); ``0`` copies the input's dim (unless allowzero);
    a ``-1`` is counted only when every other dim is static and non-zero.

    A size symbol ``s`` in the target is the output dim only where that cannot be the copy a run-time
    ``s = 0`` would make instead: with allowzero, or where the input's dim there is ``s`` itself.  An
    opaque entry (arithmetic on a symbol) could be -1 or 0 at run time: not known.
    """
    data = ctx.dims_of(node.input[0])
    target = list(ctx.fold(node.input[1]).values)
    allow_zero = bool(attr_int(node, "allowzero", 0))
    out: SourceDims = []
    for k, entry in enumerate(target):
        here = data[k] if data is not None and k < len(data) else None
        if entry == 0 and not allow_zero:
            out.append(here)
        elif isinstance(entry, int):
            out.append(entry if entry >= 0 else None)
        else:
            out.append(entry if is_size_symbol(entry) and (allow_zero or entry == here) else None)
    if target.count(-1) == 1 and data is not None:
        known = [d for k, d in enumerate(out) if target[k] != -1]
        if all(d is not None for d in (*data, *known)):  # equal symbols cancel: [1, seq, 4, 2] -> [1, -1, 8]
            out[target.index(-1)] = _inferred(list(data), known)  # type: ignore[arg-type]
    return out


RULES = (
    OpRule(
        "Reshape",
        trace=_reshape,
        rank=_reshape_rank,
        width=_reshape_width,
        fold=_fold_reshape,
        dims=_reshape_dims,
        anchor=True,
        roles=TABLE,
        channel_inputs=1,
    ),
)
