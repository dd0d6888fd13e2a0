#!/usr/bin/env python3
"""Export LLaMA graphs at real topology, with external data, for the scale benchmark.

The weights' values do not matter (nobody runs these models); the graph does: it is a real
``torch.onnx.export`` (TorchScript exporter, opset 17) of ``transformers.LlamaForCausalLM`` with an
``attention_mask`` input and dynamic batch/sequence axes, so it has exactly the nodes, names and
value_info a user's export of that architecture has.  Only the MLP width and the vocabulary are
shrunk, which changes tensor sizes, not the node count.

Sizes (``--size``):

* ``2``   — 2 layers, LLaMA-2-7B widths (hidden 4096, 32 heads, head_dim 128): 4 RoPE sites.
* ``7b``  — 32 layers, LLaMA-2-7B widths: 64 RoPE sites, 2.2 B parameters, ~4.4 GB of fp16 data.
* ``70b`` — 80 layers with grouped-query attention, head_dim 128 like LLaMA-3-70B, hidden shrunk to
  1024 (8 query heads, 2 kv heads) so it exports on a 24 GB machine: the node count of a 70B
  export, 160 RoPE sites.
* ``200layers``, ``400layers``, ``800layers`` — the 70B-shaped layer (grouped-query attention, head_dim
  128) narrowed to hidden 256 (2 query heads, 1 kv head), stacked 200/400/800 deep: 400-1,600 RoPE
  sites, 45k-181k nodes.  No model is that deep; the family shows that a site's cost does not grow
  with the number of sites before it (issue 17: flat on every graph shape).

``<size>-onnxsim`` and ``<size>-onnxslim`` (e.g. ``70b-onnxslim``): that export run through the tool,
as ``models/export_postprocessed.py`` runs it on the fixtures, and saved with its weights as external
data again (the tools inline them): a post-processed graph of the same model, every tensor declared.

dtype is float16 (``--dtype fp32`` for float32): half the disk and RAM, and what people deploy.
The model is built on the meta device and materialised with ``to_empty`` + one cheap in-place
fill per parameter (default init of 2.2 B parameters would take minutes); the rotary buffers are
rebuilt for real, since they are computed in ``__init__`` and ``to_empty`` leaves them garbage.

The TorchScript exporter writes one external file per tensor for models over 2 GB; the result is
rewritten, streaming, into one ``model.onnx.data`` next to ``model.onnx`` (no weight is held in
memory twice).  Output: ``OUT_DIR/model.onnx`` + ``OUT_DIR/model.onnx.data`` + ``OUT_DIR/export.json``.

Usage: ``python models/export_scale.py --size 7b --out bench/out/llama_7b``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path

SIZES: dict[str, dict] = {
    "2": dict(num_hidden_layers=2, hidden_size=4096, num_attention_heads=32, num_key_value_heads=32),
    "7b": dict(num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=32),
    "70b": dict(num_hidden_layers=80, hidden_size=1024, num_attention_heads=8, num_key_value_heads=2),
    **{
        f"{layers}layers": dict(
            num_hidden_layers=layers, hidden_size=256, num_attention_heads=2, num_key_value_heads=1
        )
        for layers in (200, 400, 800)
    },
}
COMMON = dict(
    head_dim=128,
    intermediate_size=128,
    vocab_size=1024,
    max_position_embeddings=4096,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)
OPSET = 17
DATA_FILE = "model.onnx.data"


#: Tools a size may name after a dash: the export post-processed (:func:`postprocessed`).
POSTPROCESS = ("onnxsim", "onnxslim")


def _split(size: str) -> tuple[str, str | None]:
    """(the export's size, the post-processing tool or None): ``70b-onnxslim`` -> (``70b``, ``onnxslim``)."""
    base, _, tool = size.partition("-")
    return base, tool or None


def expected_sites(size: str) -> int:
    """q and k of every layer."""
    return 2 * SIZES[_split(size)[0]]["num_hidden_layers"]


def build(size: str, dtype_name: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    dtype = {"fp16": torch.float16, "fp32": torch.float32}[dtype_name]
    cfg = LlamaConfig(**SIZES[size], **COMMON)
    cfg._attn_implementation = "eager"
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    model = model.to(dtype).to_empty(device="cpu").eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.uniform_(-0.02, 0.02, generator=generator)
        model.model.rotary_emb = LlamaRotaryEmbedding(cfg)  # real inv_freq (float32, as HF keeps it)
    return model, cfg


def _prefill(model):
    """Wrap ``model`` as input_ids, attention_mask -> logits, no cache: the prefill graph users export."""
    import torch

    class Prefill(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    return Prefill()


def _consolidate(exported: Path, out_dir: Path) -> int:
    """Rewrite the exporter's per-tensor files into one data file, streaming; returns its size."""
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(exported), load_external_data=False)
    src_dir = exported.parent
    data_path = out_dir / DATA_FILE
    offset = 0
    with open(data_path, "wb") as data:
        for tensor in model.graph.initializer:
            if tensor.data_location != TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in tensor.external_data}
            start, length = int(info.get("offset", 0) or 0), info.get("length")
            with open(src_dir / info["location"], "rb") as src:
                src.seek(start)
                pad = (-offset) % 4096  # page-aligned, as onnx's own writer does for mmap
                data.write(b"\0" * pad)
                offset += pad
                copied = 0
                remaining = int(length) if length else None
                while remaining is None or copied < remaining:
                    chunk = src.read(1 << 24 if remaining is None else min(1 << 24, remaining - copied))
                    if not chunk:
                        break
                    data.write(chunk)
                    copied += len(chunk)
            del tensor.external_data[:]
            for key, value in (("location", DATA_FILE), ("offset", str(offset)), ("length", str(copied))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            offset += copied
    with open(out_dir / "model.onnx", "wb") as handle:
        handle.write(model.SerializeToString())
    return offset


def _inline_to_external(exported: Path, out_dir: Path) -> int:
    """A model under 2 GB comes back self-contained: move its weights out (as users ship them)."""
    import onnx

    return _save_external(onnx.load(str(exported)), out_dir)


def _save_external(model, out_dir: Path) -> int:
    """``model`` as ``out_dir/model.onnx`` + one ``model.onnx.data``; returns the data's size."""
    import onnx

    onnx.save(
        model,
        str(out_dir / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=DATA_FILE,
        size_threshold=1024,
    )
    (out_dir / DATA_FILE).chmod(0o644)  # onnx's writer creates it 0600; a model's data is not secret
    return (out_dir / DATA_FILE).stat().st_size


def export(size: str, out_dir: Path, dtype_name: str = "fp16") -> dict:
    import torch
    from onnx import TensorProto

    started = time.perf_counter()
    model, cfg = build(size, dtype_name)
    built = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("model.onnx", DATA_FILE, "export.json"):
        (out_dir / stale).unlink(missing_ok=True)
    ids = torch.randint(0, cfg.vocab_size, (1, 8), dtype=torch.int64)
    mask = torch.ones(1, 8, dtype=torch.int64)
    dynamic = {
        "input_ids": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 1: "seq"},
        "logits": {0: "batch", 1: "seq"},
    }
    with tempfile.TemporaryDirectory(prefix="export_", dir=out_dir) as tmp:
        raw = Path(tmp) / "model.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _prefill(model),
                (ids, mask),
                str(raw),
                dynamo=False,
                opset_version=OPSET,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes=dynamic,
                do_constant_folding=True,
            )
        del model
        exported = time.perf_counter()
        has_external = any(p.name != "model.onnx" for p in Path(tmp).iterdir())
        data_bytes = _consolidate(raw, out_dir) if has_external else _inline_to_external(raw, out_dir)
    import onnx

    graph_only = onnx.load(str(out_dir / "model.onnx"), load_external_data=False)
    info = {
        "size": size,
        "dtype": dtype_name,
        "config": {**SIZES[size], **COMMON},
        "opset": OPSET,
        "exporter": f"torch {torch.__version__} TorchScript (dynamo=False)",
        "expected_sites": expected_sites(size),
        "nodes": len(graph_only.graph.node),
        "graph_bytes": (out_dir / "model.onnx").stat().st_size,
        "data_bytes": data_bytes,
        "external_tensors": sum(
            t.data_location == TensorProto.EXTERNAL for t in graph_only.graph.initializer
        ),
        "seconds": {
            "build": round(built - started, 1),
            "export": round(exported - built, 1),
            "total": round(time.perf_counter() - started, 1),
        },
    }
    (out_dir / "export.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def postprocessed(size: str, out_dir: Path, dtype_name: str = "fp16") -> dict:
    """The export of ``size``'s base run through its tool, weights external again, into ``out_dir``."""
    import onnx

    base, tool = _split(size)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from export_postprocessed import run_tool

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="source_", dir=out_dir) as tmp:
        source = export(base, Path(tmp), dtype_name)
        started = time.perf_counter()
        model = run_tool(str(tool), str(Path(tmp) / "model.onnx"))
        ran = time.perf_counter() - started
        for stale in ("model.onnx", DATA_FILE, "export.json"):
            (out_dir / stale).unlink(missing_ok=True)
        data_bytes = _save_external(model, out_dir)
        del model
    graph_only = onnx.load(str(out_dir / "model.onnx"), load_external_data=False)
    info = {
        **source,
        "size": size,
        "postprocessed": {"tool": tool, "version": version(str(tool)), "seconds": round(ran, 1)},
        "nodes": len(graph_only.graph.node),
        "value_info": len(graph_only.graph.value_info),
        "graph_bytes": (out_dir / "model.onnx").stat().st_size,
        "data_bytes": data_bytes,
    }
    (out_dir / "export.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = [*SIZES, *(f"{s}-{t}" for s in SIZES for t in POSTPROCESS)]
    parser.add_argument("--size", choices=sizes, required=True, metavar="SIZE", help=", ".join(sizes))
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16")
    args = parser.parse_args(argv)
    try:
        make = postprocessed if _split(args.size)[1] else export
        info = make(args.size, args.out, args.dtype)
    except BaseException:
        for leftover in ("model.onnx", DATA_FILE):
            (args.out / leftover).unlink(missing_ok=True)  # never leave a half-written export
        raise
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
