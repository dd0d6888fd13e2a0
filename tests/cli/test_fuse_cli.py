"""`rope-onnx fuse` end to end: report, output forms, file handling, preservation of the rest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from conftest import cli, run_model
from onnx import helper
from rope_graphs import SiteSpec, build, feeds

SPEC = replace(SiteSpec(), head_dim=24, rotary_dim=8, extra_consumer=True)


def _decorated(tmp_path: Path) -> Path:
    """A site model carrying metadata, doc strings and value_info the fusion must keep."""
    model = build(SPEC)
    model.doc_string = "model doc"
    model.graph.doc_string = "graph doc"
    helper.set_model_props(model, {"author": "rope-onnx tests", "purpose": "preservation"})
    model.graph.value_info.append(
        helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["B", 3, "L", 24])
    )
    model.graph.node[-1].doc_string = "the output identity"
    path = tmp_path / "site.onnx"
    onnx.save(model, path)
    return path


def test_fuse_prints_the_table_writes_the_report_and_leaves_the_input(tmp_path: Path) -> None:
    src = _decorated(tmp_path)
    before = src.read_bytes()
    out, report = tmp_path / "fused.onnx", tmp_path / "report.json"
    run = cli("fuse", str(src), "-o", str(out), "--report", str(report))
    assert run.returncode == 0, run.stderr
    assert "fused 1 RoPE site(s)" in run.stdout and "nodes_removed" in run.stdout
    assert src.read_bytes() == before
    data = json.loads(report.read_text())
    assert data["fused"] == 1 and data["skipped"] == []
    site = data["sites"][0]
    assert {k: site[k] for k in ("input", "interleaved", "rotary_dim", "head_dim", "dtype")} == {
        "input": "x",
        "interleaved": 0,
        "rotary_dim": 8,
        "head_dim": 24,
        "dtype": "float32",
    }
    assert site["nodes_removed"] >= 6
    fused = onnx.load(out)
    node = next(n for n in fused.graph.node if n.op_type == "RoPECustomer")
    assert node.domain == "" and [o.domain for o in fused.opset_import] == [""]
    assert node.output[0] == site["output"]


def test_everything_but_the_site_is_preserved(tmp_path: Path) -> None:
    src = _decorated(tmp_path)
    out = tmp_path / "fused.onnx"
    assert cli("fuse", str(src), "-o", str(out)).returncode == 0
    original, fused = onnx.load(src), onnx.load(out)
    assert fused.doc_string == original.doc_string and fused.graph.doc_string == original.graph.doc_string
    assert fused.metadata_props == original.metadata_props
    assert fused.graph.input == original.graph.input and fused.graph.output == original.graph.output
    assert [v for v in fused.graph.value_info if v.name == "y"] == list(original.graph.value_info)
    assert fused.graph.node[-1] == original.graph.node[-1]  # untouched node, doc string included
    assert (fused.ir_version, fused.producer_name) == (original.ir_version, original.producer_name)


def test_domain_output_is_valid_onnx_that_onnxruntime_runs_as_is(tmp_path: Path) -> None:
    src = _decorated(tmp_path)
    out = tmp_path / "fused_cpu.onnx"
    assert cli("fuse", str(src), "-o", str(out), "--domain", "com.example.rope").returncode == 0
    fused = onnx.load(out)
    onnx.checker.check_model(fused, full_check=True)
    assert {n.domain for n in fused.graph.node if n.op_type == "RoPECustomer"} == {"com.example.rope"}
    data = feeds(SPEC)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, data), strict=True))
    want = run_model(onnx.load(src), data)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value)


def test_expect_not_met_fails_without_output(tmp_path: Path) -> None:
    src = _decorated(tmp_path)
    out = tmp_path / "fused.onnx"
    run = cli("fuse", str(src), "-o", str(out), "--expect", "2")
    assert run.returncode == 1
    assert "expected 2" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()
    assert cli("fuse", str(src), "-o", str(out), "--expect", "1").returncode == 0


def test_a_model_without_rope_is_copied_and_says_so(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["a"], ["b"])],
        "g",
        [helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [2, 8])],
    )
    src, out = tmp_path / "relu.onnx", tmp_path / "out.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)
    run = cli("fuse", str(src), "-o", str(out))
    assert run.returncode == 0 and "no RoPE site was found" in run.stdout
    assert out.read_bytes() == src.read_bytes()
    assert cli("fuse", str(src), "-o", str(tmp_path / "o2.onnx"), "--expect", "1").returncode == 1


def test_same_input_same_bytes_and_fusing_twice_is_a_no_op(tmp_path: Path) -> None:
    src = _decorated(tmp_path)
    a, b, c = (tmp_path / f"{n}.onnx" for n in "abc")
    assert cli("fuse", str(src), "-o", str(a)).returncode == 0
    assert cli("fuse", str(src), "-o", str(b)).returncode == 0
    assert a.read_bytes() == b.read_bytes()
    run = cli("fuse", str(a), "-o", str(c))
    assert run.returncode == 0 and "fused 0" in run.stdout
    assert c.read_bytes() == a.read_bytes()


def test_fuse_verify_passes_on_a_real_export_and_a_failed_check_writes_nothing(tmp_path: Path) -> None:
    from conftest import FIXTURES

    src = FIXTURES / "llama_kvcache_ts_fp16.onnx"
    out, report = tmp_path / "fused.onnx", tmp_path / "report.json"
    run = cli("fuse", str(src), "-o", str(out), "--verify", "--report", str(report))
    assert run.returncode == 0, run.stderr
    assert "PASSED" in run.stdout and out.exists()
    assert json.loads(report.read_text())["verify"]["passed"] is True
    # fp16: the fused op rounds once where the original rounds after each op, so a zero
    # tolerance must fail — and then no model may be left behind.
    strict = tmp_path / "strict.onnx"
    run = cli("fuse", str(src), "-o", str(strict), "--verify", "--atol", "0", "--rtol", "0")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED" in run.stdout and "no model was written" in run.stderr
    assert not strict.exists()


def _with_external_data(tmp_path: Path) -> Path:
    model = build(SPEC)
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.arange(4096, dtype=np.float32), "unused"))
    folder = tmp_path / "src"
    folder.mkdir()
    onnx.save(
        model,
        folder / "site.onnx",
        save_as_external_data=True,
        location="site.onnx.data",
        size_threshold=1024,
    )
    return folder / "site.onnx"


def test_report_may_not_overwrite_the_inputs_weights(tmp_path: Path) -> None:
    src = _with_external_data(tmp_path)
    data = src.parent / "site.onnx.data"
    before = data.read_bytes()
    run = cli("fuse", str(src), "-o", str(tmp_path / "out.onnx"), "--report", str(data))
    assert run.returncode == 2 and "site.onnx.data" in run.stderr
    assert data.read_bytes() == before and not (tmp_path / "out.onnx").exists()


def test_copy_data_gives_the_output_its_own_data_files(tmp_path: Path) -> None:
    src = _with_external_data(tmp_path)
    linked, copied = tmp_path / "linked", tmp_path / "copied"
    linked.mkdir()
    copied.mkdir()
    assert cli("fuse", str(src), "-o", str(linked / "f.onnx"), "--link-data").returncode == 0
    assert (linked / "site.onnx.data").stat().st_nlink == 2  # a hard link, on request only
    assert cli("fuse", str(src), "-o", str(copied / "f.onnx"), "--copy-data").returncode == 0
    assert (copied / "site.onnx.data").stat().st_nlink == 1
    fused = onnx.load(copied / "f.onnx")  # onnx.load refuses hard-linked data; a copy loads
    assert any(n.op_type == "RoPECustomer" for n in fused.graph.node)
