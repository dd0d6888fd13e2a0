"""Symbolic execution of a candidate site, backwards from its output, on the channel axes.

:class:`Tracer` turns a tensor into an :class:`~rope_onnx.channels.Expr` by evaluating its producer
with one small handler per op type.  Each handler states what the op does to channels and refuses
(``NotRope``) what it cannot model exactly — data-dependent bounds, a slice on a non-channel axis, a
reshape that might move leading dims.  At a channel width of one axis (k = 1), a refusal is not
fatal: the tensor simply becomes a *leaf*, an input of the site (that is how x and the cos/sin
tables are found, wherever the exporter put Casts, Unsqueezes or Gathers before them).  The reason
is kept as a note, so a skipped candidate reports why its proof did not go through.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from .channels import Expr, NotRope, Scalar, leaf
from .graph_index import GraphIndex, attr
from .handlers import HANDLERS
from .symbolic import NotStatic, int_values

#: Maximum nodes one candidate may visit: RoPE sites have 7-40; this bounds pathological graphs.
NODE_BUDGET = 400


class BudgetExceeded(Exception):
    """The candidate grew beyond :data:`NODE_BUDGET` nodes: not a RoPE site."""


Value = Expr | Scalar


class Tracer:
    """Evaluates tensors of one graph as channel expressions, one candidate at a time.

    A tensor's expression depends only on the graph, so completed evaluations are memoised for
    the whole pass, not per candidate: candidates share cones (every residual Add of a model
    whose hidden size is head-sized reaches back through the whole residual stream), and
    re-evaluating them per candidate made the pass quadratic in the number of layers.  Each
    memo entry keeps the names noted (refused at k = 1) in its cone, so a candidate still
    reports every refusal behind it; the node budget counts the evaluations a candidate adds.
    """

    def __init__(self, index: GraphIndex) -> None:
        self.index = index
        self.leaf_names: list[str] = []
        self._leaf_ids: dict[str, int] = {}
        self._leaves: dict[str, Expr] = {}
        self._leaf_of: dict[int, str] = {}  # id of a cached leaf Expr -> its tensor (kept alive by _leaves)
        self._memo: dict[tuple[str, int], tuple[Value, frozenset[str]]] = {}
        self._reasons: dict[str, str] = {}  # why a tensor became a leaf (k = 1 refusals)
        self._noted: list[set[str]] = [set()]  # per open evaluation: noted names in its cone
        self.reset()

    def reset(self) -> None:
        """Start a candidate: forget its notes and budget (memo and leaf ids stay)."""
        self._noted = [set()]
        self._visits = 0

    @property
    def notes(self) -> dict[str, str]:
        """Refusals in the current candidate's cone: tensor -> why it was not followed."""
        return {name: self._reasons[name] for name in self._noted[0]}

    # ------------------------------------------------------------------ evaluation
    def eval(self, name: str, k: int) -> Value:
        key = (name, k)
        if key in self._memo:
            value, noted = self._memo[key]
            self._noted[-1].update(noted)
            return value
        self._visits += 1
        if self._visits > NODE_BUDGET:
            raise BudgetExceeded(name)
        self._noted.append(set())
        try:
            value = self._eval(name, k)
            if isinstance(value, Expr) and k == 1 and value.degree() <= 1 and len(value.leaves()) > 1:
                value = self.leaf(name)  # a linear mix of several tensors is an input, not a rotation
        finally:
            noted = self._noted.pop()
            self._noted[-1].update(noted)
        self._memo[key] = (value, frozenset(noted))
        return value

    def _eval(self, name: str, k: int) -> Value:
        scalar = self.scalar(name)
        if scalar is not None:
            return scalar
        node_id = self.index.producer.get(name)
        node = None if node_id is None else self.index.nodes[node_id]
        handler = HANDLERS.get(node.op_type) if node is not None and node.domain in ("", "ai.onnx") else None
        if handler is None:
            if k == 1:
                return self.leaf(name)
            raise NotRope(f"'{name}' is not produced by a channel op the proof can follow")
        try:
            return handler(self, node, node_id, name, k)
        except NotRope as why:
            if k != 1:
                raise
            self._reasons[name] = str(why)
            self._noted[-1].add(name)
            return self.leaf(name)

    def scalar(self, name: str) -> Scalar | None:
        value = self.index.constant(name)
        if value is None or value.size == 0 or not np.all(value == value.reshape(-1)[0]):
            return None
        if value.size > 1 and any(d != 1 for d in value.shape):
            return None
        producer = self.index.producer.get(name)
        return Scalar(float(value.reshape(-1)[0]), frozenset() if producer is None else frozenset({producer}))

    def leaf(self, name: str) -> Expr:
        """``name`` as an input of the site; built once (a hidden-size leaf is 1000+ polynomials)."""
        if name in self._leaves:
            return self._leaves[name]
        dims = self.index.dims(name)
        if not dims or not isinstance(dims[-1], int):
            raise NotRope(f"the channel width of '{name}' is not statically known")
        if name not in self._leaf_ids:
            self._leaf_ids[name] = len(self.leaf_names)
            self.leaf_names.append(name)
        self._leaves[name] = leaf(self._leaf_ids[name], dims[-1])
        self._leaf_of[id(self._leaves[name])] = name
        return self._leaves[name]

    def leaf_name(self, value: Value) -> str | None:
        """The tensor ``value`` is the plain leaf of (the very Expr :meth:`leaf` built), else None."""
        return self._leaf_of.get(id(value)) if isinstance(value, Expr) else None

    # ------------------------------------------------------------------ helpers for handlers
    def rank(self, name: str) -> int:
        rank = self.index.rank(name)
        if rank is None:
            raise NotRope(f"the rank of '{name}' is not known")
        return rank

    def expr(self, name: str, k: int) -> Expr:
        value = self.eval(name, k)
        if isinstance(value, Scalar):
            raise NotRope(f"'{name}' is a constant where a channel tensor is expected")
        return value

    def ints(
        self, node: NodeProto, position: int, attribute: str | None = None
    ) -> tuple[list[int], frozenset]:
        """A static int list from an input (or, for old opsets, an attribute) of ``node``."""
        if position < len(node.input) and node.input[position]:
            try:
                folded = int_values(self.index, node.input[position])
                return folded.ints(), folded.nodes
            except NotStatic as why:
                raise NotRope(f"{node.op_type} node '{node.name}': {why}") from why
        if attribute is not None and attr(node, attribute) is not None:
            value = attr(node, attribute)
            return (list(value) if isinstance(value, list) else [int(value)]), frozenset()
        raise NotRope(f"{node.op_type} node '{node.name}' has no static '{attribute or position}'")
