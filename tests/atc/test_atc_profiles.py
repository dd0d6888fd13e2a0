"""Shipped ATC profiles: they parse, and each renders a golden command against a model with the
input names of its model class; bad profiles are refused with the wrong key named."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import cli as run_cli
from test_atc_models import llm_inputs, make_model, save

from rope_onnx.atc.profile import load_profile
from rope_onnx.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "atc_configs"
SHIPPED = sorted(CONFIGS.glob("*.toml"))
# model class of each profile: (layers, kv_heads, head_dim, prefill has position_ids, past name pattern)
CLASSES = {
    "llama2-7b": (32, 32, 128, True, "past_key_values.{i}.{kv}"),
    "qwen2-7b": (28, 4, 128, True, "past_key_values.{i}.{kv}"),
    "tiny-llama": (2, 1, 16, False, "past_{kv}_{i}"),
}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The command in-process (conftest.cli); ``env`` adds to the environment rather than replacing it."""
    return run_cli(*args, cwd=ROOT, env={**os.environ, **env} if env else None)


def standin(profile: Path, variant: str, folder: Path, dtype: str = "float16") -> Path:
    layers, kv, head_dim, position_ids, past = CLASSES[profile.stem.split("_")[0]]
    inputs = llm_inputs(
        layers,
        kv,
        head_dim,
        decode=variant == "decode",
        position_ids=position_ids or variant == "decode",
        past_name=past,
        dtype=dtype,
    )
    return save(make_model(inputs, head_dim=head_dim, dtype=dtype), folder / f"{profile.stem}_{variant}.onnx")


