"""The channel algebra of one pass, memoised: sites that compute the same polynomials compute them once.

Every RoPE site of a model is the same computation on other tensors (layer 5's q and layer 6's differ
only in which tensors x, cos and sin are).  The tracer numbers each candidate's leaves from 0 in the
order it meets them (:meth:`rope_onnx.fusion.trace.Tracer.leaf`), so such sites build equal polynomials,
and with this memo the very same polynomial objects:

* a leaf grid is built once per (leaf id, width);
* ``mul`` / ``add`` / ``scale`` hand back the grid computed before from the same input polynomials;
* the proof is computed once per final grid (and order of its leaves, which picks x among ties).

Why that is sound.  A key holds the shape of each input grid and the ``id`` of every polynomial in
it, and the entry holds those input grids, so no id in a live key can be taken by another object;
polynomials are never mutated (the algebra builds new ones, and the grids handed out here are
read-only).  Equal keys therefore mean the very same input polynomials, so equal inputs, and the
functions are pure: the stored output is the output.  The grid moves of the op rules (slices,
concats, reshapes) build new arrays of the same polynomial objects, so keys see through them with no
memo of their own.  The ``nodes`` of an expression are not part of the algebra: they are joined
again on every call.  A refusal (NotRope) of the algebra is not stored: it is computed again, with
its reason.  The proof's answer, a refusal included, is a pure function of the polynomials and the
rank of their leaves (:func:`rope_onnx.fusion.prove.proof_fields`): names are put in after.

Every memo is bounded by the grid cells its entries hold (a 200k-node chain stays flat), least
recently used first out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rope_onnx.fusion import channels
from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.prove import Answer, Proof, named, proof_fields

#: Grid cells (polynomials) the entries of one pass may hold: 1024 grids of 128 channels, some
#: 50 MB at most; a model of alike sites needs a few thousand (one site's grids).
MEMO_CELLS = 1 << 17

_Key = tuple[Any, ...]


def _ids(grid: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A grid's shape and the identity of each polynomial in it, in element order."""
    return grid.shape, tuple(map(id, grid.flat))


def _frozen(grid: np.ndarray) -> np.ndarray:
    """``grid``, read-only from now on: it is shared, and a write would change other sites' values."""
    grid.flags.writeable = False
    return grid


class _Bounded:
    """A dict of at most ``cells`` grid cells (summed over its entries), least recently used out."""

    def __init__(self, cells: int) -> None:
        self._limit = cells
        self.cells = 0
        self._entries: dict[_Key, tuple[Any, int]] = {}

    def get(self, key: _Key) -> Any:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._entries[key] = entry  # the most recently used is last
        return entry[0]

    def put(self, key: _Key, value: Any, cells: int) -> None:
        if cells > self._limit // 8:
            return  # too big to be worth keeping (no RoPE head is)
        replaced = self._entries.pop(key, None)
        self.cells += cells - (replaced[1] if replaced else 0)
        self._entries[key] = (value, cells)
        while self.cells > self._limit:
            oldest = next(iter(self._entries))
            self.cells -= self._entries.pop(oldest)[1]


class Algebra:
    """:mod:`rope_onnx.fusion.channels` and the proof, memoised for one pass (see the module's text)."""

    def __init__(self, cells: int | None = None) -> None:
        self._memo = _Bounded(MEMO_CELLS if cells is None else cells)

    @property
    def cells(self) -> int:
        """Grid cells the stored entries hold now (at most the bound)."""
        return self._memo.cells

    def leaf(self, leaf_id: int, width: int) -> Expr:
        """:func:`channels.leaf`, built once per (id, width)."""
        key = ("leaf", leaf_id, width)
        value = self._memo.get(key)
        if value is None:
            value = channels.leaf(leaf_id, width)
            _frozen(value.grid)
            self._memo.put(key, value, width)
        return value

    def mul(self, a: Expr, b: Expr, nodes: frozenset[int]) -> Expr:
        """:func:`channels.mul`; the stored grid where ``a`` and ``b`` hold the same polynomials."""
        key = ("mul", *_ids(a.grid), *_ids(b.grid))
        grid = self._memo.get(key)
        if grid is None:
            value = channels.mul(a, b, nodes)
            self._memo.put(key, (_frozen(value.grid), a.grid, b.grid), 3 * value.grid.size)
            return value
        return Expr(grid[0], a.nodes | b.nodes | nodes)

    def add(self, a: Expr, b: Expr, sign: float, nodes: frozenset[int]) -> Expr:
        """:func:`channels.add`; the stored grid where ``a`` and ``b`` hold the same polynomials."""
        key = ("add", sign, *_ids(a.grid), *_ids(b.grid))
        grid = self._memo.get(key)
        if grid is None:
            value = channels.add(a, b, sign, nodes)
            self._memo.put(key, (_frozen(value.grid), a.grid, b.grid), 3 * value.grid.size)
            return value
        return Expr(grid[0], a.nodes | b.nodes | nodes)

    def scale(self, expr: Expr, factor: float, nodes: frozenset[int]) -> Expr:
        """:func:`channels.scale`; a negation is stored (±1 is all it follows, 1 moves nothing)."""
        if factor != -1.0:
            return channels.scale(expr, factor, nodes)
        key = ("neg", *_ids(expr.grid))
        grid = self._memo.get(key)
        if grid is None:
            value = channels.scale(expr, factor, nodes)
            self._memo.put(key, (_frozen(value.grid), expr.grid), 2 * value.grid.size)
            return value
        return expr.with_grid(grid[0], nodes)

    def prove(self, expr: Expr, leaf_names: Sequence[str], order: Mapping[str, int]) -> Proof:
        """:func:`rope_onnx.fusion.prove.prove` of the leaves ``leaf_names`` (by leaf id), its answer
        (or reason) stored per grid and rank.

        ``order`` ranks the tensors as the pass first met them: x is tried among tied leaves in that
        order, as when leaf ids were the pass's.  The rank is that order alone (0, 1, ...), so alike
        sites ask the same question whatever the pass met before them."""
        met = [order[name] for name in leaf_names]
        rank = [0] * len(met)
        for position, leaf_id in enumerate(sorted(range(len(met)), key=met.__getitem__)):
            rank[leaf_id] = position
        key = ("prove", *_ids(expr.grid), tuple(rank))
        stored = self._memo.get(key)
        if stored is None:
            try:
                answer: Answer | str = proof_fields(expr, rank)
            except NotRope as why:
                answer = str(why)
            self._memo.put(key, (answer, expr.grid), expr.grid.size)
        else:
            answer = stored[0]
        if isinstance(answer, str):
            raise NotRope(answer)
        return named(answer, leaf_names)
