"""Candidate search: every node a site may end in, visited from the graph's end.

Candidates are nodes of an op whose rule is an anchor (:data:`rope_onnx.fusion.ops.registry.RULES`)
with a head-sized channel axis, visited from the graph's end so that the largest site wins (a
partial-rotary Concat before the Add inside it).  Each candidate is symbolically executed on its
channel axes (:mod:`rope_onnx.fusion.trace`), proven against the op's definition
(:mod:`rope_onnx.fusion.prove`) and checked for shapes and element types
(:mod:`rope_onnx.fusion.site_checks`).  Anything that computes degree-2 channel terms but fails a
check is reported with its reason, and so is every RoPE look-alike the tracer cannot even follow
(:mod:`rope_onnx.fusion.lookalike`): no silent miss.  fp16 sites that ONNX Runtime's CPU optimizer wrapped
in Casts (``InsertedPrecisionFreeCast_*``) are proven as float32 math on exactly widened inputs.
"""

from __future__ import annotations

from dataclasses import replace

from onnx import ModelProto, NodeProto, TensorProto

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.dimproof import DimProver
from rope_onnx.fusion.lookalike import looks_like_rope
from rope_onnx.fusion.ops.casts import rounding_input, widened_copy
from rope_onnx.fusion.ops.registry import rule_for
from rope_onnx.fusion.prove import Proof
from rope_onnx.fusion.reach import cone_facts
from rope_onnx.fusion.result import Skip
from rope_onnx.fusion.rewrite import ProvenSite
from rope_onnx.fusion.site_checks import check_site, data_inputs, head_sized, sums_products
from rope_onnx.fusion.trace import NODE_BUDGET, BudgetExceeded, Tracer
from rope_onnx.fusion.views import Views
from rope_onnx.graph.index import GraphIndex
from rope_onnx.graph.intmath import INT_TYPES

#: Element types a rotation is never computed in (the integers of graph/intmath, and bool): a
#: candidate of one is skipped untraced unless it looks like RoPE (then it is traced and reported as
#: before).  The shape chains of an export end in int64 Concats that are anchors (a partial-rotary
#: Concat is): 161 of them in a 70B-shaped graph.
INTEGER_TYPES = frozenset(INT_TYPES) | {TensorProto.BOOL}


def is_anchor(node: NodeProto | None) -> bool:
    """A site may end in ``node`` (its op's rule says so; other domains never)."""
    rule = None if node is None else rule_for(node.op_type, node.domain)
    return rule is not None and rule.anchor


def rounded_site(index: GraphIndex, node: NodeProto) -> str | None:
    """The float32 tensor a float16/bfloat16 site computes before its one rounding, if ``node`` is
    that rounding: ``Cast16(Add(Mul(Cast32(x), Cast32(cos)), …))`` as ONNX Runtime's CPU optimizer
    writes fp16 graphs.  The tracer lets only exact widenings of the inputs through, so the site's
    math is float32 on the inputs' own values, rounded once here: RoPECustomer's fp16 semantics."""
    source = rounding_input(index, node)
    if source is None or not is_anchor(index.node_of(source)):
        return None
    return source


def _not_traced(tracer: Tracer) -> str:
    """Why a RoPE look-alike is no candidate: where the trace stopped, and the inputs it did not follow."""
    notes = "; ".join(f"{t}: {n}" for t, n in sorted(tracer.notes.items()))
    reason = "looks like RoPE (products with Sin/Cos, gathered or input tables), but the trace stopped: "
    reason += tracer.stopped
    return reason + (f" (inputs not followed: {notes})" if notes else "")


def _widened_leaves(tracer: Tracer) -> bool:
    """The trace stopped at Casts that change the element type (fp16 inputs widened one by one)."""
    return any("changes the element type" in note for note in tracer.notes.values())


