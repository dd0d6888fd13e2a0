"""``--sites``: prove every fused site on its own cut of both models, on random tensors.

For each site: choose concrete shapes for x and the tables (:func:`.sites.site_shapes`), cut
both models at x, cos, sin (:mod:`.cut`), run both cuts on the same random tensors and compare
the site output.  When the fused node reads the tables unwidened, its output is also checked
against the NumPy reference (:func:`rope_onnx.op.reference.rope`), so a fault in the reference
decomposition cannot hide behind an equally wrong original.
"""

from __future__ import annotations

import logging

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto

from rope_onnx.errors import CheckFailed, InputError
from rope_onnx.op.contract import DTYPE_NAMES, is_rope_node
from rope_onnx.op.reference import rope
from rope_onnx.verify import runner, sites
from rope_onnx.verify.compare import Comparison, Tolerance, chosen_tolerance, compare
from rope_onnx.verify.cut import cut, declare_inputs
from rope_onnx.verify.dims import DimValues
from rope_onnx.verify.feeds import Feeds, assign_role_dims, generate, input_specs
from rope_onnx.verify.specs import complete_specs, concrete_shape, known_specs


def prove_sites(
    original: ModelProto, fused: ModelProto, site_list: list[sites.Site], options, dims: DimValues
) -> list[Comparison]:
    """One comparison row per site; ``options`` carries atol/rtol/seed (a VerifyOptions)."""
    specs = known_specs(original)
    complete_specs(original, specs, {name for s in site_list for name in (s.x, s.cos, s.sin)})
    model_inputs = input_specs(original)
    assign_role_dims(model_inputs, dims)  # the values a full run would use
    input_names = {s.name for s in model_inputs}
    rng = np.random.default_rng(options.seed)
    fused_nodes = {n.name or n.output[0]: n for n in fused.graph.node if is_rope_node(n)}  # Site.node
    model_feeds: Feeds | None = None
    rows = []
    for site in site_list:
        node = fused_nodes[site.node]
        widths = {}
        for table, fed in zip((site.cos, site.sin), node.input[1:3], strict=True):
            width = sites.widened_width(fused, fed) if table != fed else None
            if width:
                widths[table] = width
        shapes = sites.site_shapes(site, specs, dims, widths)
        elem = specs[site.x].elem_type
        feeds = sites.random_inputs(site, specs, shapes, rng)

        def shape_of(name: str, shapes=shapes) -> tuple[int, ...] | None:
            return shapes.get(name) or concrete_shape(specs.get(name), dims)

        got = []
        for side, what, failure in (
            (original, "the original's", InputError),
            (fused, "the fused", CheckFailed),
        ):
            piece, extra = cut(side, site.output, site.cut_inputs, site.node, shape_of, input_names)
            side_feeds = feeds
            if extra:  # shape-only inputs (e.g. Shape(input_ids) of unknown dims)
                if model_feeds is None:
                    model_feeds = generate(original, model_inputs, dims, options.seed)
                side_feeds = {**feeds, **{n: model_feeds.arrays[n] for n in extra}}
            types = {
                **{n: specs[n].elem_type for n in site.cut_inputs},
                **{n: _type(original, n) for n in extra},
            }
            declare_inputs(piece, types, {n: a.shape for n, a in side_feeds.items()})
            run = runner.runnable(piece, None, elem == TensorProto.BFLOAT16)
            label = f"{what} cut of site '{site.node}'"
            got.append(runner.run(run, side_feeds, None, [site.output], label, failure, logging.DEBUG))
        tol = chosen_tolerance("site", elem, *options.tolerances_for(site.output))
        row = compare(
            site.output,
            "site",
            got[0][site.output],
            got[1][site.output],
            tol,
            DTYPE_NAMES.get(elem, ""),
            site.node,
        )
        _cross_check(row, site, node, feeds, got[1][site.output], tol)
        rows.append(row)
    return rows


def _type(model: ModelProto, name: str) -> int:
    return next(v.type.tensor_type.elem_type for v in model.graph.input if v.name == name)


def _cross_check(
    row: Comparison,
    site: sites.Site,
    node: NodeProto,
    feeds: dict[str, np.ndarray],
    fused_out: np.ndarray,
    tol: Tolerance,
) -> None:
    """The fused cut must also agree with the NumPy reference when its tables are fed unwidened."""
    if tuple(node.input) != (site.x, site.cos, site.sin) or node.output[0] != site.output:
        return  # the fused node reads or feeds added nodes (widening, window): the cut comparison covers it
    x = feeds[site.x]
    expected = rope(x, feeds[site.cos], feeds[site.sin], site.interleaved, site.rotary_dim)
    check = compare(row.name, "site", expected, fused_out.astype(x.dtype), tol)
    if not check.passed:
        row.passed = False
        row.note = f"reference decomposition disagrees with the NumPy reference (max_abs {check.max_abs:.3g})"
