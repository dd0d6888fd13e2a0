#!/usr/bin/env python3
"""Run the post-processing tools deployment pipelines run on committed fixtures; keep the outputs.

Users rarely hand an exporter's file straight to ATC: they run onnxsim first (Ascend's habit), or
onnxslim, or ONNX Runtime's offline optimizer, or polygraphy's constant folding.  Each tool rewrites
the graph around the RoPE sites (stale ``value_info``, folded bounds, ``com.microsoft`` ops upstream,
``InsertedPrecisionFreeCast_*`` Casts in fp16 graphs), so each output is ground truth of its own.

Tools (versions pinned by the venv; recorded per entry):
  * onnxsim      ``onnxsim.simplify(model)``                              (what ``onnxsim IN OUT`` does)
  * onnxslim     ``onnxslim.slim(model)``                                 (what ``onnxslim IN OUT`` does)
  * ortbasic     ORT CPU ``ORT_ENABLE_BASIC``    + ``optimized_model_filepath``
  * ortext       ORT CPU ``ORT_ENABLE_EXTENDED`` + ``optimized_model_filepath``
  * polyfold     ``polygraphy.backend.onnx.fold_constants(model)``        (``polygraphy surgeon sanitize
                 --fold-constants``)

Every output is checked against its source on ONNX Runtime CPU (same random feeds, two shapes) and
written as ``<source stem>-<tool>.onnx`` next to it, with an entry in ``fixtures/manifest_tools.json``:
the source's entry plus ``derived_from``, ``tool``, ``tool_version``, ``items`` (the issue items the
copy exercises, measured by looking at the graph) and ``check``.

Usage:
  python models/export_postprocessed.py                  # all sources x all tools
  python models/export_postprocessed.py --only llama_base_ts_fp32 --tool onnxsim
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from importlib.metadata import version

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
MANIFEST = os.path.join(FIXTURES, "manifest_tools.json")

SOURCES = (
    "llama_base_ts_fp32",
    "llama_base_dynamo_fp32",
    "qwen2_base_ts_fp16",
    "qwen2_base_dynamo_fp16",
    "phi_partial50_ts_fp32",
    "phi_partial50_dynamo_fp32",
    "gptj_rot8_ts_fp32",
    "gptj_rot8_dynamo_fp32",
)
TOOLS = ("onnxsim", "onnxslim", "ortbasic", "ortext", "polyfold")
TOOL_PACKAGE = {
    "onnxsim": "onnxsim",
    "onnxslim": "onnxslim",
    "ortbasic": "onnxruntime",
    "ortext": "onnxruntime",
    "polyfold": "polygraphy",
}
CHECK_SHAPES = ((2, 5), (3, 11))
TOL = {"float32": (1e-4, 1e-4), "float16": (2e-2, 2e-2)}


@contextlib.contextmanager
def _quiet():
    """Tools print progress tables and warnings; keep the script's own output readable."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _ort_optimized(src: str, level: str) -> onnx.ModelProto:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "opt.onnx")
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.optimized_model_filepath = out
        ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
        return onnx.load(out)


def run_tool(tool: str, src: str) -> onnx.ModelProto:
    model = onnx.load(src)
    if tool == "onnxsim":
        import onnxsim

        with _quiet():
            simplified, ok = onnxsim.simplify(model)
        if not ok:
            raise RuntimeError("onnxsim's own check failed")
        return simplified
    if tool == "onnxslim":
        import onnxslim

        with _quiet():
            return onnxslim.slim(model)
    if tool == "ortbasic":
        return _ort_optimized(src, "ORT_ENABLE_BASIC")
    if tool == "ortext":
        return _ort_optimized(src, "ORT_ENABLE_EXTENDED")
    if tool == "polyfold":
        from polygraphy.backend.onnx import fold_constants

        with _quiet():
            return fold_constants(model)
    raise ValueError(tool)