def _attempt_once(
    index: GraphIndex,
    tracer: Tracer,
    traced: str,
    output: str,
    prover: DimProver,
    *,
    widen: bool,
    widened: bool = False,
    views: bool = False,
) -> tuple[Expr, Proof | None, str, list[str]] | None:
    """Trace, prove and check one candidate: None when it is not a sum of channel products."""
    tracer.reset(traced)
    tracer.widen = widen
    tracer.use_views = views
    try:
        expr = tracer.eval(traced, 1)
    except BudgetExceeded:
        tracer.stopped = f"more than {NODE_BUDGET} nodes behind '{traced}'"
        return None
    except NotRope as why:
        tracer.stopped = str(why)
        return None
    if not isinstance(expr, Expr) or not sums_products(expr):
        tracer.stopped = "no channel of it is a sum of products of its inputs"
        return None
    try:
        proof = tracer.algebra.prove(expr, tracer.site_leaves, tracer.leaf_ids)
        inputs = data_inputs(index, expr.nodes) - tracer.aliases
        if widened:  # read the float32 copies the site itself made of its fp16 inputs
            found = [widened_copy(index, n, expr.nodes) for n in (proof.x, proof.cos, proof.sin)]
            names = [n for n in found if n is not None]
            if len(names) != 3:
                raise NotRope("an fp16 input of the float32 math has no float32 copy to read")
            inputs -= {proof.x, proof.cos, proof.sin}  # read through the site's own exact Casts
            proof = replace(proof, x=names[0], cos=names[1], sin=names[2])
            expr = Expr(expr.grid, expr.nodes - {index.producer[n] for n in names})  # they stay
        reason, assumptions = check_site(index, tracer, output, proof, inputs, prover)
    except NotRope as why:
        return expr, None, str(why), []
    return expr, proof, reason, assumptions


def attempt_site(
    index: GraphIndex, tracer: Tracer, output: str, traced: str | None, prover: DimProver | None = None
) -> tuple[Expr, Proof | None, str, list[str]] | None:
    """One candidate: traced from ``traced`` (the float32 result a rounding Cast ends) or ``output``.
    A float32 site whose fp16 inputs were widened one Cast each is retried on those widened copies;
    one whose trace stopped at a Reshape that regroups leading axes, through views of its input
    (fusion.views): where that trace, too, is a sum of products, its reason is the one reported (it
    got further); otherwise the first attempt's reason and notes stay."""
    prover = prover if prover is not None else DimProver(index)
    attempt = _attempt_once(index, tracer, traced or output, output, prover, widen=traced is not None)
    could_view = tracer.could_view
    if attempt is not None and attempt[2] and traced is None and _widened_leaves(tracer):
        retry = _attempt_once(index, tracer, output, output, prover, widen=True, widened=True)
        if retry is not None and not retry[2]:
            return retry
    if could_view and (attempt is None or attempt[2]):
        notes, stopped = tracer.notes, tracer.stopped
        retry = _attempt_once(
            index, tracer, traced or output, output, prover, widen=traced is not None, views=True
        )
        if retry is not None:
            return retry
        tracer.notes, tracer.stopped = notes, stopped
    return attempt


def _inner_site(index: GraphIndex, tracer: Tracer, expr: Expr, proof: Proof, anchor: int) -> bool:
    """The op's rotated output of a Concat-joined site is already a tensor a site may end in (dynamo's
    ``cat(q_pass, cat(rot1, rot2))``): that inner site is the one to fuse, the graph's Concat stays."""
    if not (proof.before[1] or proof.after[1]):
        return False
    start = proof.before[1]
    inner = tracer.find_tensor(list(expr.grid.flat)[start : start + proof.head_dim])
    return inner is not None and index.producer.get(inner) != anchor and is_anchor(index.node_of(inner))


