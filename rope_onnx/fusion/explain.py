"""``rope-onnx fuse --explain TENSOR``: the trace of one candidate, step by step, as the pass sees it.

The report says *that* a candidate was skipped and the first reason; when that is not enough to act
on (which annotation lied, which input the tracer could not follow, where the proof stopped), the
explanation walks the same steps as :func:`rope_onnx.fusion.candidates.find_sites` for that one tensor.
"""

from __future__ import annotations

from onnx import ModelProto

from rope_onnx.errors import InputError
from rope_onnx.fusion.candidates import attempt_site, is_anchor, rounded_site
from rope_onnx.fusion.channels import NotRope
from rope_onnx.fusion.lookalike import looks_like_rope
from rope_onnx.fusion.ops.registry import ANCHOR_OPS
from rope_onnx.fusion.trace import Tracer
from rope_onnx.graph.index import GraphIndex


def _describe(index: GraphIndex, tracer: Tracer, name: str) -> str:
    view = tracer.views.get(name)
    if view is None:
        return f"'{name}' dims {tracer.leaf_dims(name)}, element type {index.elem_type(name)}"
    try:
        dims: object = tracer.leaf_dims(name)
    except NotRope as why:
        dims = f"unknown ({why})"
    return f"'{name}': a view of '{view.source}' the pass would write, dims {dims}"


def explain(model: ModelProto, tensor: str) -> str:
    """A multi-line account of the candidate that ends in ``tensor`` (nothing is edited)."""
    index = GraphIndex(model)
    anchor = index.producer.get(tensor)
    if anchor is None:  # a node name is accepted too: its first output
        anchor = next((i for i, n in enumerate(index.nodes) if n.name == tensor and n.output), None)
        tensor = tensor if anchor is None else index.nodes[anchor].output[0]
    if anchor is None:
        raise InputError(f"no node of the graph produces '{tensor}' (--explain takes a tensor or node name)")
    node = index.nodes[anchor]
    tracer = Tracer(index)
    lines = [f"candidate '{tensor}': {node.op_type} node '{node.name}', dims {index.dims(tensor)}"]
    traced = rounded_site(index, node)
    if traced is not None:
        lines.append(f"  a rounding Cast: the site is traced from '{traced}' with exact widenings followed")
    elif not is_anchor(node):
        lines.append(f"  not a candidate: sites end in {sorted(ANCHOR_OPS)} (or a rounding Cast)")
        return "\n".join(lines)
    lines.append(
        f"  looks like RoPE (two products with tables): {'yes' if looks_like_rope(index, anchor) else 'no'}"
    )
    attempt = attempt_site(index, tracer, tensor, traced)
    for name, note in sorted(tracer.notes.items()):
        lines.append(f"  input not followed: '{name}': {note}")
    if attempt is None:
        lines.append(f"  trace stopped: {tracer.stopped}")
        return "\n".join(lines)
    expr, proof, reason, assumptions = attempt
    lines.append(f"  traced {len(expr.nodes)} node(s); inputs of the channel expression:")
    lines += [f"    {_describe(index, tracer, name)}" for name in tracer.leaf_names if name]
    if proof is None:
        lines.append(f"  proof stopped: {reason}")
        return "\n".join(lines)
    lines.append(
        f"  proven: x={proof.x!r} (from channel {proof.x_offset}), cos={proof.cos!r}, sin={proof.sin!r}, "
        f"interleaved={proof.interleaved}, rotary_dim={proof.rotary_dim}, head_dim={proof.head_dim}"
    )
    if proof.x_channels:
        lines.append(f"  the op reads x's channels in the order {list(proof.x_channels)} (one Gather of x)")
    if proof.y_channels:
        lines.append(
            f"  the site's channels are the op's {list(proof.y_channels)} (one Gather of its output)"
        )
    for where, (start, count) in (("before", proof.before), ("after", proof.after)):
        if count:
            lines.append(
                f"  x channels {start}..{start + count - 1} are passed through {where} the op's output"
            )
    lines.append(f"  site check: {reason or 'accepted'}")
    lines += [f"  assumes: {a}" for a in assumptions]
    return "\n".join(lines)
