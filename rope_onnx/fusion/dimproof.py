"""Per-axis proof that a fused node broadcasts its tables exactly as the original graph did.

``x * cos`` in the original broadcasts by NumPy rules: its output has, on each axis, the larger
of the two dims.  ``RoPECustomer`` always returns x's shape.  The two agree on every input the
original accepts exactly when no axis has x's dim 1 and the table's dim other than 1 — the one
broadcast RoPECustomer cannot do (see :func:`table_axis_problem` for the rule).

Shape inference names unknown dims freshly (TorchScript's tables get ``unk__0`` where x has
``seq``; onnxsim and ONNX Runtime rename them again; ops of other domains stop it), so
:class:`DimProver` names each dim by its source instead (:mod:`rope_onnx.fusion.ops.dimnames`):
a static size, a declared graph-input ``dim_param``, a ``Shape`` read (resolved to the proven dim
it reads), or ``Min(C, s)`` for a cache sliced to a run-time length.  What each op does to dims is
its rule's ``dims`` member (:mod:`rope_onnx.fusion.ops`); the prover only walks the graph.
Anything no rule shows is a refusal: a table dim that is merely *another symbol* could be 5 where
x's is 1, and the original's output would have 5 rows where RoPECustomer's has one.
"""

from __future__ import annotations

from collections.abc import Sequence

from rope_onnx.fusion.ops.base import DimsContext
from rope_onnx.fusion.ops.dimnames import SourceDims, at_least_one_when_positive, show_dim
from rope_onnx.fusion.ops.registry import dims_rule_for, fold_ints
from rope_onnx.graph.folding import IntValue, NotStatic
from rope_onnx.graph.index import Dim, GraphIndex

__all__ = ["DimProver", "table_axis_problem"]


class DimProver:
    """Source-named dims of the tensors of one graph (memoised for the whole pass).

    A tensor's dims are computed after those of everything it is computed from, in one walk of its
    ancestors (no recursion depth: x of the last layer reaches back through every layer above).
    """

    def __init__(self, index: GraphIndex) -> None:
        self.index = index
        self._memo: dict[str, SourceDims | None] = {}
        self._context = DimsContext(index, self._proven, self._fold)

    def dims(self, name: str) -> SourceDims | None:
        """The dims of ``name``: static sizes inference knows, else what the op rules prove."""
        if name not in self._memo:
            for tensor in self._ancestors(name):
                if tensor not in self._memo:  # each tensor's rule runs once per pass
                    self._memo[tensor] = None  # a cycle guard (a valid graph has none)
                    self._memo[tensor] = self._merge(tensor, self._rule(tensor))
        return self._memo[name]

    def _ancestors(self, name: str) -> list[str]:
        """``name`` and every tensor it is computed from that has no dims yet, inputs first (a
        post-order walk: a tensor is listed after all of its inputs, however many paths reach it)."""
        order: list[str] = []
        visited: set[str] = set()
        stack = [(name, False)]
        while stack:
            tensor, expanded = stack.pop()
            if expanded:
                order.append(tensor)
                continue
            if tensor in visited or tensor in self._memo:
                continue
            visited.add(tensor)
            settled = self._settled(tensor)
            if settled is not None:  # inference already names every dim: nothing above it is needed
                self._memo[tensor] = settled
                continue
            stack.append((tensor, True))
            node_id = self.index.producer.get(tensor)
            if node_id is None:
                continue
            stack.extend(
                (s, False) for s in self.index.inputs[node_id] if s not in visited and s not in self._memo
            )
        return order

    def _settled(self, name: str) -> SourceDims | None:
        """The index's dims when each is a static size or a model-declared symbol that inference
        (not a declaration alone) gave: what the rules would only confirm, so the walk stops there —
        without it x of the last layer re-derives the dims of every layer above (a 70B graph: 1 s)."""
        dims = self.index.dims(name)
        if dims is None or self.index.claimed_axes(name):
            return None
        if all(isinstance(d, int) or d.startswith("param:") for d in dims):
            return list(dims)
        return None

    def _proven(self, name: str) -> SourceDims | None:
        return self.dims(name)

    def _hint(self, name: str) -> list[Dim] | None:
        """``Shape(name)`` as folding reads it: the proven dims (every entry named, see _merge)."""
        dims = self.dims(name)
        return None if dims is None else [d for d in dims if d is not None]

    def _fold(self, name: str) -> IntValue:
        return fold_ints(self.index, name, self._hint)

    def _rule(self, name: str) -> SourceDims | None:
        node = self.index.node_of(name)
        rule = None if node is None else dims_rule_for(node)
        if node is None or rule is None:
            return None
        try:
            return rule(self._context, node, name)
        except NotStatic:
            return None

    def _merge(self, name: str, proven: SourceDims | None) -> SourceDims | None:
        """Static sizes inference knows win over names, but what the graph computes wins over a
        different static size (the caller shows the contradiction).  An axis only a declaration sizes
        (``GraphIndex.claimed_axes``: a value_info's 1 where the graph computes another input's rows)
        is no fact here: the rules' answer or nothing.  Source names fill what inference left as fresh
        symbols; a dim nothing names is the Shape read of itself (``dim:<name>:<axis>``, what
        ``Shape(name)[axis]`` folds to), so ops that keep it carry the same name."""
        known = self.index.dims(name)  # inference, with declarations filling its gaps
        claimed = self.index.claimed_axes(name)
        inferred: SourceDims | None = (
            None if known is None else [None if k in claimed else d for k, d in enumerate(known)]
        )
        if proven is None:
            merged = inferred
        elif inferred is None or len(inferred) != len(proven):
            merged = proven
        else:
            merged = [_merge_dim(i, p) for i, p in zip(inferred, proven, strict=True)]
        return (
            None if merged is None else [f"dim:{name}:{k}" if d is None else d for k, d in enumerate(merged)]
        )


