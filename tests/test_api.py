"""The public library API: what README's "Library API" section promises, run in-process.

``import rope_onnx`` gives the fusion pass, verification, the result and error types and the
NumPy reference; it must stay light (no ONNX Runtime until a verification runs), and a wrong
argument type must fail at the call with a TypeError, not deep inside the pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import rope_onnx
from rope_onnx import (
    CheckFailed,
    FuseResult,
    InputError,
    RopeOnnxError,
    VerifyOptions,
    VerifyResult,
    fuse_file,
    fuse_model,
    rope,
    verify_models,
)

ROOT = Path(__file__).resolve().parents[1]
LLAMA = ROOT / "models" / "fixtures" / "llama_base_ts_fp32.onnx"


def test_readme_example_fuses_and_verifies_in_process() -> None:
    model = onnx.load(str(LLAMA), load_external_data=False)
    result = fuse_model(model)  # rewrites the ModelProto in place
    assert isinstance(result, FuseResult) and result.fused == 4 and not result.skipped
    assert sum(n.op_type == "RoPECustomer" for n in model.graph.node) == 4
    report = verify_models(LLAMA, model)
    assert isinstance(report, VerifyResult) and report.passed and report.mode == "full"
    assert "PASSED" in report.render() and "FAILED" not in report.render()
    assert verify_models(LLAMA, model, VerifyOptions(sites=True)).passed


def test_fuse_file_writes_the_same_model_the_cli_writes(tmp_path: Path, cli) -> None:
    library = fuse_file(LLAMA, tmp_path / "api.onnx", verify=VerifyOptions())
    assert library.fused == 4 and library.verification is not None and library.verification.passed
    assert cli("fuse", str(LLAMA), "-o", str(tmp_path / "cli.onnx")).returncode == 0
    assert (tmp_path / "api.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()


def test_every_name_in_all_exists_and_the_version_is_one_string(cli) -> None:
    assert sorted(rope_onnx.__all__) == sorted(set(rope_onnx.__all__))
    missing = [name for name in rope_onnx.__all__ if not hasattr(rope_onnx, name)]
    assert missing == []
    for name in ("fuse_model", "fuse_file", "verify_models", "VerifyOptions", "rope", "__version__"):
        assert name in rope_onnx.__all__
    assert issubclass(InputError, RopeOnnxError) and issubclass(CheckFailed, RopeOnnxError)
    run = cli("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"rope-onnx {rope_onnx.__version__}"


def test_the_reference_is_exported() -> None:
    x = np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8)
    y = rope(x, np.ones((1, 8), np.float32), np.zeros((1, 8), np.float32), interleaved=1, rotary_dim=8)
    np.testing.assert_array_equal(y, x)  # cos = 1, sin = 0: the identity rotation


#: Entry points that take a ModelProto; fuse_model joins once rope_onnx.fusion calls require_model_proto.
TAKES_A_MODEL = [verify_models, lambda model, _: fuse_model(model)]


@pytest.mark.parametrize("call", TAKES_A_MODEL)
def test_a_non_model_proto_is_a_type_error_naming_both(call) -> None:
    with pytest.raises(TypeError, match=r"expected an onnx\.ModelProto.*got builtins\.dict"):
        call({}, {})
    onnx_ir = pytest.importorskip("onnx_ir")  # what onnx_ir users hold: the hint names the conversion
    model = onnx_ir.serde.deserialize_model(onnx.load(str(LLAMA), load_external_data=False))
    with pytest.raises(TypeError, match=r"got onnx_ir\.Model; convert .*onnx_ir\.serde\.serialize_model"):
        call(model, model)


def test_bad_options_are_refused_by_the_library_itself(tmp_path: Path) -> None:
    for bad in ({"atol": -1.0}, {"rtol": float("nan")}, {"dims": {"seq": 0}}, {"seed": -1}):
        with pytest.raises(InputError):
            VerifyOptions(**bad)
    with pytest.raises(InputError, match="choose one"):
        VerifyOptions(sites=True, inputs=tmp_path / "feeds.npz")


def test_importing_the_package_does_not_import_onnxruntime() -> None:
    code = "import rope_onnx, sys; print('onnxruntime' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
