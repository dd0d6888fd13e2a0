"""custom_op/ stays consistent with the Python op contract, and the kernel-sim CLI keeps its promises."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import cli

from rope_onnx.kernel.native import library
from rope_onnx.op import contract

ROOT = Path(__file__).resolve().parents[2]
OP = ROOT / "custom_op"
DT_NAMES = {"DT_FLOAT16": "float16", "DT_FLOAT": "float32", "DT_BF16": "bfloat16"}


def cann_kernel_name(op_type: str) -> str:
    """CANN's op-type -> file / kernel name rule (Ascend C op dev guide, 'operator project build' notice):
    the first capital is lowered; a capital after a lower-case letter or digit, or a capital between a
    capital and a lower-case letter, gets '_' before it; other capitals are lowered."""
    out = []
    for i, ch in enumerate(op_type):
        if ch.isupper() and i > 0:
            prev, nxt = op_type[i - 1], op_type[i + 1] if i + 1 < len(op_type) else ""
            if prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower()):
                out.append("_")
        out.append(ch.lower())
    return "".join(out)


def test_kernel_name_rule_examples_and_files():
    assert cann_kernel_name("AbcDef") == "abc_def"
    assert cann_kernel_name("AbcAAc") == "abc_a_ac"
    assert cann_kernel_name("AddCustom") == "add_custom"
    name = cann_kernel_name(contract.OP_TYPE)
    assert name == "ro_pe_customer"
    assert (OP / "op_host" / f"{name}.cpp").is_file()
    assert (OP / "op_host" / f"{name}_tiling.h").is_file()
    host = (OP / "op_host" / f"{name}.cpp").read_text()
    for key in ("opFile.value", "opInterface.value"):  # pinned, not left to the name rule
        assert f'.ExtendCfgInfo("{key}", "{name}")' in host
    kernel = (OP / "op_kernel" / f"{name}.cpp").read_text()
    assert re.search(
        rf'extern "C" __global__ __aicore__ void {name}\(GM_ADDR x, GM_ADDR cos, GM_ADDR sin, GM_ADDR y,',
        kernel,
    )


def test_plugin_registers_one_key_per_supported_opset():
    from rope_onnx.atc.kernel_choice import BUILTIN_GE_TYPE, BUILTIN_OP_TYPE

    plugin = (OP / "framework" / "onnx_plugin" / "ro_pe_customer_plugin.cc").read_text()
    assert "nlohmann" not in plugin.replace("nlohmann/json.hpp to plugin authors", "")
    registered = re.findall(r'REGISTER_CUSTOM_OP\("(\w+)"\)(.*?)ImplyType', plugin, re.S)
    ge_types = {ge: body for ge, body in registered}
    assert set(ge_types) == {contract.OP_TYPE, BUILTIN_GE_TYPE}
    for ge_type, onnx_type in ((contract.OP_TYPE, contract.OP_TYPE), (BUILTIN_GE_TYPE, BUILTIN_OP_TYPE)):
        keys = re.findall(r'"ai\.onnx::(\d+)::(\w+)"', ge_types[ge_type])
        assert {name for _, name in keys} == {onnx_type}
        assert sorted(int(v) for v, _ in keys) == list(contract.SUPPORTED_OPSETS)
    assert 'opDest.SetAttr("mode", attrs.interleaved);' in plugin
    for attr in (contract.ATTR_INTERLEAVED, contract.ATTR_ROTARY_DIM):
        assert f'"{attr}"' in plugin
    assert f"DEFAULT_INTERLEAVED = {contract.DEFAULT_INTERLEAVED};" in plugin
    assert f"DEFAULT_ROTARY_DIM = {contract.DEFAULT_ROTARY_DIM};" in plugin


def test_op_json_and_opdef_match_the_contract():
    (spec,) = json.loads((OP / "ro_pe_customer.json").read_text())
    assert spec["op"] == contract.OP_TYPE
    assert [d["name"] for d in spec["input_desc"]] == ["x", "cos", "sin"]
    assert [d["name"] for d in spec["output_desc"]] == ["y"]
    union = sorted({t for types in contract.CHIP_DTYPES.values() for t in types})
    for desc in spec["input_desc"] + spec["output_desc"]:
        assert sorted(desc["type"]) == union
    attrs = {a["name"]: a for a in spec["attr"]}
    assert attrs[contract.ATTR_INTERLEAVED]["default_value"] == str(contract.DEFAULT_INTERLEAVED)
    assert attrs[contract.ATTR_ROTARY_DIM]["default_value"] == str(contract.DEFAULT_ROTARY_DIM)
    host = (OP / "op_host" / "ro_pe_customer.cpp").read_text()
    chips = {
        soc: [DT_NAMES[t] for t in re.findall(r"ge::(DT_\w+)", types)]
        for soc, types in re.findall(r'AddChip\("(\w+)", \{([^}]*)\}\);', host)
    }
    assert chips == {soc: list(types) for soc, types in contract.CHIP_DTYPES.items()}
    assert (
        f'Attr("{contract.ATTR_INTERLEAVED}").AttrType(OPTIONAL).Int({contract.DEFAULT_INTERLEAVED})' in host
    )
    assert f'Attr("{contract.ATTR_ROTARY_DIM}").AttrType(OPTIONAL).Int({contract.DEFAULT_ROTARY_DIM})' in host
    presets = json.loads((OP / "CMakePresets.json").read_text())
    units = presets["configurePresets"][0]["cacheVariables"]["ASCEND_COMPUTE_UNIT"]["value"]
    assert units.split(";") == list(contract.CHIP_DTYPES)


def test_tiling_fields_match_the_kernel_params():
    params = (OP / "op_kernel" / "rope_params.h").read_text()
    body = params[
        params.index("struct RopeParams {") : params.index("};", params.index("struct RopeParams {"))
    ]
    fields = [f for line in re.findall(r"uint32_t ([^;]+);", body) for f in re.split(r",\s*", line)]
    assert "half" not in fields  # a built-in type of the device compiler; CANN generates a struct from these
    tiling = (OP / "op_host" / "ro_pe_customer_tiling.h").read_text()
    assert re.findall(r"TILING_DATA_FIELD_DEF\(uint32_t, (\w+)\)", tiling) == fields
    kernel = (OP / "op_kernel" / "ro_pe_customer.cpp").read_text()
    assert re.findall(r"p\.(\w+) = td\.\1;", kernel) == fields


def test_half_conversions_are_exact():
    lib = library()
    import ctypes

    halves = np.arange(65536, dtype=np.uint16)
    as_float = np.empty(65536, np.float32)
    lib.rope_sim_half_to_float(
        halves.ctypes.data_as(ctypes.POINTER(ctypes.c_uint16)),
        as_float.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
        65536,
    )
    expected = halves.view(np.float16).astype(np.float32)
    assert np.array_equal(as_float.view(np.uint32), expected.view(np.uint32))
    rng = np.random.default_rng(0)
    edges = np.array(
        [
            65504,
            65519.99,
            65520,
            2.0**-24,
            2.0**-25,
            2.0**-25 * 1.0001,
            3 * 2.0**-26,
            1e-8,
            2.0**-14,
            2.0**-14 * (1 - 2.0**-12),
            -0.0,
            np.inf,
            -np.inf,
            1 + 2.0**-11,
        ],
        np.float32,
    )
    scaled = rng.standard_normal(200000).astype(np.float32) * 10.0 ** rng.integers(-9, 6, 200000)
    # all float32: an upcast of the halves' NaN bit patterns (dropped just below) warns
    samples = np.concatenate([edges, scaled.astype(np.float32), halves.view(np.float16).astype(np.float32)])
    samples = np.ascontiguousarray(samples[~np.isnan(samples)], dtype=np.float32)
    got = np.empty(samples.size, np.uint16)
    lib.rope_sim_float_to_half(
        samples.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
        got.ctypes.data_as(ctypes.POINTER(ctypes.c_uint16)),
        samples.size,
    )
    with np.errstate(over="ignore"):
        want = samples.astype(np.float16).view(np.uint16)
    assert np.array_equal(got, want)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command in-process (conftest.cli)."""
    return cli(*args, cwd=cwd)


