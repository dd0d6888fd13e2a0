"""The tiny-model ATC profile against real fused exports: the whole user path up to the ATC command."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, cli

PROFILE = ROOT / "atc_configs" / "tiny-llama_ascend910b3.toml"


@pytest.mark.parametrize(
    ("fixture", "variant"),
    [
        ("llama_base_ts_fp32.onnx", "prefill"),
        ("llama_base_dynamo_fp16.onnx", "prefill"),
        ("llama_kvcache_ts_fp32.onnx", "decode"),
        ("llama_kvcache_dynamo_fp32.onnx", "decode"),
    ],
)
def test_fused_fixture_renders_a_complete_atc_command(tmp_path: Path, fixture: str, variant: str) -> None:
    fused = tmp_path / "fused.onnx"
    assert cli("fuse", str(FIXTURES / fixture), "-o", str(fused), "--expect", "4").returncode == 0
    run = cli("atc", str(fused), "--profile", str(PROFILE), "--variant", variant, "--dry-run")
    assert run.returncode == 0, run.stderr
    argv = shlex.split(run.stdout.strip().splitlines()[-1])
    assert argv[0] == "atc" and "--framework=5" in argv and "--soc_version=Ascend910B3" in argv
    assert f"--model={fused}" in argv
    shapes = next(a for a in argv if a.startswith("--input_shape="))
    wanted = ["input_ids", "attention_mask"] + (["past_key_0", "past_value_1"] if variant == "decode" else [])
    assert all(f"{name}:" in shapes for name in wanted)
    assert "warning" not in run.stderr


def test_an_unfused_export_is_warned_about(tmp_path: Path) -> None:
    run = cli(
        "atc",
        str(FIXTURES / "llama_base_ts_fp32.onnx"),
        "--profile",
        str(PROFILE),
        "--dry-run",
        "--output",
        str(tmp_path / "model"),
    )
    assert run.returncode == 0
    assert "never fused" in run.stderr
