"""Prove that a full-width cos/sin table repeats its halves (or its pairs), channel for channel.

ONNX Runtime's rotary ops take HALF-width caches: one value per rotated pair.  RoPECustomer takes the table
as the site reads it, so a full-width table `t` may be handed over as half of itself only if the graph shows
`t[..., i] == t[..., j]` for every pair (i, j) the op rotates together (i and i + R/2 for rotate_half, 2i
and 2i + 1 interleaved) — at every position, for every input.  Tables fed as graph inputs cannot show it.

The proof gives each element of the table's trailing block (the last k axes, static sizes) a *token*: a
hashable description of how its value was computed, with the invariant that two positions of the block
holding equal tokens hold equal values at every leading index.  Graph inputs and unknown ops are leaves
(a distinct token per position); constants are compared by value; elementwise ops combine their operands'
tokens; Concat, Slice, Split, Gather (constant indices), Unsqueeze, Squeeze, Expand, Transpose and
Reshape move tokens around (a Reshape only when the block's element count lines up with static dims).
Ops on leading axes (positions, batch) keep the tokens: they move whole blocks.  `Cos(Concat(f, f))`
therefore proves `t[c] == t[c + W/2]` for every c, and the stacked repeat-interleave of GPT-J's tables
(`Reshape(Concat(Unsqueeze(f, -1), Unsqueeze(f, -1)))`) proves `t[2i] == t[2i + 1]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import NodeProto

from rope_onnx.fusion.ops.repeat_tokens import (
    BINARY,
    MAX_DEPTH,
    UNARY,
    _map,
    _zip,
    last_dim_dims,
)
from rope_onnx.graph.attributes import attr_int, attr_ints
from rope_onnx.graph.index import GraphIndex

MAX_BLOCK = 1 << 14  # elements of the trailing block a token array may hold


class _Unknown(Exception):
    pass


class RepeatProver:
    """Tokens of a tensor's trailing block, memoised per (tensor, k) for all sites of one model."""

    def __init__(self, index: GraphIndex) -> None:
        self.index = index
        self._memo: dict[tuple[str, int], np.ndarray] = {}

    # ------------------------------------------------------------------ public
    def repeats(self, table: str, pairs: Sequence[tuple[int, int]]) -> str:
        """'' when every pair (i, j) of table channels is proven equal, else the reason it is not."""
        need = [(i, j) for i, j in pairs if i != j]
        if not need:
            return ""
        if table in self.index.graph_inputs and table not in self.index.initializers:
            return f"table '{table}' is a graph input: its channels cannot be proven to repeat"
        tokens = self.tokens(table, 1)
        if tokens is None:
            return f"table '{table}': its channel width is not static, so its repeats cannot be proven"
        for i, j in need:
            if max(i, j) >= tokens.shape[-1] or tokens[..., i].item() != tokens[..., j].item():
                return (
                    f"table '{table}': channels {i} and {j} are not proven equal (the op takes half caches)"
                )
        return ""

    def tokens(self, name: str, k: int) -> np.ndarray | None:
        try:
            return self._tokens(name, k, 0)
        except (_Unknown, ValueError, IndexError, RecursionError):
            return None

    # ------------------------------------------------------------------ helpers
    def _dims(self, name: str) -> list | None:
        return last_dim_dims(self.index, name)

    def _block(self, name: str, k: int) -> tuple[int, ...]:
        dims = self._dims(name)
        if dims is None or len(dims) < k:
            raise _Unknown(name)
        block = dims[len(dims) - k :]
        if not all(isinstance(d, int) for d in block) or int(np.prod(block, dtype=np.int64)) > MAX_BLOCK:
            raise _Unknown(name)
        return tuple(int(d) for d in block)

    def _leaf(self, name: str, k: int) -> np.ndarray:
        shape = self._block(name, k)
        out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=object)
        for p in range(out.size):
            out[p] = ("leaf", name, p)
        return out.reshape(shape)

    def _const(self, value: np.ndarray, k: int) -> np.ndarray:
        if value.ndim < k:
            value = value.reshape((1,) * (k - value.ndim) + value.shape)
        shape = value.shape[value.ndim - k :]
        flat = value.reshape(-1, *shape) if value.ndim > k else value.reshape(1, *shape)
        out = np.empty(shape, dtype=object)
        for pos in np.ndindex(*shape):
            column = np.ascontiguousarray(flat[(slice(None), *pos)])
            out[pos] = ("const", str(column.dtype), column.tobytes())
        return out

    def _ints(self, name: str) -> list[int]:
        value = self.index.constant(name) if name else None
        if value is None:
            raise _Unknown(name)
        return [int(v) for v in np.asarray(value).reshape(-1)]

    def _tokens(self, name: str, k: int, depth: int) -> np.ndarray:
        key = (name, k)
        if key in self._memo:
            return self._memo[key]
        if depth > MAX_DEPTH:
            raise _Unknown(name)
        value = self.index.constant(name)
        if value is not None:
            result = self._const(np.asarray(value), k)
        else:
            node = self.index.node_of(name)
            result = self._leaf(name, k) if node is None else self._op(node, name, k, depth + 1)
        self._memo[key] = result
        return result

    # ------------------------------------------------------------------ ops
    def _op(self, node: NodeProto, out: str, k: int, depth: int) -> np.ndarray:
        op, rank = node.op_type, self.index.rank(out)
        if node.domain not in ("", "ai.onnx") or rank is None or rank < k:
            return self._leaf(out, k)
        t = lambda n, kk=k: self._tokens(n, kk, depth)  # noqa: E731
        inside = lambda axis: axis % rank >= rank - k  # noqa: E731  (an axis of the trailing block)
        if op in UNARY:
            tag = (op, repr(sorted((a.name, str(a)) for a in node.attribute)))
            return _map(lambda v: (tag, v), t(node.input[0]))
        if op in BINARY:
            a, b = (self._operand(n, k, depth) for n in node.input[:2])
            shape = self._block(out, k)
            a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
            return _zip(lambda x, y: (op, x, y), a, b)
        if op == "Concat":
            axis = attr_int(node, "axis", 0)
            parts = [t(n) for n in node.input if n]
            if inside(axis):
                return np.concatenate(parts, axis=axis % rank - (rank - k))
            return _zip(lambda *v: ("rows", *v), *parts) if len(parts) > 1 else parts[0]
        if op in ("Slice", "Split", "Gather"):
            return self._select(node, out, k, depth, rank)
        if op == "Unsqueeze":
            axes = attr_ints(node, "axes")
            axes = [int(a) % rank for a in (axes if axes is not None else self._ints(node.input[1]))]
            inner = [a - (rank - k) for a in sorted(axes) if a >= rank - k]
            src = t(node.input[0], k - len(inner))
            for local in inner:
                src = np.expand_dims(src, local)
            return src
        if op == "Squeeze":
            axes = attr_ints(node, "axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                axes = self._ints(node.input[1])
            in_rank = self.index.rank(node.input[0])
            if axes is None or in_rank is None:
                raise _Unknown(out)
            axes = sorted(int(a) % in_rank for a in axes)
            kept = [a for a in range(in_rank) if a not in axes]
            first = kept[len(kept) - k] if k else in_rank
            src = t(node.input[0], in_rank - first)
            drop = tuple(a - first for a in axes if a >= first)
            return np.squeeze(src, axis=drop) if drop else src
        if op == "Expand":
            src = t(node.input[0], min(k, self.index.rank(node.input[0]) or 0))
            src = src.reshape((1,) * (k - src.ndim) + src.shape)
            return np.broadcast_to(src, self._block(out, k))
        if op == "Transpose":
            perm = attr_ints(node, "perm")
            if perm is None or list(perm[rank - k :]) != list(range(rank - k, rank)):
                return self._leaf(out, k)
            return t(node.input[0])
        if op == "Reshape":
            return self._reshape(node, out, k, depth)
        if op == "GatherND":
            m = (self.index.dims(node.input[1]) or ["?"])[-1]
            data_rank = self.index.rank(node.input[0])
            if attr_int(node, "batch_dims", 0) or not isinstance(m, int) or data_rank is None:
                return self._leaf(out, k)
            if m <= data_rank - k:
                return t(node.input[0])
            return self._leaf(out, k)
        return self._leaf(out, k)

    def _operand(self, name: str, k: int, depth: int) -> np.ndarray:
        r = self.index.rank(name)
        if r is None:
            raise _Unknown(name)
        src = self._tokens(name, min(k, r), depth)
        return src.reshape((1,) * (k - src.ndim) + src.shape)

    def _select(self, node: NodeProto, out: str, k: int, depth: int, rank: int) -> np.ndarray:
        op = node.op_type
        data_rank = self.index.rank(node.input[0])
        if data_rank is None:
            raise _Unknown(out)
        if op == "Gather":
            axis = attr_int(node, "axis", 0) % data_rank
            if axis < data_rank - k:  # rows picked by data-dependent indices: blocks move whole
                idx_rank = self.index.rank(node.input[1])
                if idx_rank is None or data_rank - axis - 1 < k:
                    raise _Unknown(out)
                return self._tokens(node.input[0], k, depth)
            src = self._tokens(node.input[0], data_rank - axis, depth)
            indices = self.index.constant(node.input[1])
            if indices is None or np.asarray(indices).ndim != 1 or data_rank - axis != k:
                raise _Unknown(out)
            return np.take(src, np.asarray(indices, np.int64), axis=0)
        if op == "Split":
            axis = attr_int(node, "axis", 0) % data_rank
            dims = self.index.dims(node.input[0]) or []
            if axis < data_rank - k:
                return self._tokens(node.input[0], k, depth)
            src = self._tokens(node.input[0], k, depth)
            sizes = attr_ints(node, "split")
            if sizes is None:
                sizes = self._ints(node.input[1]) if len(node.input) > 1 and node.input[1] else None
            if sizes is None:
                n = len(node.output)
                total = dims[axis]
                if not isinstance(total, int) or total % n:
                    raise _Unknown(out)
                sizes = [total // n] * n
            bounds = np.cumsum([0, *sizes])
            which = list(node.output).index(out)
            local = axis - (data_rank - k)
            return np.take(src, np.arange(bounds[which], bounds[which + 1]), axis=local)
        # Slice (opset >= 10: inputs)
        starts, ends = self._ints(node.input[1]), self._ints(node.input[2])
        axes = (
            self._ints(node.input[3]) if len(node.input) > 3 and node.input[3] else list(range(len(starts)))
        )
        steps = self._ints(node.input[4]) if len(node.input) > 4 and node.input[4] else [1] * len(starts)
        src = self._tokens(node.input[0], k, depth)
        for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
            a %= data_rank
            if a < data_rank - k:
                continue
            local = a - (data_rank - k)
            src = src[(slice(None),) * local + (slice(s, e, st),)]
        return src

    def _reshape(self, node: NodeProto, out: str, k: int, depth: int) -> np.ndarray:
        out_dims, in_dims = self._dims(out), self._dims(node.input[0])
        if out_dims is None or in_dims is None:
            raise _Unknown(out)
        block = self._block(out, k)
        size = int(np.prod(block, dtype=np.int64))
        count = 1
        for kin in range(1, len(in_dims) + 1):
            d = in_dims[-kin]
            if not isinstance(d, int):
                break
            count *= d
            if count == size:
                return self._tokens(node.input[0], kin, depth).reshape(block)
            if count > size:
                break
        return self._leaf(out, k)
