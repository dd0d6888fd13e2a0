#!/usr/bin/env python3
"""RoPE on ONNX Runtime's CPU provider: unfused vs the rotary ops each `fuse --target` writes.

Two workloads, each at L = 1, 512, 4096, fp32 and fp16, 2 intra-op threads and all threads, side by side in
one run:

* ``layer``: one LLaMA-7B layer's q and k RoPE, q ``[1, 32, L, 128]`` and k ``[1, 8, L, 128]``, WITH their
  table computation (positions -> ``freqs = pos * inv_freq`` -> cos/sin; the tables are shared by q and k);
* ``site``: one site alone, x ``[1, 32, L, 128]``, the tables fed as inputs (full width for the unfused
  site and RoPECustomer, half width ``[1, L, 64]`` for the rotary ops, ``[L, 64]`` for com.microsoft).

Variants: ``unfused`` (Hugging Face ``x*cos + rotate_half(x)*sin``, built with onnx.helper, opset 23),
``onnx`` (``ai.onnx::RotaryEmbedding``, opset 23), ``ort`` (``com.microsoft::RotaryEmbedding``),
``atc`` (RoPECustomer served by rope-onnx's reference decomposition, i.e. the ``--domain`` form).
Without ``--hand`` the three fused forms are what ``rope-onnx fuse --target atc|onnx|ort`` writes from the
unfused graph (the layer workload; the site workload is always hand-written, since a lone site's tables are
graph inputs, which the rotary targets refuse by design). With ``--hand`` (or when this rope-onnx has no
``--target``) the layer's fused forms are hand-written with onnx.helper too.

Each cell: median of ``--repeat`` timed runs after warm-up, in ms; ratios are unfused / variant.
Numbers belong here, never in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADS_Q, HEADS_K, HEAD = 32, 8, 128
HALF = HEAD // 2
VARIANTS = ("unfused", "onnx", "ort", "atc")
ELEM = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16}
NP = {"fp32": np.float32, "fp16": np.float16}


def _c(name: str, value) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(value), name)
    )


def _model(nodes, inputs, outputs, opsets, functions=()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "rope_bench", inputs, outputs)
    m = helper.make_model(
        g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], functions=functions
    )
    m.ir_version = 10
    return m


def _rotate_half_site(x: str, cos: str, sin: str, y: str, p: str) -> list:
    """Hugging Face: y = x*cos + cat(-x[..., H/2:], x[..., :H/2])*sin."""
    return [
        _c(f"{p}_split", np.array([HALF, HALF], np.int64)),
        helper.make_node("Split", [x, f"{p}_split"], [f"{p}_x1", f"{p}_x2"], axis=-1),
        helper.make_node("Neg", [f"{p}_x2"], [f"{p}_nx2"]),
        helper.make_node("Concat", [f"{p}_nx2", f"{p}_x1"], [f"{p}_rot"], axis=-1),
        helper.make_node("Mul", [x, cos], [f"{p}_xc"]),
        helper.make_node("Mul", [f"{p}_rot", sin], [f"{p}_rs"]),
        helper.make_node("Add", [f"{p}_xc", f"{p}_rs"], [y]),
    ]


def _tables(dt: str, full: bool) -> list:
    """positions [1, L] -> freqs [1, L, 64] (fp32) -> cos/sin cast to dt; full: Concat(f, f), Unsqueeze(1)."""
    inv = (1.0 / (10000.0 ** (np.arange(0, HEAD, 2, dtype=np.float32) / HEAD))).astype(np.float32)
    n = [
        _c("inv_freq", inv),
        _c("ax_last", np.array([-1], np.int64)),
        _c("ax_head", np.array([1], np.int64)),
        helper.make_node("Cast", ["position_ids"], ["pos_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["pos_f", "ax_last"], ["pos_u"]),
        helper.make_node("Mul", ["pos_u", "inv_freq"], ["freqs"]),
    ]
    src = "freqs"
    if full:
        n.append(helper.make_node("Concat", ["freqs", "freqs"], ["emb"], axis=-1))
        src = "emb"
    for f in ("Cos", "Sin"):
        t = f.lower()
        n.append(helper.make_node(f, [src], [f"{t}_f"]))
        n.append(helper.make_node("Cast", [f"{t}_f"], [f"{t}_t"], to=ELEM[dt]))
        if full:
            n.append(helper.make_node("Unsqueeze", [f"{t}_t", "ax_head"], [t]))
        else:
            n.append(helper.make_node("Identity", [f"{t}_t"], [t]))
    return n


def _io(name: str, dt: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, ELEM[dt], shape)


def layer_unfused(dt: str) -> onnx.ModelProto:
    n = _tables(dt, full=True)
    n += _rotate_half_site("q", "cos", "sin", "q_out", "q")
    n += _rotate_half_site("k", "cos", "sin", "k_out", "k")
    ins = [
        _io("q", dt, [1, HEADS_Q, "L", HEAD]),
        _io("k", dt, [1, HEADS_K, "L", HEAD]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, [1, "L"]),
    ]
    outs = [_io("q_out", dt, [1, HEADS_Q, "L", HEAD]), _io("k_out", dt, [1, HEADS_K, "L", HEAD])]
    return _model(n, ins, outs, [("", 23)])


def layer_hand(dt: str, variant: str) -> onnx.ModelProto:
    """The fused layer written by hand: half tables [1, L, 64] (ai.onnx) or [L, 64] + position_ids (ORT)."""
    n = _tables(dt, full=False)
    opsets = [("", 23)]
    if variant == "onnx":
        n += [helper.make_node("RotaryEmbedding", [x, "cos", "sin"], [f"{x}_out"]) for x in ("q", "k")]
    else:
        opsets.append(("com.microsoft", 1))
        n += [
            _c("shape2", np.array([-1, HALF], np.int64)),
            helper.make_node("Reshape", ["cos", "shape2"], ["cos2"]),
            helper.make_node("Reshape", ["sin", "shape2"], ["sin2"]),
            _c("zero", np.array(0, np.int64)),
            _c("one", np.array(1, np.int64)),
            _c("ax0", np.array([0], np.int64)),
            helper.make_node("Shape", ["position_ids"], ["pshape"]),
            helper.make_node("Gather", ["pshape", "one"], ["plen"]),
            helper.make_node("Range", ["zero", "plen", "one"], ["prange"]),
            helper.make_node("Unsqueeze", ["prange", "ax0"], ["ppos"]),
        ]
        n += [
            helper.make_node(
                "RotaryEmbedding", [x, "ppos", "cos2", "sin2"], [f"{x}_out"], domain="com.microsoft"
            )
            for x in ("q", "k")
        ]
    m = layer_unfused(dt)
    return _model(n, list(m.graph.input), list(m.graph.output), opsets)


def site_model(dt: str, variant: str) -> onnx.ModelProto:
    x = _io("x", dt, [1, HEADS_Q, "L", HEAD])
    y = _io("y", dt, [1, HEADS_Q, "L", HEAD])
    if variant in ("unfused", "atc"):
        full = [_io("cos", dt, [1, 1, "L", HEAD]), _io("sin", dt, [1, 1, "L", HEAD])]
        n = _rotate_half_site("x", "cos", "sin", "y", "q")
        m = _model(n, [x, *full], [y], [("", 23)])
        return _fuse_atc(m) if variant == "atc" else m
    if variant == "onnx":
        half = [_io("cos", dt, [1, "L", HALF]), _io("sin", dt, [1, "L", HALF])]
        return _model(
            [helper.make_node("RotaryEmbedding", ["x", "cos", "sin"], ["y"])], [x, *half], [y], [("", 23)]
        )
    half = [_io("cos", dt, ["L", HALF]), _io("sin", dt, ["L", HALF])]
    pos = helper.make_tensor_value_info("pos", TensorProto.INT64, [1, "L"])
    node = helper.make_node("RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"], domain="com.microsoft")
    return _model([node], [x, pos, *half], [y], [("", 23), ("com.microsoft", 1)])


def _fuse_atc(m: onnx.ModelProto) -> onnx.ModelProto:
    """RoPECustomer served by the reference decomposition: the tool's runnable (--domain) form."""
    from rope_onnx.fusion import fuse_model

    m = onnx.shape_inference.infer_shapes(m)
    res = fuse_model(m, domain="rope_onnx.bench")  # in place
    if res.fused == 0:
        raise SystemExit(f"rope-onnx fused nothing in the bench graph: {[s.reason for s in res.skipped]}")
    return m