def test_every_model_class_and_chip_is_shipped():
    names = {p.stem for p in SHIPPED}
    assert {
        "llama2-7b_ascend910b3",
        "llama2-7b_ascend310p3",
        "qwen2-7b_ascend910b3",
        "qwen2-7b_ascend310p3",
        "tiny-llama_ascend910b3",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_profile_parses_with_both_variants(path):
    profile = load_profile(path)
    assert set(profile.variants) == {"prefill", "decode"}
    assert profile.soc_version in ("Ascend910B3", "Ascend310P3")
    assert profile.warnings == []
    assert profile.output_name == path.stem


GOLDEN_PREFILL = {
    "llama2-7b_ascend910b3": "--soc_version=Ascend910B3 --input_format=ND "
    "'--input_shape=input_ids:1,-1;attention_mask:1,-1;position_ids:1,-1' "
    "'--dynamic_dims=128,128,128;256,256,256;512,512,512;1024,1024,1024;2048,2048,2048;4096,4096,4096' "
    "--precision_mode=must_keep_origin_dtype --log=error",
    "llama2-7b_ascend310p3": "--soc_version=Ascend310P3 --input_format=ND "
    "'--input_shape=input_ids:1,-1;attention_mask:1,-1;position_ids:1,-1' "
    "'--dynamic_dims=128,128,128;256,256,256;512,512,512;1024,1024,1024;2048,2048,2048' "
    "--precision_mode=force_fp16 --keep_dtype=atc_configs/keep_dtype_rope.cfg --log=error",
    "qwen2-7b_ascend910b3": "--soc_version=Ascend910B3 --input_format=ND "
    "'--input_shape=input_ids:1,-1;attention_mask:1,-1;position_ids:1,-1' "
    "'--dynamic_dims=128,128,128;256,256,256;512,512,512;1024,1024,1024;2048,2048,2048;4096,4096,4096;"
    "8192,8192,8192' --precision_mode=must_keep_origin_dtype --log=error",
    "qwen2-7b_ascend310p3": "--soc_version=Ascend310P3 --input_format=ND "
    "'--input_shape=input_ids:1,-1;attention_mask:1,-1;position_ids:1,-1' "
    "'--dynamic_dims=128,128,128;256,256,256;512,512,512;1024,1024,1024;2048,2048,2048' "
    "--precision_mode=force_fp16 --keep_dtype=atc_configs/keep_dtype_rope.cfg --log=error",
    "tiny-llama_ascend910b3": "--soc_version=Ascend910B3 --input_format=ND "
    "'--input_shape=input_ids:1,-1;attention_mask:1,-1' '--dynamic_dims=8,8;16,16;32,32;64,64' "
    "--precision_mode=must_keep_origin_dtype --log=info",
}


@pytest.mark.parametrize("name", sorted(GOLDEN_PREFILL))
def test_prefill_dry_run_prints_the_golden_command(name, tmp_path):
    model = standin(CONFIGS / f"{name}.toml", "prefill", tmp_path)
    run = cli("atc", str(model), "--profile", f"atc_configs/{name}.toml", "--dry-run")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1
    expected = (
        f"atc --framework=5 --model={model} --output={tmp_path / (name + '_prefill')} " + GOLDEN_PREFILL[name]
    )
    assert lines[0] == expected
    assert run.stderr == ""


def test_tiny_decode_dry_run_prints_the_golden_command(tmp_path):
    model = standin(CONFIGS / "tiny-llama_ascend910b3.toml", "decode", tmp_path)
    (tmp_path / "out").mkdir()
    run = cli(
        "atc",
        str(model),
        "--profile",
        "atc_configs/tiny-llama_ascend910b3.toml",
        "--variant",
        "decode",
        "--output",
        str(tmp_path / "out" / "tiny.om"),
        "--dry-run",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        f"atc --framework=5 --model={model} --output={tmp_path / 'out' / 'tiny'} --soc_version=Ascend910B3 "
        "--input_format=ND '--input_shape=input_ids:1,1;attention_mask:1,2~64;position_ids:1,1;"
        "past_key_0:1,1,1~63,16;past_value_0:1,1,1~63,16;past_key_1:1,1,1~63,16;past_value_1:1,1,1~63,16' "
        "--precision_mode=must_keep_origin_dtype --log=info\n"
    )


@pytest.mark.parametrize(
    ("name", "layers", "kv", "past"),
    [
        ("llama2-7b_ascend910b3", 32, 32, "1~4095"),
        ("llama2-7b_ascend310p3", 32, 32, "1~2047"),
        ("qwen2-7b_ascend910b3", 28, 4, "1~8191"),
        ("qwen2-7b_ascend310p3", 28, 4, "1~4095"),
    ],
)
def test_7b_decode_dry_run_lists_every_layer(name, layers, kv, past, tmp_path):
    model = standin(CONFIGS / f"{name}.toml", "decode", tmp_path)
    run = cli("atc", str(model), "--profile", f"atc_configs/{name}.toml", "--variant", "decode", "--dry-run")
    assert run.returncode == 0, run.stderr
    argv = shlex.split(run.stdout)
    shape = next(a for a in argv if a.startswith("--input_shape=")).removeprefix("--input_shape=").split(";")
    hi = int(past.split("~")[1])
    assert shape[:3] == ["input_ids:1,1", f"attention_mask:1,2~{hi + 1}", "position_ids:1,1"]
    assert len(shape) == 3 + 2 * layers
    assert shape[3] == f"past_key_values.0.key:1,{kv},{past},128"
    assert shape[-1] == f"past_key_values.{layers - 1}.value:1,{kv},{past},128"
    assert not any(a.startswith("--dynamic_dims") for a in argv)


def test_paths_with_spaces_are_quoted_and_round_trip(tmp_path):
    folder = tmp_path / "my models; v1"
    folder.mkdir()
    model = standin(CONFIGS / "tiny-llama_ascend910b3.toml", "prefill", folder)
    run = cli("atc", str(model), "--profile", "atc_configs/tiny-llama_ascend910b3.toml", "--dry-run")
    assert run.returncode == 0, run.stderr
    argv = shlex.split(run.stdout)
    assert argv[2] == f"--model={model}"
    assert argv[3] == f"--output={folder / 'tiny-llama_ascend910b3_prefill'}"


def test_soc_override_within_family_and_refusals(tmp_path):
    model = standin(CONFIGS / "llama2-7b_ascend910b3.toml", "prefill", tmp_path)
    profile = "atc_configs/llama2-7b_ascend910b3.toml"
    run = cli("atc", str(model), "--profile", profile, "--soc", "Ascend910B2", "--dry-run")
    assert run.returncode == 0 and "--soc_version=Ascend910B2 " in run.stdout
    run = cli("atc", str(model), "--profile", profile, "--soc", "Ascend910B", "--dry-run")
    assert run.returncode == 2 and "chip family, not a chip" in run.stderr
    run = cli("atc", str(model), "--profile", profile, "--soc", "Ascend310P3", "--dry-run")
    assert run.returncode == 2 and "use a profile for this chip family" in run.stderr
    assert len(run.stderr.splitlines()) == 1


MK = 'precision_mode = "must_keep_origin_dtype"'
KV = 'shape = ["batch", "num_kv_heads", "past", "head_dim"] },\n  { name = "past_value'
BASE = (CONFIGS / "tiny-llama_ascend910b3.toml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('soc_version = "Ascend910B3"', 'soc_version = "Ascend910B"', "[target].soc_version"),
        ('soc_version = "Ascend910B3"', 'soc_version = "Ascend310"', "[target].soc_version"),
        ('level = "info"', 'level = "verbose"', "[log].level"),
        (MK, 'precision_mode = "force_fp16"', "[precision].precision_mode"),
        (MK, MK + '\nprecision_mode_v2 = "origin"', "[precision].precision_mode"),
        (MK, MK + '\nkeep_dtype = "keep_dtype_rope.cfg"', "[precision].keep_dtype"),
        (MK, 'precisoin_mode = "origin"', "[precision].precisoin_mode"),
        ("seq = [8, 16, 32, 64]", "seq = [8]", "[variants.prefill].dims.seq"),
        ("seq = [8, 16, 32, 64]", 'seq = "8~64"', "[variants.prefill].dims.seq"),
        ('past = "1~63"', "past = [8, 16]", "[variants.decode].dims.past"),
        (
            '{ name = "input_ids", shape = ["batch", "seq"] }',
            '{ name = "input_ids", shape = ["batch", "sq"] }',
            "[variants.prefill].inputs[0].shape[1]",
        ),
        (
            '{ name = "past_key_{i}", repeat',
            '{ name = "past_key", repeat',
            "[variants.decode].inputs[3].name",
        ),
        ('repeat = "num_layers", ' + KV, 'repeat = "layers", ' + KV, "[variants.decode].inputs[3].repeat"),
        ("[variants.decode]", "[variants.generate]", "[variants.generate]"),
        ('vendor = "rope_onnx"', 'vendor = "../etc"', "[custom_op].vendor"),
        ('name = "tiny-llama_ascend910b3"\n\n[custom_op]', 'name = "a/b"\n\n[custom_op]', "[output].name"),
    ],
)
def test_bad_profile_names_the_wrong_key(tmp_path, old, new, key):
    assert old in BASE
    path = tmp_path / "bad.toml"
    path.write_text(BASE.replace(old, new, 1))
    (tmp_path / "keep_dtype_rope.cfg").write_text("OpType::RoPECustomer\n")
    with pytest.raises(InputError) as info:
        load_profile(path)
    assert f"{path}: {key}" in str(info.value)


