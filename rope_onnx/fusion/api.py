"""``fuse_model``: find every RoPE site of a model, prove it, rewrite it into one RoPECustomer node."""

from __future__ import annotations

from onnx import ModelProto

from rope_onnx.errors import require_model_proto
from rope_onnx.fusion.candidates import find_sites
from rope_onnx.fusion.result import FuseResult, Site
from rope_onnx.fusion.rewrite import apply_sites
from rope_onnx.graph.index import GraphIndex
from rope_onnx.op.contract import DTYPE_NAMES
from rope_onnx.op.decomposition import embed_reference


def fuse_model(model: ModelProto, domain: str = "", name: str = "") -> FuseResult:
    """Fuse every RoPE site of ``model`` in place.

    ``domain`` "" writes the ATC form (default domain, docs/op-contract.md); any other name writes the nodes
    in that domain with the reference functions embedded, runnable by ONNX Runtime as it is.
    """
    require_model_proto(model, "fuse_model")
    index = GraphIndex(model)
    proven, skipped = find_sites(model, index)
    removed = apply_sites(model, index, proven, domain) if proven else []
    sites = []
    fused_nodes = {n.output[0]: n.name for n in model.graph.node if n.op_type == "RoPECustomer"}
    for site, count in zip(proven, removed, strict=True):
        p = site.proof
        sites.append(
            Site(
                site.output,
                p.x,
                p.cos,
                p.sin,
                p.interleaved,
                p.rotary_dim,
                p.head_dim,
                DTYPE_NAMES[index.elem_type(p.x)],
                count,
                fused_nodes.get(site.output, ""),
                site.assumes,
            )
        )
    if domain and proven:
        outputs = {site.output for site in proven}  # only the pass's own nodes: those already there stay
        ours = [n for n in model.graph.node if n.op_type == "RoPECustomer" and n.output[0] in outputs]
        embed_reference(model, domain, {p.x: index.elem_type(p.x) for p in (s.proof for s in proven)}, ours)
    return FuseResult(name, sites, skipped)