def _cli_fuse(m: onnx.ModelProto, target: str, tmp: str) -> onnx.ModelProto | None:
    """`rope-onnx fuse --target T` on the unfused layer; None when this rope-onnx has no --target."""
    from rope_onnx.cli.app import main

    src, dst = os.path.join(tmp, "unfused.onnx"), os.path.join(tmp, f"{target}.onnx")
    onnx.save(m, src)
    args = ["fuse", src, "-o", dst, "--target", target]
    if target == "atc":
        args += ["--domain", "rope_onnx.bench"]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = main(args)
    except SystemExit as e:  # argparse: unknown option (a rope-onnx without --target)
        rc = int(e.code or 0)
    if rc != 0 or not os.path.exists(dst):
        return None
    out = onnx.load(dst)
    if target == "atc":
        from rope_onnx.op.decomposition import runnable_copy

        out = runnable_copy(out)
    return out


def _session(m: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _feeds(m: onnx.ModelProto, L: int, dt: str, rng) -> dict:
    out = {}
    for i in m.graph.input:
        dims = [L if d.dim_param == "L" else d.dim_value for d in i.type.tensor_type.shape.dim]
        if i.type.tensor_type.elem_type == TensorProto.INT64:
            out[i.name] = np.arange(L, dtype=np.int64).reshape(dims)
        else:
            out[i.name] = rng.standard_normal(dims).astype(NP[dt])
    return out


def _site_feeds(variant: str, L: int, dt: str, rng) -> dict:
    """One set of (x, angles) per L, written in the form each variant takes, so outputs can be compared."""
    x = rng.standard_normal((1, HEADS_Q, L, HEAD)).astype(NP[dt])
    inv = 1.0 / (10000.0 ** (np.arange(0, HEAD, 2, dtype=np.float32) / HEAD))
    f = np.arange(L, dtype=np.float32)[:, None] * inv
    c, s = np.cos(f).astype(NP[dt]), np.sin(f).astype(NP[dt])
    if variant in ("unfused", "atc"):
        c, s = np.concatenate([c, c], -1)[None, None], np.concatenate([s, s], -1)[None, None]
        return {"x": x, "cos": c, "sin": s}
    if variant == "onnx":
        return {"x": x, "cos": c[None], "sin": s[None]}
    return {"x": x, "pos": np.arange(L, dtype=np.int64)[None], "cos": c, "sin": s}


def _time(sess: ort.InferenceSession, feeds: dict, repeat: int) -> tuple[float, list]:
    out = sess.run(None, feeds)
    for _ in range(2):
        sess.run(None, feeds)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


E2E_FIXTURES = ("llama_base_ts_fp32", "llama_base_dynamo_fp16", "gptj_rot8_dynamo_fp32", "neox_rot50_ts_fp32")


def fixtures_end_to_end(repeat: int, threads: int) -> None:
    """The tiny fixtures (hidden 32, 2 layers) end to end: original vs each target's output, batch 1 x 64."""
    from rope_onnx.verify.dims import DimValues
    from rope_onnx.verify.feeds import generate, input_specs

    print(f"\nfixtures end to end (ORT CPU, {threads} threads, batch 1, seq 64), ms:")
    print("| fixture | original | onnx | ort | atc (--domain) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for stem in E2E_FIXTURES:
            original = onnx.load(ROOT / "models" / "fixtures" / f"{stem}.onnx")
            feeds = generate(original, input_specs(original), DimValues({"batch": 1, "seq": 64}), 0).arrays
            cells = [_time(_session(original, threads), feeds, repeat)[0]]
            for target in ("onnx", "ort", "atc"):
                fused = _cli_fuse(original, target, tmp)
                cells.append(
                    float("nan") if fused is None else _time(_session(fused, threads), feeds, repeat)[0]
                )
            print(f"| {stem} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="1,512,4096")
    ap.add_argument("--dtypes", default="fp32,fp16")
    ap.add_argument("--threads", default="2,0", help="intra-op threads; 0 = all cores")
    ap.add_argument("--workloads", default="layer,site,fixtures")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--hand", action="store_true", help="hand-written fused layers, not the tool's output")
    ap.add_argument("--json", help="write raw figures here")
    args = ap.parse_args(argv)
    lengths = [int(v) for v in args.lengths.split(",")]
    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for dt in args.dtypes.split(","):
            models: dict = {}
            if "layer" in args.workloads:
                base = layer_unfused(dt)
                models["layer"] = {"unfused": (base, "onnx.helper")}
                for v in ("onnx", "ort", "atc"):
                    tool = None if args.hand else _cli_fuse(base, v, tmp)
                    if tool is not None:
                        models["layer"][v] = (tool, f"rope-onnx --target {v}")
                    elif v == "atc":
                        models["layer"][v] = (_fuse_atc(base), "rope-onnx (library, --domain form)")
                    else:
                        models["layer"][v] = (layer_hand(dt, v), "onnx.helper")
            if "site" in args.workloads:
                models["site"] = {v: (site_model(dt, v), "onnx.helper") for v in VARIANTS}
            for threads in [int(t) for t in args.threads.split(",")]:
                for workload, variants in models.items():
                    sessions = {v: _session(m, threads) for v, (m, _) in variants.items()}
                    for L in lengths:
                        ref_out = None
                        row: dict = {
                            "workload": workload,
                            "dtype": dt,
                            "threads": threads or os.cpu_count(),
                            "L": L,
                        }
                        layer_feeds = (
                            _feeds(variants["unfused"][0], L, dt, rng) if workload == "layer" else None
                        )
                        for v, sess in sessions.items():
                            feeds = (
                                layer_feeds
                                if workload == "layer"
                                else _site_feeds(v, L, dt, np.random.default_rng(L))
                            )
                            ms, out = _time(sess, feeds, args.repeat)
                            row[v] = ms
                            if ref_out is None:
                                ref_out = out
                            row[f"{v}_maxerr"] = float(
                                max(
                                    np.abs(a.astype(np.float32) - b.astype(np.float32)).max()
                                    for a, b in zip(ref_out, out, strict=True)
                                )
                            )
                        row["source"] = {v: src for v, (_, src) in variants.items()}
                        rows.append(row)
                        ratios = "  ".join(f"{v} {row['unfused'] / row[v]:.2f}x" for v in VARIANTS[1:])
                        cells = "  ".join(f"{v} {row[v]:8.3f}" for v in VARIANTS)
                        print(
                            f"{workload:5s} {dt} thr={row['threads']:<2d} L={L:<5d} {cells}   {ratios}",
                            flush=True,
                        )
    print()
    print(
        "| workload | dtype | threads | L | unfused ms | onnx ms | ort ms | atc ms | onnx × | ort × | atc × |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ms = " | ".join(f"{r[v]:.3f}" for v in VARIANTS)
        x = " | ".join(f"{r['unfused'] / r[v]:.2f}" for v in VARIANTS[1:])
        print(f"| {r['workload']} | {r['dtype']} | {r['threads']} | {r['L']} | {ms} | {x} |")
    if "fixtures" in args.workloads:
        fixtures_end_to_end(args.repeat, int(args.threads.split(",")[0]))
    if rows:
        print("\nmax |variant - unfused| per cell:", max(r[f"{v}_maxerr"] for r in rows for v in VARIANTS))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
