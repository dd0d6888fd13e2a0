#!/usr/bin/env python3
"""Synthetic chains of head-sized element-wise nodes: the graph shape that is worst for the pass.

Every Add of such a chain is a candidate (its channel axis is head-sized) and its cone reaches back
through the whole chain, so a pass whose work per candidate grows with the cone is quadratic here
(issue 17: 20,000 nodes took 36 s, 200,000 nodes 629 s and 1.3 GB).  The chain is hand-built; it
stands for nothing an exporter writes, only for the shape (a long run of head-sized element-wise
ops) that real graphs have in shorter pieces.

Variants (``--variant``), ``n`` nodes in all, alternating Neg and Add:

* ``input`` (default): ``h = Add(Neg(h), x)`` — every Add also reads the graph input ``x``: each
  value is a linear function of ``x`` alone.
* ``two``: ``h = Add(Neg(h), y)`` with a second graph input ``y``: a linear mix of two tensors.
* ``self``: ``h = Add(Neg(h), h)`` — reads its own previous value (x - x patterns).
* ``mul``: ``h = Add(Neg(h), m)`` with one ``m = Mul(x, y)`` at the start: every candidate has a
  product in its cone, so every one is traced (the cost the node budget and depth limit bound).

Usage: ``python bench/chain.py --nodes 20000 --out bench/out/chain_20000.onnx``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

VARIANTS = ("input", "two", "self", "mul")


def make_chain(nodes: int, width: int = 128, variant: str = "input") -> onnx.ModelProto:
    """``nodes`` alternating Neg/Add nodes (+1 Mul) on [batch, seq, heads, width] tensors, no value_info."""
    from onnx import TensorProto, helper  # here: bench/scale_all.py's parent process stays small

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    shape: list[str | int | None] = ["batch", "seq", 8, width]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    if variant in ("two", "mul"):
        inputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, shape))
    other = {"input": "x", "two": "y", "mul": "m"}
    made, h = [], "x"
    if variant == "mul":
        made.append(helper.make_node("Mul", ["x", "y"], ["m"], name="chain/Mul"))
    for i in range(nodes):
        if i % 2 == 0:
            made.append(helper.make_node("Neg", [h], [f"n{i}"], name=f"chain/Neg_{i}"))
            prev, h = h, f"n{i}"
        else:
            rhs = other.get(variant, prev)
            made.append(helper.make_node("Add", [h, rhs], [f"a{i}"], name=f"chain/Add_{i}"))
            h = f"a{i}"
    graph = helper.make_graph(
        made, "chain", inputs, [helper.make_tensor_value_info(h, TensorProto.FLOAT, None)]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def write_chain(nodes: int, out: Path, width: int = 128, variant: str = "input") -> Path:
    import onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(make_chain(nodes, width, variant), str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--variant", choices=VARIANTS, default="input")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_chain(args.nodes, args.out, args.width, args.variant)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
