#!/usr/bin/env python3
"""Measure the pass on the post-processed and extra-family fixtures: fused / skipped / silent per file.

``silent`` = expected sites neither fused nor reported in ``skipped`` (the misses a user cannot see).
``exact`` = the fused model (RoPECustomer served by its reference decomposition) against the file as
committed, on ONNX Runtime CPU, two shapes.  Reads ``models/fixtures/manifest_tools.json`` and
``models/fixtures/manifest_families.json`` (whichever exist).

Usage: python bench/fuse_wild.py [--markdown] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from rope_onnx.fusion import fuse_model
from rope_onnx.op.decomposition import runnable_copy

FIXTURES = Path(__file__).resolve().parents[1] / "models" / "fixtures"
MANIFESTS = ("manifest_tools.json", "manifest_families.json")
TOL = {"float32": (1e-4, 1e-4), "float16": (2e-2, 2e-2)}


def _feed(vi: onnx.ValueInfoProto, batch: int, seq: int, rng: np.random.Generator) -> np.ndarray:
    t = vi.type.tensor_type
    shape = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            shape.append(d.dim_value)
        else:
            shape.append(batch if "batch" in d.dim_param or d.dim_param in ("B", "s0") else seq)
    if t.elem_type == onnx.TensorProto.INT64:
        if vi.name == "attention_mask":
            return np.ones(shape, np.int64)
        if "position" in vi.name:
            return np.broadcast_to(np.arange(shape[-1], dtype=np.int64), shape).copy()
        return rng.integers(0, 32, shape, dtype=np.int64)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
    return rng.standard_normal(shape).astype(dtype)


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def exact(original: onnx.ModelProto, fused: onnx.ModelProto, dtype: str) -> str:
    atol, rtol = TOL[dtype]
    runnable = runnable_copy(fused)
    worst = 0.0
    for i, (b, s) in enumerate(((2, 5), (3, 11))):
        rng = np.random.default_rng(100 + i)
        feeds = {vi.name: _feed(vi, b, s, rng) for vi in original.graph.input}
        for r, g in zip(_run(original, feeds), _run(runnable, feeds), strict=True):
            r, g = r.astype(np.float32), g.astype(np.float32)
            err = float(np.max(np.abs(r - g))) if r.size else 0.0
            if r.shape != g.shape or err > atol + rtol * float(np.max(np.abs(r), initial=0)):
                return f"MISMATCH {err:.3g}"
            worst = max(worst, err)
    return f"ok {worst:.2g}"


def measure(entry: dict) -> dict:
    model = onnx.load(FIXTURES / entry["file"])
    original = onnx.load(FIXTURES / entry["file"])
    try:
        result = fuse_model(model)
    except Exception as e:  # a crash is a finding, not a stop
        return {"fused": "-", "skipped": "-", "silent": "-", "exact": f"CRASH {type(e).__name__}: {e}"}
    fused, skipped = result.fused, len(result.skipped)
    silent = max(0, entry["expected_sites"] - fused - skipped)
    try:
        check = exact(original, model, entry["dtype"]) if fused else "-"
    except Exception as e:  # the fused model does not load or run: a finding
        check = f"ERROR {type(e).__name__}: {str(e)[:80]}"
    reasons = sorted({s.reason.split(" (inputs not followed")[0][:90] for s in result.skipped})
    return {"fused": fused, "skipped": skipped, "silent": silent, "exact": check, "reasons": reasons}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    entries = []
    for name in MANIFESTS:
        if (FIXTURES / name).exists():
            entries += [e for e in json.loads((FIXTURES / name).read_text()) if e.get("file")]
    if args.names:
        entries = [e for e in entries if any(n in e["file"] for n in args.names)]
    totals = [0, 0, 0, 0]
    print("| file | expected | fused | skipped | silent | exact | skip reasons |")
    print("|---|---|---|---|---|---|---|")
    for e in entries:
        r = measure(e)
        if isinstance(r["fused"], int):
            totals = [
                totals[0] + e["expected_sites"],
                totals[1] + r["fused"],
                totals[2] + r["skipped"],
                totals[3] + r["silent"],
            ]
        print(
            f"| {e['file']} | {e['expected_sites']} | {r['fused']} | {r['skipped']} | {r['silent']} | "
            f"{r['exact']} | {'; '.join(r.get('reasons', []))} |",
            flush=True,
        )
    print(f"| **total** | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
