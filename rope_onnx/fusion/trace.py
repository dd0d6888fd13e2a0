"""Symbolic execution of a candidate site, backwards from its output, on the channel axes.

:class:`Tracer` turns a tensor into an :class:`~rope_onnx.fusion.channels.Expr` by evaluating its
producer with the ``trace`` member of its op's rule (:mod:`rope_onnx.fusion.ops`).  Each rule states
what the op does to channels and refuses (``NotRope``) what it cannot model exactly — data-dependent
bounds, a slice on a non-channel axis, a reshape that might move leading dims.  At a channel width of
one axis (k = 1), a refusal is not fatal: the tensor becomes a *leaf*, an input of the site (that is
how x and the cos/sin tables are found, wherever the exporter put Casts, Unsqueezes or Gathers before
them); the reason is kept as a note, so a skipped candidate reports why its proof did not go through.
"""

from __future__ import annotations

from dataclasses import replace

from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, NotRope, Scalar
from rope_onnx.fusion.memo import Algebra
from rope_onnx.fusion.ops.base import Value
from rope_onnx.fusion.ops.registry import fold_ints, rule_for
from rope_onnx.fusion.ops.reshape import View, view_dims
from rope_onnx.fusion.reach import MAX_DEPTH, band_floor, cone_facts
from rope_onnx.fusion.shapes import KeptDims, infer_rank, infer_width
from rope_onnx.graph.attributes import attr_ints
from rope_onnx.graph.folding import FoldMemo, IntValue, NotStatic
from rope_onnx.graph.index import Dim, GraphIndex

#: Maximum nodes one candidate may visit: RoPE sites have 7-60; this bounds pathological graphs.
NODE_BUDGET = 400
#: Widest tensor followed channel by channel (hidden sizes reach 16k; a head is <= 1024).
MAX_LEAF_WIDTH = 1 << 16


class BudgetExceeded(Exception):
    """The candidate grew beyond :data:`NODE_BUDGET` nodes: not a RoPE site."""


