"""``rope-onnx atc --kernel auto|custom`` on the command line (in-process): the dry run prints the atc
command for the marked file and says which kernel each node gets; bad marked-output paths end with
exit 2, one line, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, cli

from rope_onnx.fusion.pipeline import fuse_file

PROFILE = ROOT / "atc_configs" / "tiny-llama_ascend910b3.toml"


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fused") / "llama.onnx"
    fuse_file(FIXTURES / "llama_base_dynamo_fp16.onnx", out, expect=4)
    return out


def test_dry_run_auto_prints_the_command_for_the_marked_file(fused: Path, tmp_path: Path) -> None:
    marked = tmp_path / "marked.onnx"
    before = fused.read_bytes()
    result = cli("atc", str(fused), "--profile", str(PROFILE), "--kernel", "auto", "--marked-output",
                 str(marked), "--output", str(tmp_path / "m"), "--dry-run", "-v")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"--model={marked}" in result.stdout and marked.is_file()
    assert fused.read_bytes() == before
    assert "kernels: 4 fused node(s) on Huawei's built-in RotaryPositionEmbedding, 0 on" in result.stderr
    assert f"ATC gets {marked}" in result.stderr
    assert result.stderr.count("kernel[") == 4  # -v: one line per node


def test_custom_default_hints_at_auto_and_reports_the_input(fused: Path, tmp_path: Path) -> None:
    result = cli("atc", str(fused), "--profile", str(PROFILE), "--output", str(tmp_path / "m"),
                 "--dry-run", "--report", "-", "-v")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kernel"] == "custom" and report["atc_model"] == str(fused)
    assert report["argv"][2] == f"--model={fused}"
    assert "4 of them eligible for the built-in op: --kernel auto" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (("--kernel", "builtin"), "invalid choice"),
        (("--marked-output", "{tmp}/x.onnx"), "add --kernel auto"),
        (("--kernel", "auto", "--marked-output", "{model}"), "equals the input"),
        (("--kernel", "auto", "--marked-output", "{tmp}/nowhere/x.onnx"), "does not exist"),
    ],
)
def test_bad_kernel_options_exit_2_in_one_line(fused: Path, tmp_path: Path, extra, says: str) -> None:
    args = [a.format(tmp=tmp_path, model=fused) for a in extra]
    before = fused.read_bytes()
    out = str(tmp_path / "m")
    result = cli("atc", str(fused), "--profile", str(PROFILE), "--output", out, "--dry-run", *args)
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr
    assert fused.read_bytes() == before and not list(tmp_path.iterdir())
