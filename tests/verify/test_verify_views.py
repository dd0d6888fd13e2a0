"""``verify --sites`` on sites whose fused node reads a view the pass wrote (rope_onnx.verify.views).

Meta's real-arithmetic RoPE (x: a Reshape of the projection) and ChatGLM's (tables: two Gathers of a
Reshape of the cache) are cut at the original tensors; their shapes are chosen on the views.  A wrong
attribute on such a site must still be caught by its own cut.
"""

from __future__ import annotations

import onnx
import pytest
from conftest import FIXTURES
from onnx import helper

from rope_onnx import InputError, fuse_model, verify_models
from rope_onnx.verify import VerifyOptions
from rope_onnx.verify.dims import DimValues
from rope_onnx.verify.feeds import InputSpec
from rope_onnx.verify.views import source_shape, viewed

VIEW_FIXTURES = [
    "custom_metareal_ts_fp32.onnx",
    "custom_metareal_dynamo_fp32.onnx",
    "custom_chatglm_ts_fp32.onnx",
]


@pytest.mark.parametrize("name", VIEW_FIXTURES)
def test_view_sites_pass_on_their_own_cuts(name: str) -> None:
    original = onnx.load(FIXTURES / name)
    fused = onnx.load(FIXTURES / name)
    assert fuse_model(fused).fused == 4
    report = verify_models(original, fused, VerifyOptions(sites=True))
    assert report.passed and len(report.results) == 4, report.render()


def test_a_wrong_view_site_fails_its_cut() -> None:
    original = onnx.load(FIXTURES / VIEW_FIXTURES[0])
    fused = onnx.load(FIXTURES / VIEW_FIXTURES[0])
    fuse_model(fused)
    node = next(n for n in fused.graph.node if n.op_type == "RoPECustomer")
    attrs = [a for a in node.attribute if a.name != "interleaved"]
    del node.attribute[:]
    node.attribute.extend([*attrs, helper.make_attribute("interleaved", 0)])  # Meta's pairs read as halves
    report = verify_models(original, fused, VerifyOptions(sites=True))
    assert not report.passed and sum(not r.passed for r in report.results) == 1


def test_a_view_shape_is_carried_back_to_its_source() -> None:
    cache = InputSpec("cache", onnx.TensorProto.FLOAT, ("batch", "seq", 4, 2))
    view = viewed(cache, (-1, 0, 1, 8))
    assert view is not None and view.dims == (None, "seq", 1, 8)
    assert source_shape(cache, (-1, 0, 1, 8), (3, 7, 1, 8), DimValues(), "s") == (3, 7, 4, 2)
    with pytest.raises(InputError, match="holds the"):  # 5 rows of 8 are no [*, 7, 4, 2]
        source_shape(cache, (-1, 0, 1, 8), (5, 7, 2, 8), DimValues(), "s")
