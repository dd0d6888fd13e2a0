"""verify on the RoPE variants of tests/rope_graphs.py after the library fusion pass: each
fused variant passes in a full run and site by site (inputs x, cos, sin are graph inputs here,
so the cut is the whole model and both modes must agree)."""

from __future__ import annotations

import onnx
import pytest
from rope_graphs import SiteSpec, build

from rope_onnx.fusion import fuse_model
from rope_onnx.verify import VerifyOptions, verify_models

SPECS = {
    "half": SiteSpec(),
    "half_fp16_blhd": SiteSpec(dtype="float16", layout="BLHD", table="LR"),
    "half_split_shape_bounds": SiteSpec(split="split", bounds="shape", swap_add=True),
    "partial": SiteSpec(rotary_dim=8),
    "interleaved_step2": SiteSpec(interleaved=True, split="step2"),
    "interleaved_gather_fp16": SiteSpec(interleaved=True, split="gather", dtype="float16"),
    "seed_half_tables": SiteSpec(interleaved=True, split="step2", seed_form=True),
    "table_cast": SiteSpec(table_cast=True, dtype="float16"),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fused_variant_verifies_and_a_swapped_copy_fails(name):
    original = build(SPECS[name])
    fused = onnx.ModelProto()
    fused.CopyFrom(original)
    result = fuse_model(fused)
    assert len(result.sites) == 1, result.skipped
    for sites in (False, True):
        report = verify_models(original, fused, VerifyOptions(sites=sites))
        assert report.passed, report.render()
    node = next(n for n in fused.graph.node if n.op_type == "RoPECustomer")
    node.input[1], node.input[2] = node.input[2], node.input[1]
    for sites in (False, True):
        report = verify_models(original, fused, VerifyOptions(sites=sites))
        failed_sites = [(r.name, r.node) for r in report.failures if r.kind == "site"]
        assert failed_sites == [(node.output[0], node.name)], report.render()
        assert sites or "y" in {r.name for r in report.failures}
