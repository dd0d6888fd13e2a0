#!/usr/bin/env python3
"""Export tiny LLaMA-family models whose RoPE is ALREADY a rotary op, as fixtures for `fuse --target`.

Two real producers, both on the pinned stack (torch 2.13, transformers 5.24, onnxscript 0.7.2, ORT 1.32):

* ``dynamo23``: ``torch.onnx.export(..., dynamo=True, opset_version=23)``. The exporter's own optimizer writes
  the standard ``RotaryEmbedding`` (ai.onnx, opset 23) with half-width caches ``[1, seq, R/2]`` computed as
  ``Cos(positions * inv_freq)`` and no ``position_ids``. Checked here: ONNX Runtime 1.32 runs these files at
  batch 1 only: at batch > 1 it refuses the caches ("expected to have the same shape as input 'x', got 1
  and B") because the spec wants ``[B, S, R/2]`` without ``position_ids``. That is the exporter's output as
  it is; the fixtures keep a dynamic batch and the manifest says ``ort_batch: 1``.
* ``tfdml``: transformers' own exporter, ``OnnxExporter`` with
  ``OnnxConfig(dynamic=True, ort_fusions="dml")``.
  It writes ``com.microsoft.RotaryEmbedding`` with per-token caches ``[B*S, R/2]`` and
  ``position_ids = Range(B*S)`` reshaped to ``[B, S]``, on 3-D ``[B, S, N*H]`` input with ``num_heads``.
  (``ort_fusions="cpu"`` folds the rotary into ``GroupQueryAttention``, so no rotary node is left to test;
  "dml" keeps ``MultiHeadAttention`` and the rotary ops; the file runs on ORT's CPU provider.)
  ``onnx.checker`` (full) rejects these files as written: the exporter leaves ORT's
  ``SimplifiedLayerNormalization`` in the default domain, which only ONNX Runtime registers
  (manifest ``checker: false``).

Checked: the dynamo exporter leaves the fp16 LLaMA UNFUSED at opset 23 (no ``RotaryEmbedding``: its
rotary rule does not match the fp16 graph), so ``llama_base_dynamo23_fp16`` holds four raw sites at opset 23.
Partial rotary (Phi, factor 0.5): both producers slice x and rotate the slice whole, so no
``rotary_embedding_dim`` is set in these files.

Also checked and NOT used: onnxscript's ``optimize_for_ort`` on the dynamo (opset 20) fixtures matches the
four rotate_half sites but its ``cos_sin_cache`` rule needs ``MatMul(inv_freq, positions)``; transformers 5.24
computes ``positions[..., None] * inv_freq`` (a ``Mul``), so the match is inlined back and no rotary op is
left. onnxruntime.transformers' optimizer (model_type gpt2/bert) fuses no rotary in these fixtures either.

Usage:  python models/export_rotary_ops.py        # writes models/fixtures/rotary_ops/*.onnx + manifest.json
"""

from __future__ import annotations

import collections
import json
import os
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_fixtures as ef

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "rotary_ops")
TOL = {"float32": 1e-4, "float16": 2e-2}


def _hf(family: str, cls: str, cfg_name: str, dtype: torch.dtype, **extra) -> torch.nn.Module:
    cfg = {**ef.HF_COMMON, **ef.LLAMA_CFG, **extra}
    return ef._hf_model(cls, cfg_name, dtype, **cfg)


def _trim(path: str) -> None:
    ef._postprocess(path)


def export_dynamo23(model: torch.nn.Module, dtype: torch.dtype, path: str) -> None:
    from torch.export import Dim

    wrapper = ef.CausalLMNoCache(model).eval()
    ef._seed_all(1)
    ex = ef._nocache_inputs(32)(2, 7, dtype)
    b, s = Dim("batch"), Dim("seq")
    dyn = {"input_ids": {0: b, 1: s}, "attention_mask": {0: b, 1: s}}
    with torch.no_grad(), ef._quiet():
        prog = torch.onnx.export(
            wrapper,
            tuple(ex.values()),
            dynamo=True,
            opset_version=23,
            input_names=list(ex),
            output_names=["logits"],
            dynamic_shapes=dyn,
        )
    prog.save(path, external_data=False)
    _trim(path)