def _merge_dim(inferred: Dim | None, proven: Dim | None) -> Dim | None:
    if proven is None or (isinstance(inferred, int) and not isinstance(proven, int)):
        return inferred
    return proven


def table_axis_problem(
    table: str,
    t_dims: Sequence[Dim | None],
    x_dims: Sequence[Dim],
    proven_t: SourceDims | None,
    proven_x: SourceDims | None,
    claimed: frozenset[int] = frozenset(),
) -> str:
    """'' when ``table`` broadcasts into x's leading dims exactly as RoPECustomer does, else why not.

    On each leading axis the original runs only when the table dim ``t`` and x's dim ``d`` are
    equal or one is 1, and its output has the larger; RoPECustomer returns ``d``.  They differ only
    when ``d`` is 1 and ``t`` is not.  So the axis is proven when the graph shows the order fact
    ``min(1, d) <= t <= d``, which leaves ``t = 1`` when ``d = 1``:

    - ``t`` is 1, or ``t`` and ``d`` are the same static size or the same source-named dim;
    - ``d`` is a static size >= 2 and ``t`` a symbol (the rule cannot fail: ``d`` is not 1; two
      different static sizes are refused, the original never runs on them);
    - ``t`` is ``Min(C, d)`` with a static ``C >= 1`` (``cos_cached[:, :, :seq]``, nested Mins
      too): ``t <= d``, and ``t >= 1`` whenever ``d >= 1``.

    Anything else (another symbol, ``Min`` of another dim, ``Min(0, d)``, an unknown) is refused.
    """
    if len(t_dims) > len(x_dims):
        return f"table '{table}' has rank {len(t_dims)}, more than x's {len(x_dims)}"
    offset = len(x_dims) - len(t_dims)
    for axis in range(len(t_dims) - 1):
        t, d = t_dims[axis], x_dims[offset + axis]
        pt = proven_t[axis] if proven_t is not None and len(proven_t) == len(t_dims) else None
        if isinstance(t, int) and isinstance(pt, int) and pt != t:
            return (
                f"table '{table}' dim {axis} is declared {t} but the graph computes {pt}: "
                "the model's shape annotations contradict it"
            )
        if t == 1 or t == d or (isinstance(d, int) and d >= 2 and not isinstance(t, int)):
            continue
        px = proven_x[offset + axis] if proven_x is not None and len(proven_x) == len(x_dims) else d
        if pt is not None and px is not None and (pt == 1 or pt == px or at_least_one_when_positive(pt, px)):
            continue
        claim = " (only the model's value_info sizes it: a claim, not a proof)" if axis in claimed else ""
        return (
            f"table '{table}' dim {axis} ({show_dim(t)}) is not shown to be 1 or equal to x dim "
            f"{offset + axis} ({show_dim(d)}){claim}: the original would broadcast x where RoPECustomer "
            "cannot"
        )
    return ""
