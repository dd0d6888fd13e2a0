"""rope-onnx verify end to end on hand-built pairs: passes, failures that point at the site, exit codes.

Everything runs on the real ONNX Runtime CPU provider (nothing is mocked).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from rope_onnx.errors import InputError
from rope_onnx.io.load import load_model
from rope_onnx.verify import VerifyOptions, verify_models
from tests.test_verify_graphs import HEAD_DIM, HEADS, VOCAB, save, tiny_llm

ROOT = Path(__file__).resolve().parents[1]
DTYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "rope_onnx", "verify", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def pair(tmp_path: Path, dtype: str = "float32", form: str = "half", corrupt: str = "", external=False):
    elem = DTYPES[dtype]
    original = save(tiny_llm(elem, form), tmp_path / "model.onnx", external)
    fused = save(tiny_llm(elem, form, fused=True, corrupt=corrupt), tmp_path / "fused.onnx", external)
    return original, fused


@pytest.mark.parametrize("form", ["half", "complex"])
@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_a_correct_fusion_passes_both_in_a_full_run_and_site_by_site(tmp_path, dtype, form):
    original, fused = pair(tmp_path, dtype, form)
    full = verify_models(original, fused)
    assert full.passed, full.render()
    assert {(r.name, r.kind) for r in full.results} == {
        ("logits", "output"),
        ("present_key", "output"),
        ("q_embed", "site"),
        ("k_embed", "site"),
    }
    assert all(r.dtype == dtype for r in full.results)
    local = verify_models(original, fused, VerifyOptions(sites=True))
    assert local.passed, local.render()
    assert [r.name for r in local.results] == ["q_embed", "k_embed"]
    assert ("upcast to float32" in " ".join(full.notes)) == (dtype == "bfloat16")


@pytest.mark.parametrize("sites", [False, True], ids=["full", "sites"])
@pytest.mark.parametrize("form", ["half", "complex"])
@pytest.mark.parametrize("corrupt", ["swap", "interleaved"])
def test_a_wrong_site_fails_with_exit_1_and_the_report_points_at_it(tmp_path, corrupt, form, sites):
    original, fused = pair(tmp_path, form=form, corrupt=corrupt)
    report = tmp_path / "report.json"
    proc = cli(original, fused, "--report", str(report), *(["--sites"] if sites else []))
    assert proc.returncode == 1, proc.stderr
    assert "FAILED" in proc.stdout and "Traceback" not in proc.stderr
    data = json.loads(report.read_text())
    assert data["passed"] is False
    by_name = {r["name"]: r for r in data["results"]}
    assert by_name["k_embed"]["passed"] is False and by_name["k_embed"]["kind"] == "site"
    assert by_name["k_embed"]["node"] == "/rope_k"
    assert by_name["k_embed"]["min_passing_atol"] > 0.1
    assert by_name["q_embed"]["passed"] is True
    keys = {"name", "kind", "atol", "rtol", "max_abs", "mean_abs", "max_rel", "min_passing_atol", "passed"}
    assert all(keys <= set(r) for r in data["results"])


def test_cli_passes_with_exit_0_prints_the_tolerances_and_leaves_files_unchanged(tmp_path):
    original, fused = pair(tmp_path, "float16")
    before = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (original, fused)]
    report = tmp_path / "out" / "r.json"
    report.parent.mkdir()
    proc = cli(original, fused, "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    assert "default tolerances (outputs): float32 atol=0.0001 rtol=0.001, float16 atol=0.02" in proc.stdout
    assert "PASSED: 4 of 4" in proc.stdout
    assert json.loads(report.read_text())["passed"] is True
    assert before == [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (original, fused)]
    assert sorted(p.name for p in report.parent.iterdir()) == ["r.json"]  # no temporary left behind


def test_unrelated_models_error_with_exit_2_and_one_line(tmp_path):
    original, _ = pair(tmp_path)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["a"], ["b"])],
        "other",
        [onnx.helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])],
    )
    other = save(
        onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), tmp_path / "o.onnx"
    )
    proc = cli(original, other)
    assert proc.returncode == 2
    assert "do not correspond" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_a_fused_model_whose_site_is_not_in_the_original_errors_with_exit_2(tmp_path):
    original, fused = pair(tmp_path)
    model = onnx.load(fused)
    for node in model.graph.node:  # rename the k site's output: it no longer exists in the original
        node.output[:] = ["k_other" if o == "k_embed" else o for o in node.output]
        node.input[:] = ["k_other" if i == "k_embed" else i for i in node.input]
    onnx.save(model, fused)
    proc = cli(original, fused)
    assert proc.returncode == 2 and "k_other" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("bad", ["missing.onnx", "empty", "text"])
def test_unreadable_files_exit_2(tmp_path, bad):
    original, _ = pair(tmp_path)
    path = tmp_path / bad
    if bad == "empty":
        path.write_bytes(b"")
    elif bad == "text":
        path.write_text("not a model")
    proc = cli(original, str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_sites_runs_without_the_weight_files_and_the_full_run_refuses(tmp_path):
    original, fused = pair(tmp_path, external=True)
    data = sorted(tmp_path.glob("*.data"))
    assert len(data) == 2
    for path in data:
        path.unlink()
    proc = cli(original, fused, "--sites")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "no weights read" in proc.stdout
    full = cli(original, fused)
    assert full.returncode == 2 and "missing" in full.stderr


def test_full_run_reads_external_weights_from_the_models_folder(tmp_path):
    original, fused = pair(tmp_path, external=True)
    result = verify_models(original, fused)
    assert result.passed, result.render()


def test_real_feeds_from_npz_are_used_and_checked(tmp_path):
    original, fused = pair(tmp_path)
    rng = np.random.default_rng(3)
    feeds = {
        "input_ids": rng.integers(0, VOCAB, (1, 4)),
        "attention_mask": np.ones((1, 6), np.int64),
        "position_ids": np.arange(2, 6)[None],
        "past_key": rng.standard_normal((1, HEADS, 2, HEAD_DIM)).astype(np.float32),
    }
    good = tmp_path / "feeds.npz"
    np.savez(good, **feeds)
    result = verify_models(original, fused, VerifyOptions(inputs=good))
    assert result.passed, result.render()
    assert result.dims == {
        "batch_size": 1,
        "sequence_length": 4,
        "past_sequence_length": 2,
        "past_sequence_length + sequence_length": 6,
    }
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in feeds.items() if k != "past_key"})
    proc = cli(original, fused, "--inputs", str(missing))
    assert proc.returncode == 2 and "past_key" in proc.stderr
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **{**feeds, "position_ids": np.arange(5)[None]})
    proc = cli(original, fused, "--inputs", str(wrong))
    assert proc.returncode == 2 and "sequence_length" in proc.stderr
    mask = tmp_path / "mask.npz"
    np.savez(mask, **{**feeds, "attention_mask": np.ones((1, 5), np.int64)})
    proc = cli(original, fused, "--inputs", str(mask))
    assert proc.returncode == 2 and "add up to 6" in proc.stderr
    badtype = tmp_path / "badtype.npz"
    np.savez(badtype, **{**feeds, "past_key": feeds["past_key"].astype(np.float64)})
    assert cli(original, fused, "--inputs", str(badtype)).returncode == 2


def test_dim_overrides_reach_the_feeds_and_bad_options_exit_2(tmp_path):
    original, fused = pair(tmp_path)
    result = verify_models(
        original, fused, VerifyOptions(dims={"sequence_length": 3, "past_sequence_length": 1})
    )
    assert result.passed
    assert result.dims["past_sequence_length + sequence_length"] == 4
    for bad in (["--dim", "seq"], ["--dim", "seq=0"], ["--atol", "-1"]):
        proc = cli(original, fused, *bad)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, bad
    assert cli(original, fused, "--report", original).returncode == 2  # never overwrite an input


def test_explicit_tolerances_are_used(tmp_path):
    original, fused = pair(tmp_path, corrupt="swap")
    loose = verify_models(original, fused, VerifyOptions(atol=100.0, rtol=0.0))
    assert loose.passed and all(r.atol == 100.0 and r.rtol == 0.0 for r in loose.results)


def test_library_accepts_loaded_models_and_in_memory_protos(tmp_path):
    """What ``fuse --verify`` does: the original as loaded, the fused model still in memory."""
    original, _ = pair(tmp_path, external=True)
    loaded = load_model(original)
    result = verify_models(loaded, tiny_llm(fused=True))
    assert result.passed and result.fused == "fused (in memory)"
    assert not verify_models(loaded, tiny_llm(fused=True, corrupt="swap")).passed
    with pytest.raises(InputError):
        verify_models(loaded, tiny_llm(fused=True), VerifyOptions(sites=True, inputs=tmp_path / "x.npz"))
