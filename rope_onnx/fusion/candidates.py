"""Candidate search: every node a site may end in, visited from the graph's end.

Candidates are nodes of an op whose rule is an anchor (:data:`rope_onnx.fusion.ops.registry.RULES`)
with a head-sized channel axis, visited from the graph's end so that the largest site wins (a
partial-rotary Concat before the Add inside it).  Each candidate is symbolically executed on its
channel axes (:mod:`rope_onnx.fusion.trace`), proven against the op's definition
(:mod:`rope_onnx.fusion.prove`) and checked for shapes and element types
(:mod:`rope_onnx.fusion.site_checks`).  Anything that computes degree-2 channel terms but fails a
check is reported with its reason.
"""

from __future__ import annotations

from dataclasses import replace

from onnx import ModelProto

from rope_onnx.fusion.channels import Expr, NotRope
from rope_onnx.fusion.dimproof import DimProver
from rope_onnx.fusion.ops.registry import ANCHOR_OPS
from rope_onnx.fusion.prove import prove
from rope_onnx.fusion.result import Skip
from rope_onnx.fusion.rewrite import ProvenSite
from rope_onnx.fusion.site_checks import check_site, data_inputs, head_sized, sums_products
from rope_onnx.fusion.trace import BudgetExceeded, Tracer, product_reach
from rope_onnx.graph.conventions import is_default_domain
from rope_onnx.graph.index import GraphIndex


def find_sites(model: ModelProto, index: GraphIndex) -> tuple[list[ProvenSite], list[Skip]]:
    """Every provable site of ``model`` and every near miss with its reason (nothing is edited)."""
    tracer = Tracer(index)
    reach = product_reach(index)  # a candidate with no Mul in the tracer's reach computes no rotation
    prover = DimProver(index)
    proven: list[ProvenSite] = []
    skipped: list[Skip] = []
    claimed: set[int] = set()
    covered: set[int] = set()
    for anchor in range(len(index.nodes) - 1, -1, -1):
        node = index.nodes[anchor]
        if anchor in claimed or node.op_type not in ANCHOR_OPS or not is_default_domain(node.domain):
            continue
        output = node.output[0]
        dims = index.dims(output)
        if (dims is not None and not head_sized(dims)) or output not in reach:
            continue
        tracer.reset()
        try:
            expr = tracer.eval(output, 1)
        except (BudgetExceeded, NotRope):
            continue
        if not isinstance(expr, Expr) or not sums_products(expr):
            continue
        try:
            proof = prove(expr, tracer.leaf_names)
            reason, assumptions = check_site(
                index, tracer, output, proof, data_inputs(index, expr.nodes), prover
            )
        except NotRope as why:
            reason, assumptions = str(why), []
        if reason:
            if anchor not in covered:
                notes = "; ".join(f"{t}: {n}" for t, n in sorted(tracer.notes.items()))
                skipped.append(Skip(output, reason + (f" (inputs not followed: {notes})" if notes else "")))
            covered |= expr.nodes
            continue
        widths = {n: w for n in (proof.x, proof.cos, proof.sin) if (w := tracer.width(n)) is not None}
        if proof.x_offset or widths[proof.x] != proof.head_dim:
            window = tracer.find_window(proof.x, proof.x_offset, proof.head_dim)
            if window is not None:  # an existing tensor holds exactly the rotated window of x
                proof = replace(proof, x=window, x_offset=0)
                widths[window] = proof.head_dim
        proven.append(ProvenSite(anchor, output, proof, expr.nodes | {anchor}, tuple(assumptions), widths))
        claimed |= expr.nodes
        covered |= expr.nodes
    proven.reverse()
    skipped.reverse()
    return proven, skipped
