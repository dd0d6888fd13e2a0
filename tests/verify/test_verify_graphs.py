"""Hand-built original/fused model pairs for the verify tests (and checks that they are sound).

``tiny_llm`` builds a two-site attention block the way exporters write it: token embedding
(Gather on input_ids), cos/sin caches gathered by position_ids, RoPE on q and k, a KV cache
(past_key concatenated with k), an attention mask, logits.  With ``fused=True`` each RoPE site
is one RoPECustomer node (default domain, output name kept), as the fusion pass writes it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.op.decomposition import runnable_copy
from rope_onnx.op.reference import rope

VOCAB, HEADS, HEAD_DIM, MAX_POS = 50, 2, 8, 64
HIDDEN = HEADS * HEAD_DIM
NP = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.BFLOAT16: np.float32}


class _G:
    def __init__(self, elem: int) -> None:
        self.elem, self.nodes, self.inits, self.count = elem, [], [], 0

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        self.count += 1
        out = out or f"{op_type.lower()}_{self.count}"
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [out], name=f"/{op_type}_{self.count}", **attrs)
        )
        return out

    def const(self, name: str, array: np.ndarray, elem: int | None = None) -> str:
        tensor = numpy_helper.from_array(np.asarray(array), name)
        if elem == TensorProto.BFLOAT16:
            tensor = helper.make_tensor(
                name, TensorProto.BFLOAT16, array.shape, np.asarray(array).flatten().tolist()
            )
        self.inits.append(tensor)
        return name

    def ints(self, *values: int) -> str:
        self.count += 1
        return self.const(f"c{self.count}", np.array(values, dtype=np.int64))


def rotate_half_site(g: _G, x: str, cos: str, sin: str, out: str, half: int) -> None:
    """HF rotate_half: y = x*cos + cat(-x2, x1)*sin."""
    x1 = g.op("Slice", x, g.ints(0), g.ints(half), g.ints(-1))
    x2 = g.op("Slice", x, g.ints(half), g.ints(2**62), g.ints(-1))
    rot = g.op("Concat", g.op("Neg", x2), x1, axis=-1)
    g.op("Add", g.op("Mul", x, cos), g.op("Mul", rot, sin), out=out)


def complex_site(g: _G, x: str, cos_half: str, sin_half: str, out: str) -> None:
    """Meta's complex form on half-width tables: pairs (2i, 2i+1) rotated by (c_i, s_i)."""
    shape = g.op("Shape", x)
    pairs = g.op(
        "Reshape", x, g.op("Concat", g.op("Slice", shape, g.ints(0), g.ints(-1)), g.ints(-1, 2), axis=0)
    )
    even = g.op("Squeeze", g.op("Slice", pairs, g.ints(0), g.ints(1), g.ints(-1)), g.ints(-1))
    odd = g.op("Squeeze", g.op("Slice", pairs, g.ints(1), g.ints(2), g.ints(-1)), g.ints(-1))
    y0 = g.op("Sub", g.op("Mul", even, cos_half), g.op("Mul", odd, sin_half))
    y1 = g.op("Add", g.op("Mul", even, sin_half), g.op("Mul", odd, cos_half))
    stacked = g.op("Concat", g.op("Unsqueeze", y0, g.ints(-1)), g.op("Unsqueeze", y1, g.ints(-1)), axis=-1)
    g.op("Reshape", stacked, shape, out=out)