def test_cli_json_line_and_output(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 64)).astype(np.float16)
    cos = rng.standard_normal((5, 64)).astype(np.float16)
    sin = rng.standard_normal((5, 64)).astype(np.float16)
    np.savez(tmp_path / "in.npz", x=x, cos=cos, sin=sin)
    done = run_cli(
        "kernel-sim",
        "--inputs",
        str(tmp_path / "in.npz"),
        "--output",
        str(tmp_path / "out.npz"),
        "--interleaved",
        "0",
        "--soc",
        "ascend310p",
        "--json",
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout  # --json: the report only, one line (docs/reports.md)
    figures = json.loads(lines[0])
    assert (
        list(figures)[:2] == ["schema", "rope_onnx_version"] and figures["schema"] == "rope-onnx/kernel-sim/1"
    )
    assert {
        "gm_bytes_read",
        "gm_bytes_written",
        "min_bytes",
        "ub_peak_bytes",
        "ub_capacity_bytes",
        "blocks",
        "max_abs_err_vs_reference",
        "plan",
    } <= set(figures)
    assert figures["max_abs_err_vs_reference"] == 0.0
    assert figures["ub_capacity_bytes"] == 262144
    assert figures["gm_bytes_read"] + figures["gm_bytes_written"] == figures["min_bytes"]
    with np.load(tmp_path / "out.npz") as out:
        assert out["y"].shape == x.shape and out["y"].dtype == np.float16


@pytest.mark.parametrize(
    "arrays, extra, message",
    [
        ({"x": np.zeros((2, 8), np.float32), "cos": np.zeros((8,), np.float32)}, [], "missing array"),
        (
            {
                "x": np.zeros((2, 8), np.float32),
                "cos": np.zeros((8,), np.float16),
                "sin": np.zeros((8,), np.float16),
            },
            [],
            "dtype",
        ),
        (
            {
                "x": np.zeros((2, 8), np.float32),
                "cos": np.zeros((6,), np.float32),
                "sin": np.zeros((6,), np.float32),
            },
            ["--rotary-dim", "5"],
            "rotary_dim",
        ),
    ],
)
def test_cli_bad_inputs_exit_2_without_traceback(tmp_path, arrays, extra, message):
    np.savez(tmp_path / "in.npz", **arrays)
    done = run_cli(
        "kernel-sim",
        "--inputs",
        str(tmp_path / "in.npz"),
        "--output",
        str(tmp_path / "o.npz"),
        *extra,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.npz").exists()