def _inputs(tracer: Tracer, proof: Proof) -> tuple[Proof, dict[str, int], tuple[tuple[str, int, int], ...]]:
    """The proof reading existing tensors where the graph holds the exact windows of x it needs: x's
    (the q a NeoX export slices out of qkv) and the channels a Concat-joined site passes through."""
    widths = {n: w for n in (proof.x, proof.cos, proof.sin) if (w := tracer.width(n)) is not None}
    around = []
    for offset, count in (proof.before, proof.after):
        window = tracer.find_window(proof.x, offset, count) if count else None
        if window is not None:
            widths[window] = count
        around.append((window, 0, count) if window is not None else (proof.x, offset, count))
    reads = proof.reads()
    low, high = min(reads), max(reads) + 1
    # a Concat-joined site keeps x: the channels it passes through are x's too (one cut for verify --sites)
    joined = proof.before[1] or proof.after[1]
    if not joined and high - low == proof.head_dim and (low or widths[proof.x] != proof.head_dim):
        window = tracer.find_window(proof.x, low, proof.head_dim)
        if window is not None:  # an existing tensor holds exactly the rotated window of x
            moved = tuple(c - low for c in proof.x_channels)
            proof = replace(proof, x=window, x_offset=0, x_channels=moved)
            widths[window] = proof.head_dim
    return proof, widths, tuple(around)


def _in_reach(index: GraphIndex, reach: dict[str, int]) -> list[tuple[int, str]]:
    """(node, first output) of the nodes whose first output is in the tracer's reach of a Mul, from
    the graph's end: the only possible candidates (an eighth of a 70B-shaped graph), found from the
    reach map's tensors rather than by reading every node's outputs (18k protobuf reads)."""
    nodes, producer = index.nodes, index.producer
    found = [
        (i, name) for name in reach if (i := producer.get(name)) is not None and nodes[i].output[0] == name
    ]
    return sorted(found, reverse=True)


def find_sites(model: ModelProto, index: GraphIndex) -> tuple[list[ProvenSite], list[Skip]]:
    """Every provable site of ``model`` and every near miss with its reason (nothing is edited)."""
    reach, levels = cone_facts(index)  # a candidate with no Mul in the tracer's reach computes no rotation
    tracer = Tracer(index, levels)
    prover = DimProver(index)
    proven: list[ProvenSite] = []
    skipped: list[Skip] = []
    claimed: set[int] = set()
    covered: set[int] = set()
    around: dict[int, frozenset[int]] = {}  # skipped candidate -> the nodes it traced
    for anchor, output in _in_reach(index, reach):
        if anchor in claimed:
            continue
        node = index.nodes[anchor]
        traced = rounded_site(index, node)
        if not is_anchor(node) and traced is None:
            continue
        dims = index.dims(output)
        if dims is not None and not head_sized(dims):
            continue
        if index.elem_type(output) in INTEGER_TYPES and not looks_like_rope(index, anchor):
            continue  # shape arithmetic (a Concat of dims): never a site, and no RoPE look-alike to report
        attempt = attempt_site(index, tracer, output, traced, prover)
        if attempt is None:
            if anchor not in covered and looks_like_rope(index, anchor):
                skipped.append(Skip(output, _not_traced(tracer)))
                covered.add(anchor)
            continue
        expr, proof, reason, assumptions = attempt
        if reason or proof is None:
            if anchor not in covered:
                notes = "; ".join(f"{t}: {n}" for t, n in sorted(tracer.notes.items()))
                skipped.append(Skip(output, reason + (f" (inputs not followed: {notes})" if notes else "")))
                around[len(skipped) - 1] = expr.nodes
            covered |= expr.nodes
            continue
        if _inner_site(index, tracer, expr, proof, anchor):
            continue  # the rotated channels are an anchor of their own: that site is fused, this Concat stays
        proof, widths, passes = _inputs(tracer, proof)
        made = Views(index, tracer.views, prover).shapes((proof.x, proof.cos, proof.sin))
        proven.append(
            ProvenSite(
                anchor,
                output,
                proof,
                expr.nodes | {anchor},
                tuple(assumptions),
                widths,
                around=passes,
                views=made,
            )
        )
        claimed |= expr.nodes
        covered |= expr.nodes
    # A candidate around a site that did fuse (DeepSeek's cat(q_pass, q_rot) around the rotation) is
    # not a miss: the RoPE in it is fused; what is left is not RoPE.
    anchors = {site.anchor for site in proven}
    skipped = [s for i, s in enumerate(skipped) if not anchors & around.get(i, frozenset())]
    proven.reverse()
    skipped.reverse()
    return proven, skipped