def export_tfdml(model: torch.nn.Module, dtype: torch.dtype, path: str) -> None:
    import onnx_ir as ir
    from transformers.exporters import OnnxConfig, OnnxExporter

    ef._seed_all(1)
    ex = ef._nocache_inputs(32)(2, 7, dtype)
    with ef._quiet():
        program, _meta = OnnxExporter().export_program(model, ex, OnnxConfig(dynamic=True, ort_fusions="dml"))
    onnx.save(ir.to_proto(program), path)
    _trim(path)


def _check(model: torch.nn.Module, path: str, dtype_name: str, batch: int) -> tuple[float, bool]:
    """ORT CPU vs torch on two lengths (batch `batch`): the worst absolute error; plus the full checker."""
    import onnxruntime as ort

    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        checker = True
    except Exception:
        checker = False
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, seq in enumerate((5, 11)):
        ef._seed_all(100 + i)
        feeds = ef._nocache_inputs(32)(batch, seq, ef.DTYPES[dtype_name])
        with torch.no_grad():
            ref = model(**feeds, use_cache=False).logits.float().numpy()
        got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})[0].astype(np.float32)
        err = float(np.abs(ref - got).max())
        lim = TOL["float16" if dtype_name == "fp16" else "float32"] * (1 + float(np.abs(ref).max()))
        if err > lim:
            raise AssertionError(f"{path}: max abs err {err:.3g} > {lim:.3g} at batch={batch} seq={seq}")
        worst = max(worst, err)
    return worst, checker


# (file stem, family, HF class, config class, extra config, rotary_dim, exporter, dtypes)
FIXTURES = [
    ("llama_base", "llama", "LlamaForCausalLM", "LlamaConfig", {}, 16, "dynamo23", ("fp32", "fp16")),
    ("llama_base", "llama", "LlamaForCausalLM", "LlamaConfig", {}, 16, "tfdml", ("fp32", "fp16")),
    (
        "phi_partial50",
        "phi",
        "PhiForCausalLM",
        "PhiConfig",
        {"partial_rotary_factor": 0.5, "num_key_value_heads": 2},
        8,
        "dynamo23",
        ("fp32",),
    ),
    (
        "phi_partial50",
        "phi",
        "PhiForCausalLM",
        "PhiConfig",
        {"partial_rotary_factor": 0.5, "num_key_value_heads": 2},
        8,
        "tfdml",
        ("fp32",),
    ),
]


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    manifest = []
    for stem, family, cls, cfg_name, extra, rdim, exporter, dtypes in FIXTURES:
        for dt in dtypes:
            name = f"{stem}_{exporter}_{dt}.onnx"
            path = os.path.join(OUT, name)
            model = _hf(family, cls, cfg_name, ef.DTYPES[dt], **extra)
            entry: dict = {
                "file": name,
                "family": family,
                "exporter": exporter,
                "dtype": dt,
                "rotary_dim": rdim,
            }
            try:
                (export_dynamo23 if exporter == "dynamo23" else export_tfdml)(model, ef.DTYPES[dt], path)
            except Exception as e:  # recorded, never faked
                entry.update(file=None, export_error=ef._short_error(e))
                manifest.append(entry)
                print(f"{name:44s} EXPORT FAILED {entry['export_error']}")
                continue
            m = onnx.load(path)
            ops = collections.Counter(
                f"{n.domain or 'ai.onnx'}::{n.op_type}" for n in m.graph.node if "Rotary" in n.op_type
            )
            batch = 1 if exporter == "dynamo23" else 3
            try:
                err, checker = _check(model, path, dt, batch)
                entry["check"] = f"ok: max_abs_err={err:.3g} at batch {batch}, seq 5 and 11"
            except Exception as e:
                checker, entry["check"] = False, "FAILED: " + ef._short_error(e)
            entry.update(
                opset=next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
                rotary_ops=dict(ops),
                # q and k of every layer: a rotary op each where the producer fused it, else a raw site
                expected_sites=2 * ef.NUM_LAYERS,
                ort_batch=batch if exporter == "dynamo23" else None,
                checker=checker,
                size_bytes=os.path.getsize(path),
                source=f"transformers.{cls} (random weights, tiny config) via {exporter}",
                config={**ef.HF_COMMON, **ef.LLAMA_CFG, **extra},
            )
            manifest.append(entry)
            print(
                f"{name:44s} {dict(ops)} checker={checker} {entry['check']} {entry['size_bytes'] // 1024} KB"
            )
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
