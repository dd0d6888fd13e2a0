"""What one op means to the pass, as one object: :class:`OpRule`.

Every op the pass knows is described by one ``OpRule`` in the module of its op family
(:mod:`.elementwise`, :mod:`.slicing`, …); :mod:`.registry` collects them.  A rule answers up to
four questions, each optional:

- ``trace``: what a node of this op does to channel polynomials (the symbolic execution the
  proof rests on).  It sees the tracer only through :class:`TraceContext` — read the graph,
  evaluate inputs, note a proven rank — and returns an ``Expr``/``Scalar`` or raises ``NotRope``
  with a precise reason.  The tracer adds the node itself to the result's node set.
- ``rank`` / ``width``: the output's rank and static last dim where shape inference gave up.
- ``fold``: the op on the small integer tensors exporters compute shapes and bounds with.
- ``anchor``: whether a site may end in this op (candidates are visited from these).
- ``dims``: the output's dims named by their source (:mod:`.dimnames`), from its inputs' proven
  dims: what the per-axis table proof (:mod:`rope_onnx.fusion.dimproof`) follows back to show a
  table dim equals x's, and what the tracer fills in where inference lost dims the op keeps (a
  Slice with a bound computed at run time keeps every axis it does not cut).

Adding an op (``Where``, ``CastLike`` in bounds, …) is adding one ``OpRule`` to one module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from onnx import NodeProto

from rope_onnx.fusion.channels import Expr, Scalar
from rope_onnx.graph.folding import DimsHint, Folder, IntValue
from rope_onnx.graph.index import Dim, GraphIndex

if TYPE_CHECKING:
    from rope_onnx.fusion.memo import Algebra
    from rope_onnx.fusion.ops.reshape import View

__all__ = [
    "DimsContext",
    "DimsRule",
    "FoldInts",
    "OpRule",
    "RankOf",
    "RankRule",
    "ShapeContext",
    "TraceContext",
    "TraceRule",
    "Value",
    "WidthOf",
    "WidthRule",
]

Value = Expr | Scalar
#: Answers "what is the rank / static last dim of this tensor" for a rule's inputs (recursing).
RankOf = Callable[[str], "int | None"]
WidthOf = Callable[[str], "int | None"]


class FoldInts(Protocol):
    """Folds a tensor to integers, with shapes the caller knows better than inference (or None)."""

    def __call__(self, name: str, hint: DimsHint | None = None) -> IntValue: ...


@dataclass(frozen=True)
class ShapeContext:
    """What a rank or width rule may ask: the graph, ranks and widths of inputs, integer folding."""

    index: GraphIndex
    rank_of: RankOf
    width_of: WidthOf
    fold: FoldInts


class TraceContext(Protocol):
    """The part of the tracer a trace rule may use: reads, evaluation of inputs, one note."""

    @property
    def index(self) -> GraphIndex:
        """The read-only index of the graph being traced."""
        ...

    def eval(self, name: str, k: int) -> Value:
        """``name`` on its trailing ``k`` axes (a leaf where it cannot be followed, at k = 1)."""
        ...

    def expr(self, name: str, k: int) -> Expr:
        """Like :meth:`eval`, refusing a constant where a channel tensor is expected."""
        ...

    def rank(self, name: str) -> int:
        """The rank of ``name``; raises ``NotRope`` when it is not known."""
        ...

    def dims(self, name: str) -> list[Dim] | None:
        """The shape of ``name`` as far as the proof knows it."""
        ...

    def width(self, name: str) -> int | None:
        """The static last dim of ``name``, or None."""
        ...

    def ints(
        self, node: NodeProto, position: int, attribute: str | None = None
    ) -> tuple[list[int], frozenset[int]]:
        """A static int list from an input (or, for old opsets, an attribute) of ``node``."""
        ...

    def fold(self, name: str) -> IntValue:
        """``name`` folded to integers, using the shapes this candidate computed."""
        ...

    def leaf(self, name: str) -> Expr:
        """``name`` as an input of the site."""
        ...

    def leaf_name(self, value: Value) -> str | None:
        """The tensor ``value`` is the plain leaf of, else None."""
        ...

    def view(self, view: View, refusal: str) -> Expr:
        """A tensor the rewrite would create (a Reshape's input regrouped) as an input of the site, or
        NotRope(refusal) in an attempt that uses only the graph's own tensors."""
        ...

    def prove_rank(self, name: str, rank: int) -> None:
        """Record a rank the rule proved (shape inference may not know it)."""
        ...

    @property
    def algebra(self) -> Algebra:
        """The channel algebra (Mul, Add, negation) of the pass, memoised across its candidates."""
        ...

    @property
    def widen(self) -> bool:
        """Whether exact widening Casts may be followed (a site that ends in one rounding Cast)."""
        ...

    @property
    def aliases(self) -> set[str]:
        """Tensors the site reads only as proven channels of another input (a rule may add one)."""
        ...


TraceRule = Callable[[TraceContext, NodeProto, str, int], Value]
#: Rank / width rules return None when they cannot tell; they may raise NotStatic (same meaning).
RankRule = Callable[[ShapeContext, NodeProto, str], "int | None"]
WidthRule = Callable[[ShapeContext, NodeProto, str], "int | None"]


@dataclass(frozen=True)
class DimsContext:
    """What a dims rule may ask: the graph, the proven dims of an input (None entries: not known;
    None: rank not known), and integer folding where ``Shape(t)`` reads t's proven dims."""

    index: GraphIndex
    dims_of: Callable[[str], list[Dim | None] | None]
    fold: Callable[[str], IntValue]


#: (context, node, output name) -> the output's dims named by their source, or None (not known).
#: It may raise NotStatic (same meaning as None).
DimsRule = Callable[[DimsContext, NodeProto, str], "list[Dim | None] | None"]


@dataclass(frozen=True)
class OpRule:
    """Everything the pass knows about one standard-domain op type."""

    op_type: str
    trace: TraceRule | None = None
    rank: RankRule | None = None
    width: WidthRule | None = None
    fold: Folder | None = None
    dims: DimsRule | None = None
    anchor: bool = False
    #: What the RoPE look-alike check (:mod:`rope_onnx.fusion.lookalike`) sees in the op, structure only:
    #: "table" (a table passes through input 0), "table_root" (makes one: Sin/Cos), "gather" (reads
    #: one out of the stored cache at input 0), "wrapper" (a precision wrapper it looks through),
    #: "product" (two tensors multiplied), "sum" (two terms added or subtracted), "stored" (a constant).
    roles: frozenset[str] = field(default_factory=frozenset)
    #: True for ops whose trace can put a product of two channels into a value (Mul; If, whose
    #: branch is traced): a candidate with none of them in reach is no site (fusion.reach.cone_facts).
    makes_products: bool = False
    #: How many leading inputs the trace may evaluate as channels (None: any); it reads the others
    #: only as integers (a shape, bounds, axes, repeats), so products behind those are no channels of
    #: its output (fusion.reach.cone_facts: a Reshape whose target shape has a Mul is no candidate).
    channel_inputs: int | None = None
    #: False for ops that read only their input's shape (``Shape``): that input is no data of a site.
    reads_values: bool = True
