#!/usr/bin/env python3
"""Print the nodes of the first RoPE site of an ONNX model, for people writing the fusion pattern.

Heuristic (fixtures only, not a matcher): A = output of the first MatMul/Gemm that multiplies an
activation by a weight (layer 0's q projection, or the fused qkv projection), B = the first MatMul whose
inputs are both activations (q @ k^T). Printed: every node that is a descendant of A and an ancestor of
B (q path, and k path when the projection is fused), in graph order, with where each input comes from,
then the cone that produces the cos/sin operands (ancestors of the region's non-constant data side
inputs; shape operands of Reshape/Slice/Expand are not followed).

  python models/dump_rope_site.py models/fixtures/llama_base_ts_fp32.onnx [--max-cone 60]
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference


def _const_value(name, inits, producers):
    if name in inits:
        return numpy_helper.to_array(inits[name])
    p = producers.get(name)
    if p is not None and p.op_type == "Constant":
        for a in p.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t)
            if a.name in ("value_int", "value_ints", "value_float", "value_floats"):
                return np.array(onnx.helper.get_attribute_value(a))
    return None


def _fmt_val(v):
    if v is None:
        return None
    if v.size <= 8:
        s = np.array2string(v.reshape(-1), separator=",", max_line_width=200)
        return f"{v.dtype}{list(v.shape)}={s}"
    return f"{v.dtype}{list(v.shape)}"


def _attrs(n):
    out = []
    for a in n.attribute:
        if a.name == "value":
            continue
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, onnx.TensorProto):
            v = _fmt_val(numpy_helper.to_array(v))
        if isinstance(v, onnx.GraphProto):
            v = "<graph: " + " ".join(x.op_type for x in v.node) + ">"
        out.append(f"{a.name}={v}")
    return ("{" + ", ".join(out) + "}") if out else ""


def dump(path: str, max_cone: int = 60, out=sys.stdout) -> None:
    m = onnx.load(path)
    with contextlib.suppress(Exception):
        m = shape_inference.infer_shapes(m, data_prop=True)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    vi = {v.name: v for v in list(g.value_info) + list(g.input) + list(g.output)}
    order = {id(n): k for k, n in enumerate(g.node)}

    def is_const(name):
        return (
            name in inits
            or (name in producers and producers[name].op_type == "Constant")
            or (
                name in producers
                and producers[name].op_type in ("Transpose", "Cast")
                and all(is_const(x) for x in producers[name].input if x)
            )
        )

    def shape(name):
        v = vi.get(name)
        if v is None or not v.type.tensor_type.HasField("shape"):
            return "?"
        dims = [
            d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?")
            for d in v.type.tensor_type.shape.dim
        ]
        et = (
            onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
            if v.type.tensor_type.elem_type
            else "?"
        )
        return f"{et}[{','.join(dims)}]"

    a_node = next(
        n for n in g.node if n.op_type in ("MatMul", "Gemm") and sum(is_const(i) for i in n.input[:2]) == 1
    )
    b_node = next(
        n
        for n in g.node
        if n.op_type == "MatMul"
        and not any(is_const(i) for i in n.input[:2])
        and order[id(n)] > order[id(a_node)]
    )

    desc, stack = set(), [a_node]
    while stack:
        n = stack.pop()
        for o in n.output:
            for c in consumers.get(o, []):
                if id(c) not in desc:
                    desc.add(id(c))
                    stack.append(c)
    anc, stack = set(), [b_node]
    while stack:
        n = stack.pop()
        for i in n.input:
            p = producers.get(i)
            if p is not None and id(p) not in anc:
                anc.add(id(p))
                stack.append(p)
    region = [n for n in g.node if id(n) in desc and id(n) in anc and n.op_type != "Constant"]
    in_region = {id(n) for n in region}

    def src(name):
        if not name:
            return "''"
        v = _const_value(name, inits, producers)
        if v is not None:
            return f"const {_fmt_val(v)}"
        p = producers.get(name)
        if p is None:
            return f"input:{name}"
        if id(p) in in_region or p is a_node:
            return f"%{name}"
        return f"ext<{p.op_type}>%{name}"

    print(f"# {path}", file=out)
    print(f"# A = {a_node.op_type} {a_node.name} -> {a_node.output[0]} {shape(a_node.output[0])}", file=out)
    print(f"# B = {b_node.op_type} {b_node.name}", file=out)
    side = []
    for n in region:
        ins = ", ".join(src(i) for i in n.input)
        outs = ", ".join(f"%{o} {shape(o)}" for o in n.output)
        print(f"{n.op_type:10s} {_attrs(n)} ({ins}) -> {outs}", file=out)
        for k, i in enumerate(n.input):
            p = producers.get(i)
            data_input = n.op_type in ("Mul", "Add", "Sub", "Div", "Concat", "Where") or (
                k == 0 and n.op_type not in ("Reshape", "Slice", "Expand", "Unsqueeze", "Squeeze", "Split")
            )
            if (
                i
                and p is not None
                and id(p) not in in_region
                and p is not a_node
                and not is_const(i)
                and data_input
            ):
                side.append(i)
    # the table cone: ancestors of the side inputs, up to graph inputs
    cone, stack = set(), [producers[s] for s in dict.fromkeys(side)]
    while stack:
        n = stack.pop()
        if id(n) in cone or id(n) in in_region:
            continue
        cone.add(id(n))
        for i in n.input:
            p = producers.get(i)
            if p is not None:
                stack.append(p)
    cone_nodes = [n for n in g.node if id(n) in cone and n.op_type != "Constant"]
    print(f"# side inputs of the region: {list(dict.fromkeys(side))}", file=out)
    print(f"# their producer cone ({len(cone_nodes)} non-Constant nodes, last {max_cone} shown):", file=out)
    for n in cone_nodes[-max_cone:]:
        ins = ", ".join(
            src(i) if producers.get(i) is None or id(producers[i]) not in cone else f"%{i}" for i in n.input
        )
        outs = ", ".join(f"%{o} {shape(o)}" for o in n.output)
        print(f"  {n.op_type:10s} {_attrs(n)} ({ins}) -> {outs}", file=out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--max-cone", type=int, default=60)
    args = ap.parse_args()
    for p in args.models:
        dump(p, args.max_cone)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
