"""Hand-built graphs for the adversarial ``test_trust_*`` tests, and the one check they share.

Each graph is a plain ``rotate_half`` RoPE site (``y = x * cos + rotate_half(x) * sin``) in which
one fact the proof needs — a bound, a table's shape, a domain — is written the way a hostile or
unusual model writes it.  :func:`fuse_and_check` fuses a copy and, when anything fused, runs the
original and the fused model on ONNX Runtime with feeds the original accepts: a fused site whose
outputs differ is a wrong fusion, the one defect these tests exist to rule out.
"""

from __future__ import annotations

import numpy as np
import onnx
from conftest import run_model
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.fusion import FuseResult, fuse_model

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
D = 16  # head_dim of every site here


def symbol_feeds(
    seed: int, sizes: dict[str, tuple[int, int]], inputs: list[tuple[str, list]]
) -> tuple[dict[str, np.ndarray], ...]:
    """Four float32 feed sets for ``inputs`` whose dims are sizes or symbols of ``sizes``: every symbol
    at its first size, every symbol at its second, then two mixes (each symbol's size alternating with
    its position), so a proof that confused two symbols meets feeds where they differ."""
    rng = np.random.default_rng(seed)
    sets = []
    for pick in range(4):
        values = {s: v[pick % 2] if pick < 2 else v[(pick + i) % 2] for i, (s, v) in enumerate(sizes.items())}
        shapes = {name: [values.get(d, d) for d in dims] for name, dims in inputs}
        sets.append({name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()})
    return tuple(sets)


class Graph:
    """A tiny graph builder: constants as initializers, nodes with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: object) -> str:
        self.n += 1
        outs = [f"{op_type.lower()}{self.n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{op_type}_{self.n}", **attrs))
        return outs[0]

    def const(self, value: object, dtype: object = np.int64) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name

    def last_slice(self, data: str, start: str, end: str) -> str:
        return self.op("Slice", [data, start, end, self.const([-1])])

    def computed_tables(self, source: str, axis: int) -> list[str]:
        """cos and sin as exporters compute them: positions ``Range(0, Shape(source)[axis])`` times the
        inverse frequencies, ``Cos``/``Sin``, ``Unsqueeze`` to rank 4 ([1, 1, rows, D])."""
        rows = self.op("Gather", [self.op("Shape", [source]), self.const(axis)], axis=0)
        positions = self.op(
            "Cast", [self.op("Range", [self.const(0), rows, self.const(1)])], to=TensorProto.FLOAT
        )
        inverse = (1.0 / 10000 ** (np.arange(0, D, 2) / D)).astype(np.float32)
        freqs = self.op(
            "Mul", [self.op("Unsqueeze", [positions, self.const([1])]), self.const(inverse, np.float32)]
        )
        emb = self.op("Concat", [freqs, freqs], axis=-1)
        return [self.op("Unsqueeze", [self.op(op, [emb]), self.const([0, 1])]) for op in ("Cos", "Sin")]

    def rope(self, x: str, cos: str, sin: str, mid: str | None = None) -> str:
        """``x * cos + cat(-x[..., mid:], x[..., :mid]) * sin``; ``mid`` defaults to D/2."""
        mid = mid or self.const([D // 2])
        x1 = self.last_slice(x, self.const([0]), mid)
        x2 = self.last_slice(x, mid, self.const([INT64_MAX]))
        rot = self.op("Concat", [self.op("Neg", [x2]), x1], axis=-1)
        return self.op("Add", [self.op("Mul", [x, cos]), self.op("Mul", [rot, sin])])

    def model(
        self,
        inputs: list[tuple[str, list]],
        outputs: list[str],
        opset: int = 17,
        elem: int = TensorProto.FLOAT,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "trust",
            [helper.make_tensor_value_info(name, elem, dims) for name, dims in inputs],
            [helper.make_tensor_value_info(name, elem, None) for name in outputs],
            initializer=self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        return model


def plain_site(table: list | None = None, x: list | None = None) -> onnx.ModelProto:
    """One site, x ``[B, 3, L, 16]`` and tables ``[1, 1, L, 16]`` unless told otherwise."""
    g = Graph()
    y = g.rope("x", "cos", "sin")
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    table = table or [1, 1, "L", D]
    return g.model([("x", x or ["B", 3, "L", D]), ("cos", table), ("sin", table)], ["y"])


def random_feeds(shapes: dict[str, list[int]], seed: int = 0, dtype: object = np.float32) -> dict:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(dtype) for name, shape in shapes.items()}


def copy_of(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def fuse_and_check(
    model: onnx.ModelProto, feed_sets: list[dict[str, np.ndarray]], domain: str = ""
) -> tuple[FuseResult, onnx.ModelProto]:
    """Fuse a copy of ``model``; when a site fused, every output must equal the original's on
    every feed set the original accepts (float32, 1e-5)."""
    fused = copy_of(model)
    result = fuse_model(fused, domain)
    if result.fused:
        for feeds in feed_sets:
            want, got = run_model(model, feeds), run_model(fused, feeds)
            for name, value in want.items():
                assert got[name].shape == value.shape, (
                    f"wrong fusion: '{name}' {got[name].shape} != {value.shape}"
                )
                np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5, err_msg="wrong fusion")
    return result, fused


def reasons(result: FuseResult) -> str:
    return " | ".join(s.reason for s in result.skipped)
