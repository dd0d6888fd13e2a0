"""verify on every exported fixture of models/fixtures (manifest.json): fuse with the library
pass, then a correct fusion passes (full run and --sites), and a corrupted one — one node's
cos/sin swapped, or its ``interleaved`` flipped — fails at exactly that site in both modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from rope_onnx.io.load import load_model
from rope_onnx.op.contract import ATTR_INTERLEAVED, attributes_of, is_rope_node
from rope_onnx.verify import VerifyOptions, verify_models

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "models" / "fixtures"
MANIFEST = FIXTURES / "manifest.json"
ENTRIES = [e for e in json.loads(MANIFEST.read_text()) if e.get("file")] if MANIFEST.is_file() else []

pytestmark = pytest.mark.skipif(not ENTRIES, reason="models/fixtures/manifest.json not merged yet")


def fused_copy(path: Path):
    from rope_onnx.fusion import fuse_model

    loaded = load_model(path)
    fused = onnx.ModelProto()
    fused.CopyFrom(loaded.model)
    result = fuse_model(fused)
    return loaded, fused, result


def corrupt(fused: onnx.ModelProto, how: str) -> str:
    """Break the last RoPECustomer node; return its output (the site the report must name)."""
    node = [n for n in fused.graph.node if is_rope_node(n)][-1]
    if how == "swap":
        node.input[1], node.input[2] = node.input[2], node.input[1]
    else:
        attrs = attributes_of(node)
        kept = [a for a in node.attribute if a.name != ATTR_INTERLEAVED]
        del node.attribute[:]
        node.attribute.extend([*kept, onnx.helper.make_attribute(ATTR_INTERLEAVED, 1 - attrs.interleaved)])
    return node.output[0]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_fixture_fused_by_the_pass_verifies_in_both_modes(entry):
    loaded, fused, result = fused_copy(FIXTURES / entry["file"])
    full = verify_models(loaded, fused)
    assert full.passed, full.render()
    assert {r.name for r in full.results if r.kind == "site"} == {s.output for s in result.sites}
    if result.sites:
        local = verify_models(loaded, fused, VerifyOptions(sites=True))
        assert local.passed, local.render()
        assert [r.name for r in local.results] == [s.output for s in result.sites]


@pytest.mark.parametrize("how", ["swap", "interleaved"])
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_fixture_with_one_corrupted_site_fails_there_in_both_modes(entry, how):
    loaded, fused, result = fused_copy(FIXTURES / entry["file"])
    if not result.sites:
        pytest.skip("the fusion pass fused no site in this fixture")
    site = corrupt(fused, how)
    for options in (VerifyOptions(), VerifyOptions(sites=True)):
        report = verify_models(loaded, fused, options)
        assert not report.passed, report.render()
        failed_sites = {r.name for r in report.failures if r.kind == "site"}
        assert failed_sites == {site}, report.render()


def test_cli_exit_codes_on_a_fixture(tmp_path):
    entry = next(e for e in ENTRIES if e["expected_sites"] and "llama" in e["file"])
    original = FIXTURES / entry["file"]
    _, fused, result = fused_copy(original)
    assert result.sites
    good = tmp_path / "fused.onnx"
    onnx.save(fused, good)
    site = corrupt(fused, "swap")
    bad = tmp_path / "bad.onnx"
    onnx.save(fused, bad)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "rope_onnx", "verify", *map(str, args)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )

    assert run(original, good).returncode == 0
    assert run(original, good, "--sites").returncode == 0
    proc = run(original, bad, "--report", tmp_path / "r.json")
    assert proc.returncode == 1 and site in proc.stdout
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [r["name"] for r in rows if not r["passed"] and r["kind"] == "site"] == [site]
