"""``fuse_model``: find every RoPE site of a model, prove it, rewrite it into one RoPECustomer node."""

from __future__ import annotations

from onnx import ModelProto

from rope_onnx.errors import require_model_proto
from rope_onnx.fusion import targets
from rope_onnx.fusion.candidates import find_sites
from rope_onnx.fusion.collector import collector_paused
from rope_onnx.fusion.result import FuseResult, Site, Skip
from rope_onnx.fusion.rewrite import apply_sites, rope_nodes
from rope_onnx.graph.index import GraphIndex
from rope_onnx.op.contract import DTYPE_NAMES, OP_TYPE
from rope_onnx.op.decomposition import embed_reference


@collector_paused
def fuse_model(
    model: ModelProto,
    domain: str = "",
    name: str = "",
    target: str = "atc",
    *,
    index: GraphIndex | None = None,
) -> FuseResult:
    """Fuse every RoPE site of ``model`` in place, written as ``target`` (docs/targets.md).

    ``atc``: ``domain`` "" writes the ATC form (default domain, docs/op-contract.md); any other name writes
    the nodes in that domain with the reference functions embedded, runnable by ONNX Runtime as it is.
    Existing rotary ops are converted into RoPECustomer.  ``onnx`` / ``ort``: ai.onnx / com.microsoft
    RotaryEmbedding, written only where the half caches are proven; existing rotary ops are kept.
    ``index``: a :class:`GraphIndex` of ``model`` as it is now, when the caller has one (``fuse_file``
    builds it from the names the loader read); built here when None.
    """
    require_model_proto(model, "fuse_model")
    targets.check_options(target, domain or None)
    if index is None:
        index = GraphIndex(model)
    elif index.graph is not model.graph:
        raise ValueError("fuse_model: the index is of another model")
    proven, skipped = find_sites(model, index)
    kept, to_convert = targets.kept_nodes(index, target)
    producers = None  # who writes each tensor, where the rewrite tells it (no scan of the nodes)
    if target == "atc":
        applied = apply_sites(model, index, proven, domain) if proven else None
        removed = applied.removed if applied else []
        producers = applied.producers if applied and not to_convert else None
    else:
        proven, removed, refused = targets.write_sites(model, index, proven, target)
        skipped += [Skip(output, reason) for output, reason in refused]
    elem_types = {(x := s.original(s.proof.x)): index.elem_type(x) for s in proven}
    converted: list[targets.Converted] = []
    if to_convert:
        after = GraphIndex(model)  # the sites are written: read the graph again
        converted, refused = targets.convert_existing(model, after, targets.rotary_nodes(after), domain)
        skipped += [Skip(output, reason) for output, reason in refused]
        elem_types.update(targets.converted_elem_types(model, after))
    sites = []
    wrote = {s.output for s in proven}
    if producers is not None:
        made = ((o, producers.get(o)) for o in wrote)
        fused_nodes = {o: n.name for o, n in made if n is not None and n.output[0] == o}
    else:
        nodes = model.graph.node if wrote else ()
        fused_nodes = {n.output[0]: n.name for n in nodes if n.output and n.output[0] in wrote}
    moved = {s.output for s in proven if s.proof.moves}  # the op is behind a Gather/Concat of its output
    behind = rope_nodes(model, moved, (OP_TYPE, "RotaryEmbedding"), producers)
    fused_nodes.update((o, n.name) for o, n in behind.items())
    for site, count in zip(proven, removed, strict=True):
        p = site.proof
        sites.append(
            Site(
                site.output,
                site.original(p.x),
                site.original(p.cos),
                site.original(p.sin),
                p.interleaved,
                p.rotary_dim,
                p.head_dim,
                DTYPE_NAMES[index.elem_type(site.original(p.x))],
                count,
                fused_nodes.get(site.output, ""),
                site.assumes,
            )
        )
    if domain and target == "atc" and (proven or converted):
        # only the pass's own nodes move into the domain: RoPECustomer nodes already there stay
        ops = rope_nodes(model, wrote, made_by=producers)
        mine = {id(n) for n in ops.values()}
        # the node reads x itself, or the window / reordering of x the pass added: x's element type
        elem_types.update((ops[s.output].input[0], elem_types[s.proof.x]) for s in proven if s.output in ops)
        outputs = {c.output for c in converted}
        ours = [
            n
            for n in model.graph.node
            if n.op_type == OP_TYPE and (id(n) in mine or (n.output and n.output[0] in outputs | wrote))
        ]
        embed_reference(model, domain, elem_types, ours)
    return FuseResult(name, sites, skipped, target=target, converted=converted, kept=kept)