def test_bf16_precision_is_refused_on_310p(tmp_path):
    path = tmp_path / "p.toml"
    text = (CONFIGS / "llama2-7b_ascend310p3.toml").read_text()
    path.write_text(text.replace('precision_mode = "force_fp16"', 'precision_mode = "allow_fp32_to_bf16"'))
    (tmp_path / "keep_dtype_rope.cfg").write_text("OpType::RoPECustomer\n")
    with pytest.raises(InputError, match=r"precision_mode: 'allow_fp32_to_bf16' needs bfloat16"):
        load_profile(path)


def test_keep_dtype_file_must_name_the_op(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text((CONFIGS / "llama2-7b_ascend310p3.toml").read_text())
    (tmp_path / "keep_dtype_rope.cfg").write_text("OpType::Relu\n")
    with pytest.raises(InputError, match=r"keep_dtype: .* must contain the line 'OpType::RoPECustomer'"):
        load_profile(path)


def test_wide_gears_warn_about_old_cann_limit(tmp_path):
    path = tmp_path / "p.toml"
    text = BASE.replace(
        'mode = "range"\ndims = { batch = 1, past = "1~63" }',
        'mode = "dynamic_dims"\ndims = { batch = 1, past = [16, 32] }',
    )
    path.write_text(text)
    profile = load_profile(path)
    assert profile.variants["decode"].dynamic_dims == "17,16,16,16,16;33,32,32,32,32"
    assert "older CANN releases accept at most 4" in profile.warnings[0]


def test_bad_profile_on_the_command_line_is_exit_2_one_line(tmp_path):
    model = standin(CONFIGS / "tiny-llama_ascend910b3.toml", "prefill", tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace('level = "info"', 'level = "loud"'))
    run = cli("atc", str(model), "--profile", str(bad), "--dry-run")
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"rope-onnx atc: error: {bad}: [log].level: 'loud' is not one of: debug, info, warning, error, null"
    ]
