"""Profiles that travel and fit the graph: found by name from any folder, shipped in the wheel, inputs
matched by role, sizes read from the graph, ``--set`` / ``--atc-arg``; chip names as ATC spells them."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT
from test_atc_models import llm_inputs, make_model, save

from rope_onnx.atc.catalog import resolve_profile, shipped_profiles
from rope_onnx.cli.app import main

TINY = "tiny-llama_ascend910b3"
OPTIMUM = "optimum-decoder_ascend910b3"


def command(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["atc", *args])
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    return code, shlex.split(lines[-1]) if code == 0 and lines else [], out.err


def flag(argv: list[str], name: str) -> str:
    return next(a for a in argv if a.startswith(f"--{name}=")).split("=", 1)[1]


def tiny_prefill(tmp_path: Path, **kwargs) -> Path:
    inputs = llm_inputs(2, 1, 16, decode=False, position_ids=False)
    return save(make_model(inputs, head_dim=16, **kwargs), tmp_path / "fused.onnx")


def test_a_shipped_profile_is_found_by_name_from_any_folder(tmp_path, capsys, monkeypatch):
    model = tiny_prefill(tmp_path)
    by_path = command(
        capsys, str(model), "--profile", str(ROOT / "atc_configs" / f"{TINY}.toml"), "--dry-run"
    )
    monkeypatch.chdir(tmp_path)
    by_name = command(capsys, str(model), "--profile", TINY, "--dry-run")
    assert by_name[0] == 0 and by_name[1][1:] == by_path[1][1:]  # the keep_dtype path aside, one command
    assert main(["atc", str(model), "--profile", "tiny-llama"]) == 2
    err = capsys.readouterr().err
    assert "no shipped profile" in err and TINY in err and err.count("\n") == 1
    assert main(["atc", "--list-profiles"]) == 0
    listed = capsys.readouterr().out
    assert all(p.name in listed for p in shipped_profiles()) and OPTIMUM in listed
    assert main(["atc", "--profile", TINY]) == 2  # a model is needed unless --list-profiles


def test_profiles_ship_in_the_wheel_as_package_data(tmp_path):
    """pyproject maps rope_onnx/profiles onto atc_configs/; an installed layout finds them by name."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert config["package-dir"]["rope_onnx.profiles"] == "atc_configs"
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "rope_onnx").rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"rope_onnx.profiles"}  # a new sub-package must be listed
    globs = config["package-data"]["rope_onnx.profiles"]
    shipped = {p.name for p in (ROOT / "atc_configs").iterdir() if p.is_file()}
    assert {n for n in shipped if any(Path(n).match(g) for g in globs)} == shipped
    site = tmp_path / "site"  # what the wheel installs: the package, with the profiles inside it
    shutil.copytree(ROOT / "rope_onnx", site / "rope_onnx", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "atc_configs", site / "rope_onnx" / "profiles")
    probe = (
        "from rope_onnx.atc.catalog import resolve_profile; from rope_onnx.atc.profile import load_profile;"
        f"p = resolve_profile('{TINY}'); print(p); print(load_profile(p).soc_version)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    found, chip = run.stdout.split()
    assert Path(found) == site / "rope_onnx" / "profiles" / f"{TINY}.toml" and chip == "Ascend910B3"


def test_a_7b_profile_fits_an_export_without_position_ids(tmp_path, capsys):
    inputs = llm_inputs(32, 32, 128, decode=False, position_ids=False)
    model = save(make_model(inputs, head_dim=128, dtype="float16"), tmp_path / "p.onnx")
    code, argv, err = command(capsys, str(model), "--profile", "llama2-7b_ascend910b3", "--dry-run")
    assert code == 0, err
    assert flag(argv, "input_shape") == "input_ids:1,-1;attention_mask:1,-1"
    assert flag(argv, "dynamic_dims").startswith("128,128;256,256;")


@pytest.mark.parametrize("past_name", ["past_key_values.{i}.{kv}", "past_{kv}_{i}", "past.{i}.{kv}"])
def test_the_optimum_profile_reads_layers_heads_and_head_dim_from_the_graph(tmp_path, capsys, past_name):
    inputs = llm_inputs(3, 4, 32, decode=True, past_name=past_name, dtype="float16")
    model = save(make_model(inputs, head_dim=32, dtype="float16"), tmp_path / "d.onnx")
    code, argv, err = command(capsys, str(model), "--profile", OPTIMUM, "--variant", "decode", "--dry-run")
    assert code == 0, err
    shapes = flag(argv, "input_shape").split(";")
    assert shapes[:3] == ["input_ids:1,1", "attention_mask:1,2~2048", "position_ids:1,1"]
    pasts = shapes[3:]
    assert len(pasts) == 2 * 3 and all(s.endswith(":1,4,1~2047,32") for s in pasts)
    assert pasts[0].startswith(past_name.format(i=0, kv="key") + ":")
    assert pasts[1].startswith(past_name.format(i=0, kv="value") + ":")
    assert "num_kv_heads = 4" in err and "head_dim = 32" in err  # what was read is said


def test_the_optimum_profile_on_a_real_fused_kv_cache_export(tmp_path, capsys):
    fused = tmp_path / "fused.onnx"
    assert (
        main(["fuse", str(FIXTURES / "llama_kvcache_ts_fp32.onnx"), "-o", str(fused), "--expect", "4"]) == 0
    )
    capsys.readouterr()
    code, argv, err = command(capsys, str(fused), "--profile", OPTIMUM, "--variant", "decode", "--dry-run")
    assert code == 0, err
    shapes = flag(argv, "input_shape").split(";")
    assert [s.split(":")[0] for s in shapes[-4:]] == [
        "past_key_0",
        "past_value_0",
        "past_key_1",
        "past_value_1",
    ]
    assert all(s.endswith(":1,1,1~2047,16") for s in shapes[-4:])  # 1 KV head, head_dim 16, from the graph


def test_a_pinned_size_that_the_graph_contradicts_fails_the_preflight(tmp_path, capsys):
    inputs = llm_inputs(2, 4, 128, decode=True, dtype="float16")  # 2 layers where the 7B profile pins 28
    model = save(make_model(inputs, head_dim=128, dtype="float16"), tmp_path / "d.onnx")
    assert (
        main(["atc", str(model), "--profile", "qwen2-7b_ascend910b3", "--variant", "decode", "--dry-run"])
        == 1
    )
    assert "2 layers" in capsys.readouterr().err


def test_set_overrides_a_profile_value_and_is_validated_like_the_file(tmp_path, capsys):
    model = tiny_prefill(tmp_path)
    code, argv, _ = command(
        capsys, str(model), "--profile", TINY, "--dry-run", "--set", "variants.prefill.dims.seq=[16, 32]",
        "--set", "log.level=debug",
    )  # fmt: skip
    assert code == 0
    assert flag(argv, "dynamic_dims") == "16,16;32,32" and flag(argv, "log") == "debug"
    for bad, needle in (
        (["--set", "log.level=loud"], "[log].level"),
        (["--set", "log.colour=red"], "unknown key"),
        (["--set", "nodots=1"], "--set"),
        (["--set", "target.soc_version=Ascend910B"], "chip family"),
    ):
        assert main(["atc", str(model), "--profile", TINY, "--dry-run", *bad]) == 2, bad
        assert needle in capsys.readouterr().err, bad


def test_atc_arg_passes_a_flag_through_and_refuses_one_the_profile_renders(tmp_path, capsys):
    model = tiny_prefill(tmp_path)
    code, argv, _ = command(
        capsys, str(model), "--profile", TINY, "--dry-run", "--atc-arg=--op_debug_level=0"
    )
    assert code == 0 and argv[-1] == "--op_debug_level=0"
    assert (
        main(["atc", str(model), "--profile", TINY, "--dry-run", "--atc-arg=--soc_version=Ascend910B2"]) == 2
    )
    assert "use --soc" in capsys.readouterr().err
    assert main(["atc", str(model), "--profile", TINY, "--dry-run", "--atc-arg=op_debug_level"]) == 2


def test_resolve_profile_keeps_paths_as_paths(tmp_path):
    assert resolve_profile("some/dir/x.toml") == Path("some/dir/x.toml")
    assert resolve_profile(TINY).name == f"{TINY}.toml"
