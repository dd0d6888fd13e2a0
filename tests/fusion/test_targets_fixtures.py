"""`fuse --target onnx|ort|atc` on every exported fixture: complete, checker-clean, runnable, equal.

Real exporter output is the ground truth (models/fixtures, models/fixtures/rotary_ops).  For each fixture the
original runs once on ONNX Runtime CPU with verify's own generated feeds (small shapes), then each target's
output runs once on the same feeds and every graph output is compared with verify's default tolerances
(fp32 tight, fp16 one rounding).  Rotary-op fixtures (dynamo opset 23, transformers' ORT fusions) are
converted completely for `atc` and kept as they are for `onnx`/`ort`.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from rope_onnx.fusion import fuse_model
from rope_onnx.op.decomposition import runnable_copy
from rope_onnx.verify import runner
from rope_onnx.verify.compare import chosen_tolerance, compare
from rope_onnx.verify.dims import DimValues
from rope_onnx.verify.feeds import generate, input_specs

FIXTURES = Path(__file__).resolve().parents[2] / "models" / "fixtures"
ROTARY = FIXTURES / "rotary_ops"


def _entries() -> list:
    raw = [
        (FIXTURES / e["file"], e)
        for e in json.loads((FIXTURES / "manifest.json").read_text())
        if e.get("file")
    ]
    ops = [
        (ROTARY / e["file"], e) for e in json.loads((ROTARY / "manifest.json").read_text()) if e.get("file")
    ]
    return raw + ops


ENTRIES = _entries()


def _checker_ok(model: onnx.ModelProto) -> bool:
    try:
        onnx.checker.check_model(model, full_check=True)
        return True
    except onnx.checker.ValidationError:
        return False


def _run(model: onnx.ModelProto, feeds: dict, names: list[str]) -> dict:
    return runner.run(model, feeds, None, names, "model")


@pytest.mark.parametrize("path,entry", ENTRIES, ids=[p.name for p, _ in ENTRIES])
def test_every_target_fuses_completely_passes_the_checker_and_matches(path: Path, entry: dict) -> None:
    original = onnx.load(path)
    rotary_ops = sum(entry.get("rotary_ops", {}).values())
    raw_sites = entry["expected_sites"] - rotary_ops
    specs = input_specs(original)
    # torch's opset-23 export writes [1, S, R/2] caches, which ONNX Runtime runs at batch 1 only
    dims = DimValues({"batch": 1} if entry.get("ort_batch") == 1 else {})
    feeds = generate(original, specs, dims, 0).arrays
    names = [o.name for o in original.graph.output]
    want = _run(original, feeds, names)
    types = {o.name: o.type.tensor_type.elem_type for o in original.graph.output}
    for target in ("onnx", "ort", "atc"):
        model = onnx.ModelProto()
        model.CopyFrom(original)
        result = fuse_model(model, "", str(path), target=target)
        converted = len(result.converted)
        assert result.fused == raw_sites, (target, [s.reason for s in result.skipped])
        assert not result.skipped, (target, result.skipped)
        if target == "atc":
            assert converted == rotary_ops and not result.kept
            model = runnable_copy(model)
        else:
            assert converted == 0 and len(result.kept) == rotary_ops
        if _checker_ok(original):
            onnx.checker.check_model(model, full_check=True)
        got = _run(model, feeds, names)
        for name in names:
            tol = chosen_tolerance("output", types[name], None, None)
            cmp = compare(name, "output", want[name], got[name], tol, "", "")
            assert cmp.passed, (target, name, cmp.to_json())