def _feeds(model: onnx.ModelProto, batch: int, seq: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in model.graph.input:
        if inp.name == "input_ids":
            feeds[inp.name] = rng.integers(0, 32, (batch, seq), dtype=np.int64)
        elif inp.name == "attention_mask":
            feeds[inp.name] = np.ones((batch, seq), dtype=np.int64)
        else:
            raise ValueError(f"no feed rule for input {inp.name!r}")
    return feeds


def _run(path_or_model, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = path_or_model if isinstance(path_or_model, str) else path_or_model.SerializeToString()
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def check(src: str, out: str, dtype: str) -> str:
    """The copy computes what its source computes (ORT CPU, optimizations off on both sides)."""
    model = onnx.load(src)
    atol, rtol = TOL[dtype]
    worst = 0.0
    for i, (b, s) in enumerate(CHECK_SHAPES):
        feeds = _feeds(model, b, s, 100 + i)
        for r, g in zip(_run(src, feeds), _run(out, feeds), strict=True):
            r, g = r.astype(np.float32), g.astype(np.float32)
            err = float(np.max(np.abs(r - g)))
            if r.shape != g.shape or err > atol + rtol * float(np.max(np.abs(r))):
                raise AssertionError(f"copy differs from its source: err {err:.3g} at batch={b} seq={s}")
            worst = max(worst, err)
    return f"ok: max_abs_err={worst:.3g} vs source, shapes={list(CHECK_SHAPES)}"


def items_seen(model: onnx.ModelProto) -> list[int]:
    """Issue-12 items this graph exercises, read off the graph (not assumed from the tool)."""
    items = set()
    names = {n.output[0] for n in model.graph.node}
    for vi in model.graph.value_info:
        if vi.name in names and any(d.HasField("dim_param") for d in vi.type.tensor_type.shape.dim):
            items.add(1)  # declared shapes with symbolic dims the pass must not trust over inference
            break
    if any(n.domain == "com.microsoft" for n in model.graph.node):
        items.add(1)
    if any(n.op_type == "Cast" and n.name.startswith("InsertedPrecisionFreeCast") for n in model.graph.node):
        items.add(2)
    if any(n.op_type == "CastLike" for n in model.graph.node):
        items.add(3)
    return sorted(items)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="source stems containing NAME")
    ap.add_argument("--tool", action="append", default=[], choices=TOOLS)
    args = ap.parse_args(argv)
    with open(os.path.join(FIXTURES, "manifest.json")) as fh:
        base = {os.path.splitext(e["file"])[0]: e for e in json.load(fh) if e.get("file")}
    entries = {}
    if os.path.exists(MANIFEST):
        with open(MANIFEST) as fh:
            entries = {e["file"]: e for e in json.load(fh)}
    sources = [s for s in SOURCES if not args.only or any(o in s for o in args.only)]
    failures = 0
    for stem in sources:
        src = os.path.join(FIXTURES, stem + ".onnx")
        for tool in args.tool or TOOLS:
            name = f"{stem}-{tool}.onnx"
            out = os.path.join(FIXTURES, name)
            entry = {
                k: v for k, v in base[stem].items() if k not in ("check", "size_bytes", "sign_nodes", "opset")
            }
            entry.update(file=name, derived_from=base[stem]["file"], tool=tool)
            entry["tool_version"] = f"{TOOL_PACKAGE[tool]} {version(TOOL_PACKAGE[tool])}"
            try:
                model = run_tool(tool, src)
                onnx.save(model, out)
                entry["check"] = check(src, out, base[stem]["dtype"])
            except Exception as e:  # recorded, never faked
                failures += 1
                entry.update(file=None, export_error=f"{type(e).__name__}: {e}"[:300])
                if os.path.exists(out):
                    os.remove(out)
                print(f"{name:48s} FAILED {entry['export_error']}", flush=True)
                entries[name] = entry
                continue
            entry["opset"] = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
            entry["items"] = items_seen(model)
            entry["size_bytes"] = os.path.getsize(out)
            entries[name] = entry
            print(f"{name:48s} {entry['size_bytes'] // 1024:4d} KB items={entry['items']} {entry['check']}")
    order = {f"{s}-{t}.onnx": i for i, (s, t) in enumerate((s, t) for s in SOURCES for t in TOOLS)}
    with open(MANIFEST, "w") as fh:
        json.dump(sorted(entries.values(), key=lambda e: order.get(e["file"] or "", 999)), fh, indent=1)
        fh.write("\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