class Tracer:
    """Evaluates tensors of one graph as channel expressions, one candidate at a time.

    Tensors that settle as plain leaves at k = 1 (a linear mix of inputs, a refused op) are
    remembered for the whole pass, with the refusals noted behind them: candidates share such
    cones (every residual Add of a model whose hidden size is head-sized reaches back through
    the whole residual stream), and re-tracing them per candidate made the pass quadratic in
    the number of layers.  A leaf whose cone hit :data:`MAX_DEPTH` depends on the path that
    reached it and is not remembered.  A candidate whose traced level is :data:`MAX_DEPTH` or more
    is followed only within its band of levels (``reach.band_floor``): the cone of every tensor in
    it then ends at the same inputs for every candidate of the band, so its leaves are shared.
    """

    def __init__(self, index: GraphIndex, levels: dict[str, int] | None = None) -> None:
        self.index = index
        self.levels = levels  # traced levels (reach.cone_facts), computed for the first candidate
        self.floor = 0  # tensors of a lower traced level are the candidate's inputs (reach.band_floor)
        self._by_floor: dict[int, tuple[dict[str, frozenset[str]], dict[str, str]]] = {}
        self.leaf_names: list[str] = []  # every leaf of the pass, first met first
        self.leaf_ids: dict[str, int] = {}  # leaf -> its place in leaf_names (the proof's tie order)
        self.algebra = Algebra()  # the channel algebra and the proof, memoised (fusion.memo)
        #: Ranks shape inference could not give: proven by a trace rule (a static If) or by rank rules.
        self._rank_hints: dict[str, int | None] = {}
        self._widths: dict[str, int | None] = {}
        self._kept = KeptDims(index, self.known_rank, self.width)  # kept_dims, remembered for the pass
        self._settled: dict[str, frozenset[str]] = {}  # this floor's k = 1 plain leaves -> notes in cone
        self._reasons: dict[str, str] = {}  # every note made at this floor (tensor -> why it became a leaf)
        self._open: list[tuple[set[str], list[bool]]] = []  # per open evaluation: noted names, depth hit
        self.views: dict[str, View] = {}  # leaves the rewrite would create (fusion.ops.reshape.View)
        #: Let exact widening Casts (fp16 -> fp32) through: only for a site that ends in one rounding
        #: Cast back (see candidates.rounded_site); elsewhere a widened input is a float32 input.
        self.widen = False
        self.use_views = False  # let Reshapes be followed through views (fusion.ops.reshape.View)
        #: Why the last candidate could not be traced (for the report of a RoPE look-alike).
        self.stopped = ""
        self.reset()

    def reset(self, candidate: str | None = None) -> None:
        """Forget per-candidate state (memo, notes, budget, leaf ids): ``candidate`` picks a band.
        Leaf ids are the candidate's, 0, 1, ... as met: alike sites build equal polynomials (fusion.memo)."""
        if candidate is not None and self.levels is None:
            self.levels = cone_facts(self.index)[1]
        self.floor = band_floor(self.levels.get(candidate, 0)) if candidate is not None and self.levels else 0
        self._settled, self._reasons = self._by_floor.setdefault(self.floor, ({}, {}))
        self.site_leaves: list[str] = []  # this candidate's leaves: leaf id -> tensor
        self._leaves: dict[str, Expr] = {}  # and back, to the leaf Expr
        self._leaf_of: dict[int, str] = {}  # id of a leaf Expr -> its tensor (kept alive by _leaves)
        self._memo: dict[tuple[str, int], Value] = {}
        self._folds: FoldMemo = {}  # integers folded for this candidate (graph.folding checks reuse)
        self.notes: dict[str, str] = {}
        #: Tensors the site reads only where they are proven to be channels of another input.
        self.aliases: set[str] = set()
        self._visits = 0
        self._depth = 0
        self.could_view = False  # a Reshape refused where a view would have followed it
        self._open = [(set(), [False])]

    # ------------------------------------------------------------------ evaluation
    def eval(self, name: str, k: int) -> Value:
        key = (name, k)
        if key in self._memo:
            return self._memo[key]
        if (
            k == 1 and name in self._settled and not (self.widen or self.use_views)
        ):  # an earlier candidate's leaf, same notes
            settled = self._settled[name]
            self._open[-1][0].update(settled)
            self.notes.update((n, self._reasons[n]) for n in settled)
            self._memo[key] = self.leaf(name)
            return self._memo[key]
        self._visits += 1
        if self._visits > NODE_BUDGET:
            raise BudgetExceeded(name)
        if self._depth >= MAX_DEPTH:  # the caller makes this tensor a leaf (k = 1) or gives up
            self._open[-1][1][0] = True
            raise NotRope(f"'{name}' is more than {MAX_DEPTH} nodes behind the candidate's output")
        self._depth += 1
        self._open.append((set(), [False]))
        try:
            value = self._eval(name, k)
            mixed = isinstance(value, Expr) and k == 1 and self.leaf_name(value) is None  # plain leaf: no
            if mixed and isinstance(value, Expr) and value.mixes_leaves():
                value = self.leaf(name)  # a linear mix of several tensors is an input, not a rotation
        finally:
            self._depth -= 1
            noted, deep = self._open.pop()
            self._open[-1][0].update(noted)
            self._open[-1][1][0] |= deep[0]
        self._memo[key] = value
        if k == 1 and not deep[0] and not self.use_views and value is self._leaves.get(name):
            self._settled[name] = frozenset(noted)
        return value

    def _eval(self, name: str, k: int) -> Value:
        scalar = self.scalar(name)
        if scalar is not None:
            return scalar
        node_id = self.index.producer.get(name)
        node = None if node_id is None else self.index.nodes[node_id]
        rule = None if node is None else rule_for(node.op_type, node.domain)
        if node is None or node_id is None or rule is None or rule.trace is None:
            if k == 1:
                return self.leaf(name)
            raise NotRope(f"'{name}' is not produced by a channel op the proof can follow")
        try:
            if self.floor and 0 < (self.levels or {}).get(name, 0) < self.floor:  # a deep cone's input
                raise NotRope(f"'{name}' is below the band of traced levels its deep candidate follows")
            value = rule.trace(self, node, name, k)
        except NotRope as why:
            if k != 1:
                raise
            self.notes[name] = self._reasons[name] = str(why)
            self._open[-1][0].add(name)
            return self.leaf(name)
        mine = frozenset({node_id})  # the tracer, not the rule, records which node computed the value
        return (
            replace(value, nodes=value.nodes | mine)
            if isinstance(value, Scalar)
            else value.with_grid(value.grid, mine)
        )

    def scalar(self, name: str) -> Scalar | None:
        value = self.index.constant(name)
        if value is None:
            return None
        flat = value.reshape(-1)
        if flat.size == 0 or ((value.ndim > 1 or flat.size > 1) and not (flat == -1).all()):
            return None  # a rank-0 or [1] constant, or a sign tensor of -1 ([1,1,1,1]): else a table
        producer = self.index.producer.get(name)
        used = frozenset() if producer is None else frozenset({producer})
        return Scalar(float(flat[0]), used, tuple(int(d) for d in value.shape))

    def width(self, name: str) -> int | None:
        """The static last dim of ``name``: inferred, or by op rules where inference gave up."""
        if name not in self._widths:
            self._widths[name] = None  # guards against cycles while the rule recurses
            self._widths[name] = infer_width(self.index, name, self.width, self.known_rank)
        return self._widths[name]

    def leaf(self, name: str) -> Expr:
        """``name`` as an input of the site, of leaf id 0, 1, ... as this candidate meets its leaves."""
        if name in self._leaves:
            return self._leaves[name]
        width = self.width(name)
        if width is None:
            raise NotRope(f"the channel width of '{name}' is not statically known")
        if width > MAX_LEAF_WIDTH:
            raise NotRope(f"'{name}' has {width} channels, far more than any head or hidden state")
        if name not in self.leaf_ids:
            self.leaf_ids[name] = len(self.leaf_names)
            self.leaf_names.append(name)
        self._leaves[name] = value = self.algebra.leaf(len(self.site_leaves), width)
        self.site_leaves.append(name)
        self._leaf_of[id(value)] = name
        return value

    def view(self, view: View, refusal: str) -> Expr:
        """``view`` as a leaf (its source an alias) where this attempt may use views, else NotRope(refusal):
        candidates retry with views only where the plain attempt failed (graph tensors are better inputs)."""
        self.could_view = True
        if not self.use_views:
            raise NotRope(refusal)
        self.views[view.name], self._widths[view.name] = view, view.width
        self.aliases.add(view.source)
        return self.leaf(view.name)

    def leaf_name(self, value: Value) -> str | None:
        """The tensor ``value`` is the plain leaf of (the very Expr :meth:`leaf` built), else None."""
        return self._leaf_of.get(id(value)) if isinstance(value, Expr) else None

    def known_dims(self, name: str) -> list[int] | None:
        """Trailing dims of ``name`` as this candidate computed them (its channel grid), if any."""
        for k in (2, 1):
            value = self._memo.get((name, k))
            if isinstance(value, Expr):
                return list(value.grid.shape)
        return None

    def find_window(self, name: str, offset: int, width: int) -> str | None:
        """A tensor this candidate computed that is exactly ``name[..., offset:offset + width]``.

        NeoX-style exports slice q out of a fused qkv tensor; the fused node should read that q,
        an existing tensor of the original graph, rather than a new slice of qkv.
        """
        leaf_id = self.site_leaves.index(name) if name in self._leaves else None
        return self.find_tensor([{((leaf_id, offset + j),): 1.0} for j in range(width)])

    def find_tensor(self, want: list) -> str | None:
        """A tensor this candidate computed (one channel axis) whose channels are exactly ``want``."""
        found = (t for (t, k), v in sorted(self._memo.items()) if k == 1 and isinstance(v, Expr) and v.k == 1)
        return next((t for t in found if list(self.expr(t, 1).grid) == want), None)

    # ------------------------------------------------------------------ the TraceContext of the op rules
    def known_rank(self, name: str) -> int | None:
        """From shape inference, a handler's proof, or the op's rank rule (memoised)."""
        rank = self.index.rank(name)
        if rank is None and name not in self._rank_hints:
            self._rank_hints[name] = None  # guards against cycles while the rule recurses
            self._rank_hints[name] = infer_rank(self.index, name, self.known_rank)
        return rank if rank is not None else self._rank_hints[name]

    def prove_rank(self, name: str, rank: int) -> None:
        """A trace rule proved ``name``'s rank (a static If's branch); later rank questions use it."""
        self._rank_hints[name] = rank

    def fold(self, name: str) -> IntValue:
        """``name`` folded to integers, with the channel widths this candidate computed as hints."""
        return fold_ints(self.index, name, self.dims, self._folds)

    def dims(self, name: str) -> list[Dim] | None:
        """Shape of ``name``: inferred dims, or one symbol per axis when only the rank is known,
        with the trailing dims replaced by the channel grid this candidate computed."""
        if name in self.views:
            return view_dims(self.views[name], self.fold, self.dims)
        dims = self.index.dims(name)
        if dims is None:
            rank = self.known_rank(name)
            if rank is None:
                return None
            dims = [f"dim:{name}:{axis}" for axis in range(rank)]
        dims = self._kept(name, dims)
        known = self.known_dims(name)
        if known and len(known) <= len(dims):
            dims = [*dims[: len(dims) - len(known)], *known]
        elif dims and not isinstance(dims[-1], int):
            width = self.width(name)  # the graph determines it (a Reshape target ending in 16, …)
            if width is not None:
                dims = [*dims[:-1], width]
        return dims

    def leaf_dims(self, name: str) -> list[Dim] | None:
        """Shape of a site input as the proof uses it: its dims with the static width it proved."""
        dims = self.dims(name)
        width = self.width(name)
        return None if dims is None else [*dims[:-1], width if width is not None else dims[-1]]

    def rank(self, name: str) -> int:
        rank = self.known_rank(name)
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
                folded = self.fold(node.input[position])
                return folded.ints(), folded.nodes
            except NotStatic as why:
                raise NotRope(f"{node.op_type} node '{node.name}': {why}") from why
        listed = attr_ints(node, attribute) if attribute is not None else None
        if listed is not None:
            return listed, frozenset()
        raise NotRope(f"{node.op_type} node '{node.name}' has no static '{attribute or position}'")
