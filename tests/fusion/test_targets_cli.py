"""`fuse --target`: option refusals, the proof obligation's refusal, report sections, `--verify` and `verify`
on the outputs directly (in-process CLI calls)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from rope_graphs import SiteSpec, build

from rope_onnx.cli.app import main

FIXTURES = Path(__file__).resolve().parents[2] / "models" / "fixtures"
LLAMA = FIXTURES / "llama_base_ts_fp32.onnx"  # opset 17: ReduceMean-13 and Split-13 are raised exactly
MS = FIXTURES / "rotary_ops" / "llama_base_tfdml_fp32.onnx"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--target", "onnx", "--domain", "rope.cpu"], "only goes with --target atc"),
        (["--domain", ""], "reserved"),
        (["--domain", "com.microsoft"], "reserved"),
        (["--domain", "ai.onnx.ml"], "reserved"),
    ],
)
def test_domain_goes_with_atc_only_and_never_names_a_real_domain(tmp_path, capsys, args, message) -> None:
    out = tmp_path / "o.onnx"
    assert main(["fuse", str(LLAMA), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


@pytest.mark.parametrize("target", ["onnx", "ort"])
def test_graph_input_tables_are_refused_for_rotary_targets_with_a_reason(tmp_path, capsys, target) -> None:
    src, out, report = tmp_path / "s.onnx", tmp_path / "o.onnx", tmp_path / "r.json"
    onnx.save(build(SiteSpec()), src)  # cos/sin are graph inputs, full width
    assert main(["fuse", str(src), "-o", str(out), "--target", target, "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["fused"] == 0 and data["target"] == target
    assert "graph input" in data["skipped"][0]["reason"]
    assert main(["fuse", str(src), "-o", str(out)]) == 0  # atc fuses it as always
    assert "fused 1 RoPE site(s)" in capsys.readouterr().out


def test_onnx_target_refuses_a_model_whose_ops_change_meaning_before_opset_23(tmp_path, capsys) -> None:
    model = onnx.load(LLAMA)  # opset 17, plus a Resize-13 (Resize changed at 18 and 19)
    model.graph.input.append(helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 1, 2, 2]))
    model.graph.initializer.append(helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2]))
    model.graph.node.append(helper.make_node("Resize", ["img", "", "scales"], ["z"], mode="nearest"))
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    src, out = tmp_path / "s.onnx", tmp_path / "o.onnx"
    onnx.save(model, src)
    assert main(["fuse", str(src), "-o", str(out), "--target", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Resize-18" in err[0] and "--target ort" in err[0] and not out.exists()
    assert main(["fuse", str(src), "-o", str(out), "--target", "ort"]) == 0


@pytest.mark.parametrize("target", ["onnx", "ort"])
def test_rotary_outputs_pass_fuse_verify_and_verify_directly(tmp_path, capsys, target) -> None:
    out, report = tmp_path / "o.onnx", tmp_path / "r.json"
    rc = main(["fuse", str(LLAMA), "-o", str(out), "--target", target, "--verify", "--report", str(report)])
    assert rc == 0, capsys.readouterr().err
    data = json.loads(report.read_text())
    assert data["fused"] == 4 and data["verify"]["passed"]
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    domain = "" if target == "onnx" else "com.microsoft"
    assert sum(n.op_type == "RotaryEmbedding" and n.domain == domain for n in model.graph.node) == 4
    if target == "onnx":
        assert [o.version for o in model.opset_import if o.domain == ""] == [23]
    assert main(["verify", str(LLAMA), str(out)]) == 0


def test_atc_converts_ms_rotary_ops_and_lists_them_apart_from_skipped(tmp_path, capsys) -> None:
    out, report = tmp_path / "o.onnx", tmp_path / "r.json"
    assert main(["fuse", str(MS), "-o", str(out), "--verify", "--report", str(report)]) == 0
    text = capsys.readouterr().out
    assert "converted 4 existing rotary op(s) into RoPECustomer" in text
    data = json.loads(report.read_text())
    assert len(data["converted"]) == 4 and data["skipped"] == [] and data["verify"]["passed"]
    assert {c["op"] for c in data["converted"]} == {"com.microsoft::RotaryEmbedding"}
    fused = onnx.load(out)
    assert not any(n.op_type == "RotaryEmbedding" for n in fused.graph.node)
    assert sum(n.op_type == "RoPECustomer" for n in fused.graph.node) == 4
    # the tables' derivation is shared by all layers: one widening Gather per cache
    widen = [n for n in fused.graph.node if n.op_type == "Gather" and "full_width" in n.output[0]]
    assert len(widen) == 2
    assert (
        main(["fuse", str(MS), "-o", str(tmp_path / "k.onnx"), "--target", "ort", "--report", str(report)])
        == 0
    )
    data = json.loads(report.read_text())
    assert len(data["kept"]) == 4 and not data["converted"] and data["fused"] == 0