def tiny_llm(
    elem: int = TensorProto.FLOAT, form: str = "half", fused: bool = False, corrupt: str = "", seed: int = 0
) -> onnx.ModelProto:
    """An attention block with RoPE on q and k; ``corrupt``: "swap" (cos/sin of the k site) or
    "interleaved" (wrong attribute on the k site) — only meaningful with ``fused=True``."""
    rng = np.random.default_rng(seed)
    g = _G(elem)
    dtype = NP[elem]
    emb = g.const("embed.weight", (rng.standard_normal((VOCAB, HIDDEN)) * 0.5).astype(dtype), elem)
    wq = g.const("wq", (rng.standard_normal((HIDDEN, HIDDEN)) * 0.3).astype(dtype), elem)
    wk = g.const("wk", (rng.standard_normal((HIDDEN, HIDDEN)) * 0.3).astype(dtype), elem)
    width = HEAD_DIM if form == "half" else HEAD_DIM // 2
    inv = 1.0 / (10000 ** (np.arange(0, HEAD_DIM, 2) / HEAD_DIM))
    angles = np.outer(np.arange(MAX_POS), inv)
    if form == "half":
        angles = np.concatenate([angles, angles], axis=-1)
    cos_cache = g.const("cos_cached", np.cos(angles).astype(dtype), elem)
    sin_cache = g.const("sin_cached", np.sin(angles).astype(dtype), elem)
    hidden = g.op("Gather", emb, "input_ids", out="hidden")
    cos = g.op("Unsqueeze", g.op("Gather", cos_cache, "position_ids"), g.ints(1), out="cos")  # [B,1,S,W]
    sin = g.op("Unsqueeze", g.op("Gather", sin_cache, "position_ids"), g.ints(1), out="sin")
    heads = {}
    for name, w in (("q", wq), ("k", wk)):
        proj = g.op("Reshape", g.op("MatMul", hidden, w), g.ints(0, 0, HEADS, HEAD_DIM))
        heads[name] = g.op("Transpose", proj, perm=[0, 2, 1, 3], out=f"{name}_states")  # [B,H,S,D]
    tables = (cos, sin)
    if fused and form == "complex":  # the pass widens half-width tables once, shared by all sites
        idx = g.const("rope_widen_idx", np.repeat(np.arange(width), 2).astype(np.int64))
        tables = ("cos_wide", "sin_wide")
        for table, wide in zip((cos, sin), tables, strict=True):  # named as the pass names what it adds
            g.nodes.append(
                helper.make_node("Gather", [table, idx], [wide], name=f"rope_onnx/{wide}", axis=-1)
            )
    after_sites = g.count
    for number, name in enumerate(("q", "k")):
        g.count = 1000 * (number + 1)  # a site's nodes have their own numbers: the rest of the graph is
        out = f"{name}_embed"  # named alike in both models, so FUSED derives from ORIGINAL (verify/derive.py)
        if fused:
            c, s = tables[::-1] if (corrupt == "swap" and name == "k") else tables
            inter = 1 if form == "complex" else 0
            if corrupt == "interleaved" and name == "k":
                inter = 1 - inter
            g.nodes.append(
                helper.make_node(
                    "RoPECustomer", [heads[name], c, s], [out], name=f"/rope_{name}", interleaved=inter
                )
            )
        elif form == "half":
            rotate_half_site(g, heads[name], cos, sin, out, HEAD_DIM // 2)
        else:
            complex_site(g, heads[name], cos, sin, out)
    g.count = after_sites
    present = g.op("Concat", "past_key", "k_embed", axis=2, out="present_key")  # [B,H,P+S,D]
    scores = g.op("MatMul", "q_embed", g.op("Transpose", present, perm=[0, 1, 3, 2]))
    scale = g.const("scale", np.array(HEAD_DIM**-0.5, dtype=dtype), elem)
    mask = g.op("Cast", g.op("Unsqueeze", "attention_mask", g.ints(1, 2)), to=elem)  # [B,1,1,T]
    one = g.const("one", np.array(1.0, dtype=dtype), elem)
    big = g.const("neg_big", np.array(-1e4, dtype=dtype), elem)
    bias = g.op("Mul", g.op("Sub", one, mask), big)
    probs = g.op("Softmax", g.op("Add", g.op("Mul", scores, scale), bias), axis=-1)
    attn = g.op(
        "Reshape", g.op("Transpose", g.op("MatMul", probs, present), perm=[0, 2, 1, 3]), g.ints(0, 0, HIDDEN)
    )
    g.op("MatMul", attn, g.op("Transpose", emb, perm=[1, 0]), out="logits")
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info(
            "attention_mask", TensorProto.INT64, ["batch_size", "past_sequence_length + sequence_length"]
        ),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info(
            "past_key", elem, ["batch_size", HEADS, "past_sequence_length", HEAD_DIM]
        ),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", elem, ["batch_size", "sequence_length", VOCAB]),
        helper.make_tensor_value_info("present_key", elem, ["batch_size", HEADS, None, HEAD_DIM]),
    ]
    graph = helper.make_graph(g.nodes, "tiny_llm", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    return model


def save(model: onnx.ModelProto, path, external: bool = False) -> str:
    if external:
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save(model, str(path))
    return str(path)


def test_hand_built_fused_pairs_agree_with_the_numpy_reference_site_by_site():
    """The builders themselves: the original's site computes rope() on the same tensors."""
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    feeds = {
        "input_ids": rng.integers(0, VOCAB, (2, 5)),
        "attention_mask": np.ones((2, 8), np.int64),
        "position_ids": np.broadcast_to(np.arange(3, 8), (2, 5)).copy(),
        "past_key": rng.standard_normal((2, HEADS, 3, HEAD_DIM)).astype(np.float32),
    }
    for form, inter in (("half", 0), ("complex", 1)):
        model = tiny_llm(form=form)
        extra = ["q_states", "cos", "sin", "q_embed"]
        model.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in extra)
        x, cos, sin, y = ort.InferenceSession(model.SerializeToString()).run(extra, feeds)
        if form == "complex":
            cos, sin = np.repeat(cos, 2, axis=-1), np.repeat(sin, 2, axis=-1)
        np.testing.assert_allclose(y, rope(x, cos, sin, interleaved=inter), atol=1e-5)
        fused = runnable_copy(tiny_llm(form=form, fused=True))
        logits = ort.InferenceSession(fused.SerializeToString()).run(["logits"], feeds)[0]
        assert logits.shape == (2, 5, VOCAB)
