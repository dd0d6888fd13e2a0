"""Per-axis proof that a fused node broadcasts its tables exactly as the original graph did.

``x * cos`` in the original broadcasts by NumPy rules: its output has, on each axis, the larger
of the two dims.  ``RoPECustomer`` always returns x's shape.  The two agree on every input the
original accepts exactly when, on each axis, the table dim ``t`` and x's dim ``d``

- are the same static size or the same symbol, or ``t`` is 1;
- or ``d`` is a static size >= 2 (then the original only runs with ``t`` 1 or ``d``);
- or both are proven equal by where they come from.

Shape inference names unknown dims freshly (TorchScript's tables get ``unk__0`` where x has
``seq``), so the third rule follows a table back through the ops exporters compute tables with
(``Range`` over a ``Shape`` read, ``Unsqueeze``, ``Cast``, ``Cos``/``Sin``, broadcasting ``Mul``,
``Concat``, ``Gather``, ``Expand``, ``Transpose``) and names each dim by its source: a declared
graph-input ``dim_param`` (ONNX gives equal names equal values) or the ``Shape`` read it was
folded from.  Anything else is a refusal: a table dim that is merely *another symbol* could be 5
where x's is 1, and the original's output would have 5 rows where RoPECustomer's has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from onnx import NodeProto

from rope_onnx.fusion.ops.registry import fold_ints
from rope_onnx.graph.folding import NotStatic
from rope_onnx.graph.index import Dim, GraphIndex, attr

Dims = list[Dim | None]

#: Ops whose output has their first input's shape.
_SAME_SHAPE = frozenset(
    {"Cast", "CastLike", "Cos", "Sin", "Neg", "Identity", "Sqrt", "Exp", "Abs", "Reciprocal", "Relu"}
)
_BROADCAST = frozenset({"Mul", "Add", "Sub", "Div", "Pow"})
_MAX_DEPTH = 48


def _attr(node: NodeProto, name: str, default: Any = None) -> Any:
    return attr(node, name, default)


def _broadcast(first: Sequence[Dim | None], second: Sequence[Dim | None]) -> Dims:
    rank = max(len(first), len(second))
    a: Dims = [1] * (rank - len(first))
    a += first
    b: Dims = [1] * (rank - len(second))
    b += second
    out: Dims = []
    for x, y in zip(a, b, strict=True):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y or isinstance(x, int):
            out.append(x)
        elif isinstance(y, int):
            out.append(y)
        else:
            out.append(None)
    return out


class DimProver:
    """Source-named dims of the tensors of one graph (memoised for the whole pass)."""

    def __init__(self, index: GraphIndex) -> None:
        self.index = index
        self._memo: dict[str, Dims | None] = {}

    def dims(self, name: str, depth: int = 0) -> Dims | None:
        if name not in self._memo:
            self._memo[name] = None  # a cycle guard while the rule recurses
            self._memo[name] = self._merge(name, self._rule(name, depth))
        return self._memo[name]

    def _merge(self, name: str, proven: Dims | None) -> Dims | None:
        """Static sizes inference knows win; source names fill what it left as fresh symbols, and
        beat what only a declaration says (a claim nothing checked: graph/shapes.py)."""
        inferred = self.index.dims(name)
        if proven is None:
            return list(inferred) if inferred is not None else None
        if inferred is None or len(inferred) != len(proven):
            return proven
        claimed = self.index.claimed_axes(name)
        return [
            i if (isinstance(i, int) and axis not in claimed) or p is None else p
            for axis, (i, p) in enumerate(zip(inferred, proven, strict=True))
        ]

    def _ints(self, name: str) -> list[Dim] | None:
        try:
            return list(fold_ints(self.index, name).values)
        except NotStatic:
            return None

    def _rule(self, name: str, depth: int) -> Dims | None:
        index = self.index
        node = index.node_of(name)
        if node is None or node.domain not in ("", "ai.onnx") or depth > _MAX_DEPTH:
            return None
        op, ins = node.op_type, list(node.input)

        def arg(i: int) -> Dims | None:
            return self.dims(ins[i], depth + 1) if i < len(ins) and ins[i] else None

        if op in _SAME_SHAPE:
            return arg(0)
        if op in _BROADCAST:
            a, b = arg(0), arg(1)
            return None if a is None or b is None else _broadcast(a, b)
        if op == "Unsqueeze":
            data = arg(0)
            axes = self._ints(ins[1]) if len(ins) > 1 else _attr(node, "axes")
            if data is None or axes is None or not all(isinstance(a, int) for a in axes):
                return None
            rank = len(data) + len(axes)
            out: Dims = list(data)
            for axis in sorted(int(a) % rank for a in axes):
                out.insert(axis, 1)
            return out
        if op == "Range":
            start, limit, delta = (self._ints(i) for i in ins[:3])
            if start == [0] and delta == [1] and limit is not None and len(limit) == 1:
                bound = limit[0]
                return [max(bound, 0) if isinstance(bound, int) else bound]
            return None
        if op == "Concat":
            parts = [self.dims(i, depth + 1) for i in ins]
            if any(p is None for p in parts) or len({len(p) for p in parts if p is not None}) != 1:
                return None
            rank = len(parts[0] or [])
            axis = int(_attr(node, "axis", 0)) % rank if rank else 0
            out = []
            for k in range(rank):
                column = [p[k] for p in parts if p is not None]
                if k == axis:
                    out.append(sum(column) if all(isinstance(c, int) for c in column) else None)  # type: ignore[arg-type]
                else:  # Concat runs only when these agree: any known one holds for all
                    known = [c for c in column if c is not None]
                    out.append(next((c for c in known if isinstance(c, int)), known[0] if known else None))
            return out
        if op == "Gather":
            data, indices = arg(0), arg(1)
            if data is None or indices is None or not data:
                return None
            axis = int(_attr(node, "axis", 0)) % len(data)
            return [*data[:axis], *indices, *data[axis + 1 :]]
        if op == "Transpose":
            data = arg(0)
            perm = _attr(node, "perm")
            if data is None:
                return None
            order = list(perm) if perm else list(range(len(data) - 1, -1, -1))
            return [data[p] for p in order] if sorted(order) == list(range(len(data))) else None
        if op in ("Split", "Slice"):  # the cut axes change; every other axis keeps its dim
            data = arg(0)
            if data is None or not data:
                return None
            if op == "Split":
                cut = [int(_attr(node, "axis", 0))]
            else:
                axes = self._ints(ins[3]) if len(ins) > 3 and ins[3] else list(range(len(data)))
                if axes is None or not all(isinstance(a, int) for a in axes):
                    return None
                cut = [int(a) for a in axes]
            out = list(data)
            for axis in cut:
                out[axis % len(data)] = None
            return out
        if op == "Reshape":
            data, shape = arg(0), self._ints(ins[1])
            if shape is None or (0 in shape and (data is None or _attr(node, "allowzero", 0))):
                return None
            return [
                None if v == -1 else (data[k] if v == 0 and data is not None and k < len(data) else v)
                for k, v in enumerate(shape)
            ]
        if op == "Expand":
            data, shape = arg(0), self._ints(ins[1])
            return None if data is None or shape is None else _broadcast(data, list(shape))
        return None


def table_axis_problem(
    table: str,
    t_dims: Sequence[Dim | None],
    x_dims: Sequence[Dim],
    proven_t: Dims | None,
    proven_x: Dims | None,
) -> str:
    """'' when ``table`` broadcasts into x's leading dims exactly as RoPECustomer does, else why not."""
    if len(t_dims) > len(x_dims):
        return f"table '{table}' has rank {len(t_dims)}, more than x's {len(x_dims)}"
    offset = len(x_dims) - len(t_dims)
    for axis in range(len(t_dims) - 1):
        t, d = t_dims[axis], x_dims[offset + axis]
        if t == 1 or t == d or (isinstance(d, int) and d >= 2 and not isinstance(t, int)):
            continue
        pt = proven_t[axis] if proven_t is not None and len(proven_t) == len(t_dims) else None
        px = proven_x[offset + axis] if proven_x is not None and len(proven_x) == len(x_dims) else d
        if pt is not None and (pt == 1 or pt == px):
            continue
        return (
            f"table '{table}' dim {axis} ({_show(t)}) is not shown to be 1 or equal to x dim "
            f"{offset + axis} ({_show(d)}): the original would broadcast x where RoPECustomer cannot"
        )
    return ""


def _show(dim: Dim | None) -> str:
    if dim is None:
        return "unknown"
    return str(dim).split(":", 1)[1] if isinstance(dim, str) and ":" in dim else str(dim)
