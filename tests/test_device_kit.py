"""The device check kit (custom_op/tests/): its vectors come from the NumPy reference, and the g++ host
build of the kernel reproduces every one of them bit for bit on each chip it is meant for -- and refuses
it on the chips it is not meant for.  The runner itself needs an Ascend host and is not run here."""

from __future__ import annotations

import ctypes
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rope_onnx.kernel.chips import CHIPS
from rope_onnx.kernel.native import SimStats, library
from rope_onnx.op.reference import rope

KIT = Path(__file__).resolve().parent.parent / "custom_op" / "tests"
CODES = {"float32": 0, "float16": 1, "bfloat16": 2}


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, KIT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


vectors = _module("rope_vectors")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("vectors")
    run = subprocess.run([sys.executable, str(KIT / "rope_vectors.py"), str(folder)], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return vectors.load(folder)


def host_run(case, data, family: str) -> tuple[int, np.ndarray, str]:
    chip = CHIPS[family]
    x, cos, sin = (vectors.bits(data[k]) for k in ("x", "cos", "sin"))
    y = np.zeros_like(x)
    err = ctypes.create_string_buffer(512)

    def shape(a):
        return (ctypes.c_int64 * a.ndim)(*a.shape)

    status = library().rope_sim_run(
        CODES[case.dtype], x.ctypes.data, shape(x), x.ndim, cos.ctypes.data, shape(cos), cos.ndim,
        sin.ctypes.data, shape(sin), sin.ndim, y.ctypes.data, case.interleaved, case.rotary_dim,
        chip.cores, chip.ub_bytes, chip.sim_flags, ctypes.byref(SimStats()), err, len(err),
    )  # fmt: skip
    return status, y, err.value.decode()


def test_the_kit_covers_what_the_issue_lists(written) -> None:
    kinds = {case.dtype for case, _ in written}
    assert kinds == {"float16", "bfloat16", "float32"}
    assert any(case.x_shape[2] == 1 for case, _ in written)  # decode
    assert any(case.rotary_dim for case, _ in written)  # partial rotary
    assert {case.interleaved for case, _ in written} == {0, 1}
    assert {len(case.table_shape) for case, _ in written} == {2, 4}  # [L, R] and 4-D broadcasts
    for case, data in written:  # the stored y is the reference's
        want = rope(data["x"], data["cos"], data["sin"], case.interleaved, case.rotary_dim)
        assert np.array_equal(vectors.bits(want), vectors.bits(data["y"])), case.name


@pytest.mark.parametrize("family", sorted(CHIPS))
def test_host_build_reproduces_every_vector_on_each_chip(written, family: str) -> None:
    served = 0
    for case, data in written:
        status, y, message = host_run(case, data, family)
        if family in case.chips:
            assert status == 0, f"{case.name}: {message}"
            assert np.array_equal(y, vectors.bits(data["y"])), case.name
            served += 1
        else:  # bfloat16 on the 310P is not supported; unaligned rows need DataCopyPad
            assert case.dtype == "bfloat16" or status == 1, (
                f"{case.name} runs on {family}: drop it from chips"
            )
    assert served >= 14


def test_one_node_models_carry_the_case() -> None:
    runner = _module("run_on_device")
    for case in vectors.cases():
        for op in ("RoPECustomer", "RoPEBuiltin"):
            model = runner.one_node_model(case, op)
            assert [(o.domain, o.version) for o in model.opset_import] == [("", 18)]  # one plugin key
            (node,) = model.graph.node
            attrs = {a.name: a.i for a in node.attribute}
            rotary = 0 if op == "RoPEBuiltin" else case.rotary_dim
            assert node.op_type == op and attrs == {"interleaved": case.interleaved, "rotary_dim": rotary}
            dims = [[d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input]
            assert dims == [list(case.x_shape), list(case.table_shape), list(case.table_shape)]
