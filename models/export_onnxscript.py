#!/usr/bin/env python3
"""Export an onnxscript ``@script`` RoPE model: Slice bounds go through ``CastLike`` (issue 12, item 3).

onnxscript writes every Python literal next to a typed operand as ``CastLike(Constant, operand)``, so
``op.Slice(x, [0], d / 2, [-1])`` gets ``CastLike`` starts/axes and a ``Div(d, CastLike(2, d))`` end —
bounds no torch exporter writes.  The model applies RoPE (rotate_half, tables computed in the graph
from ``position_ids``) to four tensors: q and k of two "layers" (expected_sites = 4 by construction).
The script's local function is inlined by ``onnx.inliner`` (what onnxscript's optimizer does), without
folding, so the CastLike nodes stay.  Checked against a NumPy reference on ORT CPU, two shapes.

Usage: python models/export_onnxscript.py
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import onnx.inliner
import onnxruntime as ort
from onnxscript import FLOAT, INT64, script
from onnxscript import opset18 as op

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
NAME = "onnxscript_castlike_script_fp32.onnx"
B, H, L = "B", "H", "L"  # symbolic dims of the script signatures
INV_FREQ = (1.0 / 10000.0 ** (np.arange(0, 16, 2, dtype=np.float32) / 16)).astype(np.float32)


@script(default_opset=op)
def rope(x: FLOAT[B, H, L, 16], cos: FLOAT[1, 1, L, 16], sin: FLOAT[1, 1, L, 16]):
    d = op.Shape(x, start=-1)
    h = d / 2
    x1 = op.Slice(x, [0], h, [-1])
    x2 = op.Slice(x, h, d, [-1])
    return x * cos + op.Concat(-x2, x1, axis=-1) * sin


@script(default_opset=op)
def model(
    q0: FLOAT[B, 2, L, 16],
    k0: FLOAT[B, 2, L, 16],
    q1: FLOAT[B, 2, L, 16],
    k1: FLOAT[B, 2, L, 16],
    position_ids: INT64[L],
    inv_freq: FLOAT[8],
):
    f = op.Unsqueeze(op.Cast(position_ids, to=1), [1]) * inv_freq
    e = op.Concat(f, f, axis=-1)
    cos = op.Unsqueeze(op.Cos(e), [0, 1])
    sin = op.Unsqueeze(op.Sin(e), [0, 1])
    y0 = rope(q0, cos, sin)
    y1 = rope(k0, cos, sin)
    y2 = rope(q1, cos, sin)
    y3 = rope(k1, cos, sin)
    return y0, y1, y2, y3


def build() -> onnx.ModelProto:
    m = model.to_model_proto()
    # inv_freq as an initializer (a constant of the model, as exporters write it)
    m.graph.initializer.append(onnx.numpy_helper.from_array(INV_FREQ, "inv_freq"))
    keep = [i for i in m.graph.input if i.name != "inv_freq"]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    m = onnx.inliner.inline_local_functions(m)
    outputs = [o.name for o in m.graph.output]  # onnxscript leaves unannotated outputs untyped
    del m.graph.output[:]
    for name in outputs:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, 1, ["B", 2, "L", 16]))
    del m.graph.value_info[:]
    onnx.checker.check_model(m, full_check=True)
    return m


def reference(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    f = pos.astype(np.float32)[:, None] * INV_FREQ
    e = np.concatenate([f, f], -1)
    rot = np.concatenate([-x[..., 8:], x[..., :8]], -1)
    return x * np.cos(e) + rot * np.sin(e)


def check(path: str) -> str:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, (b, s) in enumerate(((2, 5), (3, 11))):
        rng = np.random.default_rng(100 + i)
        feeds = {n: rng.standard_normal((b, 2, s, 16)).astype(np.float32) for n in ("q0", "k0", "q1", "k1")}
        feeds["position_ids"] = np.arange(s, dtype=np.int64) + 3
        for name, got in zip(("q0", "k0", "q1", "k1"), sess.run(None, feeds), strict=True):
            err = float(np.max(np.abs(got - reference(feeds[name], feeds["position_ids"]))))
            assert err < 1e-5, err
            worst = max(worst, err)
    return f"ok: max_abs_err={worst:.3g} vs NumPy, shapes=[(2, 5), (3, 11)]"


def main() -> int:
    path = os.path.join(OUT, NAME)
    m = build()
    onnx.save(m, path)
    entry = {
        "file": NAME,
        "family": "onnxscript",
        "variant": "castlike",
        "exporter": "onnxscript",
        "opset": 18,
        "dtype": "float32",
        "layout": "BHLD",
        "interleaved": 0,
        "head_dim": 16,
        "rotary_dim": 16,
        "num_layers": 2,
        "expected_sites": 4,
        "variants": ["rotate_half", "castlike_bounds", "computed_bounds", "table_sincos"],
        "items": [3],
        "notes": "onnxscript @script: Slice starts/axes are CastLike(Constant, h), "
        "end h = Div(d, CastLike(2, d)).",
        "source": "models/export_onnxscript.py (onnxscript @script, local function inlined)",
        "size_bytes": os.path.getsize(path),
        "check": check(path),
    }
    man = os.path.join(OUT, "manifest_families.json")
    entries = []
    if os.path.exists(man):
        with open(man) as fh:
            entries = json.load(fh)
    entries = [e for e in entries if e.get("file") != NAME] + [entry]
    with open(man, "w") as fh:
        json.dump(entries, fh, indent=1)
        fh.write("\n")
    print(NAME, entry["check"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
