"""Every committed export (models/fixtures, made by models/export_fixtures.py) fuses completely and exactly.

Real exporter output is the ground truth: each manifest entry names the sites the model really
computes (q and k of every layer).  All of them must fuse, with the attributes the manifest gives,
and the fused model must equal the original on ONNX Runtime CPU (RoPECustomer served by its
reference decomposition).  The numeric check at two sequence lengths lives in
test_verify_fixtures.py (full run and per-site cuts); here: the counts, the attributes, the form.
"""

from __future__ import annotations

import json

import onnx
import pytest
from conftest import FIXTURES

from rope_onnx.fusion import fuse_model

ENTRIES = [e for e in json.loads((FIXTURES / "manifest.json").read_text()) if e.get("file")]


def test_the_manifest_covers_what_issue_2_asks_for() -> None:
    families = {e["family"] for e in ENTRIES}
    assert {"llama", "qwen2", "mistral", "phi", "neox", "gptj", "seed"} <= families
    exporters = {(e["family"], e["exporter"]) for e in ENTRIES}
    assert {("llama", "torchscript"), ("llama", "dynamo")} <= exporters
    assert {e["dtype"] for e in ENTRIES if e["family"] == "llama"} == {"float32", "float16"}
    tags = {t for e in ENTRIES for t in e["variants"]}
    for needed in ("split", "mul_neg1", "computed_bounds", "partial", "kv_cache", "blhd", "fp16"):
        assert any(needed in t for t in tags), needed


def _sign_nodes(model: onnx.ModelProto) -> int:
    """Neg, Sub and Mul(-1) nodes: each RoPE site has exactly one (the manifest's sign_nodes)."""
    minus_one = {
        t.name for t in model.graph.initializer if onnx.numpy_helper.to_array(t).tolist() in (-1, [-1])
    }
    minus_one |= {
        n.output[0]
        for n in model.graph.node
        if n.op_type == "Constant"
        and n.attribute[0].name == "value"
        and onnx.numpy_helper.to_array(n.attribute[0].t).tolist() in (-1, [-1])
    }
    floats = [n for n in model.graph.node if n.op_type in ("Neg", "Sub")]
    return len(floats) + sum(n.op_type == "Mul" and bool(minus_one & set(n.input)) for n in model.graph.node)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_every_site_of_every_export_fuses(entry: dict) -> None:
    model = onnx.load(FIXTURES / entry["file"])
    signs_before = _sign_nodes(model)
    result = fuse_model(model)
    assert result.fused == entry["expected_sites"], result.skipped
    assert not result.skipped
    for site in result.sites:
        assert (site.interleaved, site.rotary_dim, site.head_dim) == (
            entry["interleaved"],
            entry["rotary_dim"],
            entry["head_dim"],
        )
        assert site.dtype == entry["dtype"]
    assert _sign_nodes(model) == signs_before - entry["expected_sites"], "a site's sign op survived"
    assert [n.domain for n in model.graph.node if n.op_type == "RoPECustomer"] == [""] * result.fused
    assert [o.domain for o in model.opset_import] == [""]
