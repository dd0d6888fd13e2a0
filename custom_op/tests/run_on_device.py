"""Device check kit, part 2: run the installed op on the vectors of rope_vectors.py and compare.

NOT RUN on the development machine (no CANN, no NPU there): written against the public ATC and
ais_bench command lines, for an Ascend host with CANN, the RoPECustomer package installed
(custom_op/README.md) and ais_bench (https://gitee.com/ascend/tools/tree/master/ais-bench_workload/tool/ais_bench).

    python custom_op/tests/rope_vectors.py vectors/
    python custom_op/tests/run_on_device.py vectors/ --soc Ascend910B2 [--op RoPEBuiltin] [--keep work/]

For each case meant for the chip's family it writes a one-node ONNX model (the fused node, default
domain, opset 18), compiles it with ``atc --framework=5`` (keeping the model's dtypes), runs the .om
with ais_bench on the case's raw inputs and compares y with the reference bitwise (the kernel computes
in float32 and rounds once, as the reference does: docs/op-contract.md).  ``--op RoPEBuiltin`` marks the
node for Huawei's RotaryPositionEmbedding instead (910B family, whole-head cases only) and reports the
largest difference, since Huawei's kernel is not promised to round as the reference does.
Exit status 0 when every case matched, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rope_vectors

ELEM = {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT, "bfloat16": TensorProto.BFLOAT16}


def one_node_model(case: rope_vectors.Case, op_type: str) -> onnx.ModelProto:
    rotary = 0 if op_type == "RoPEBuiltin" else case.rotary_dim  # the built-in plugin accepts 0 only
    node = helper.make_node(op_type, ["x", "cos", "sin"], ["y"], name="rope",
                            interleaved=case.interleaved, rotary_dim=rotary)  # fmt: skip
    t = ELEM[case.dtype]
    graph = helper.make_graph(
        [node],
        case.name,
        [helper.make_tensor_value_info("x", t, case.x_shape),
         helper.make_tensor_value_info("cos", t, case.table_shape),
         helper.make_tensor_value_info("sin", t, case.table_shape)],
        [helper.make_tensor_value_info("y", t, case.x_shape)],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def family(soc: str) -> str:
    if soc.startswith("Ascend910B"):
        return "ascend910b"
    if soc.startswith("Ascend310P"):
        return "ascend310p"
    sys.exit(f"--soc {soc}: the package is built for Ascend910B* and Ascend310P* chips")


def run(argv: list[str], log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed (exit {done.returncode}); log: {log}")


def check_case(case, data, soc: str, op_type: str, work: Path) -> tuple[bool, str]:
    folder = work / case.name
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(one_node_model(case, op_type), folder / "model.onnx")
    run(["atc", "--framework=5", f"--model={folder / 'model.onnx'}", f"--output={folder / 'model'}",
         f"--soc_version={soc}", "--input_format=ND", "--precision_mode=must_keep_origin_dtype"],
        folder / "atc.log")  # fmt: skip
    inputs = []
    for name in ("x", "cos", "sin"):
        rope_vectors.bits(data[name]).tofile(folder / f"{name}.bin")
        inputs.append(str(folder / f"{name}.bin"))
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    run([sys.executable, "-m", "ais_bench", "--model", str(folder / "model.om"), "--input", ",".join(inputs),
         "--output", str(out), "--outfmt", "BIN"], folder / "ais_bench.log")  # fmt: skip
    produced = sorted(out.rglob("*.bin"))
    if len(produced) != 1:
        return False, f"expected one output file under {out}, found {len(produced)}"
    raw = np.fromfile(produced[0], dtype=rope_vectors.bits(data["y"]).dtype)
    if raw.size != data["y"].size:
        return False, f"y has {raw.size} elements, expected {data['y'].size}"
    got = rope_vectors.from_bits(raw, case.dtype).reshape(case.x_shape)
    want = data["y"]
    same = np.count_nonzero(rope_vectors.bits(got) == rope_vectors.bits(want))
    delta = np.abs(got.astype(np.float64) - want.astype(np.float64))
    diff = float(delta.max())
    if op_type == "RoPECustomer":
        ok = same == want.size
    else:  # within one unit in the last place of the dtype
        eps = float(ml_dtypes.finfo(want.dtype).eps)
        ok = bool(np.all(delta <= eps * np.maximum(1.0, np.abs(want.astype(np.float64)))))
    return ok, f"{want.size - same} of {want.size} elements differ in bits, max |diff| {diff:.3g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vectors", type=Path)
    parser.add_argument("--soc", required=True, help="exact chip, as 'npu-smi info' names it")
    parser.add_argument("--op", choices=("RoPECustomer", "RoPEBuiltin"), default="RoPECustomer")
    parser.add_argument("--keep", type=Path, help="work folder to keep (models, .om, logs)")
    args = parser.parse_args()
    fam = family(args.soc)
    work = args.keep or Path(tempfile.mkdtemp(prefix="rope_device_check_"))
    failed = 0
    for case, data in rope_vectors.load(args.vectors):
        if fam not in case.chips:
            continue
        if args.op == "RoPEBuiltin" and (
            fam != "ascend910b" or case.rotary_dim or len(case.table_shape) != 4
        ):
            continue  # the built-in op: 910B family, 4-D tables, whole head (rope_onnx/atc/kernel_choice.py)
        try:
            ok, detail = check_case(case, data, args.soc, args.op, work)
        except RuntimeError as error:
            ok, detail = False, str(error)
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {case.name}: {detail}", flush=True)
    print(f"{'all cases matched' if not failed else f'{failed} case(s) failed'}; work folder {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
