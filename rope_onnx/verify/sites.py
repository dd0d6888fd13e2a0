"""Per-site local proof: each fused site against the original nodes it replaced, without weights.

A site's output tensor keeps its name through the fusion, and so do its inputs: ``x`` and the
cos/sin tables as the ORIGINAL graph consumes them (the pass may add a widening node between a
half-width table and the fused node; that node belongs to the fused side of the cut).  So each
site can be cut out of both models at the same three tensors — a backward walk from the site
output that stops at them — and the two small graphs run on random tensors of the site's
shapes.  Nothing upstream of x and the tables is in a cut, hence no weight: this is how a 70B
model is verified on a laptop, and why a site is judged on its own and not through the logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, numpy_helper

from rope_onnx.errors import InputError
from rope_onnx.op.contract import CONVERTED_PREFIX, OP_TYPE, attributes_of, is_rope_node
from rope_onnx.verify.cut import consumers, producers
from rope_onnx.verify.dims import OTHER, DimValues
from rope_onnx.verify.feeds import InputSpec, numpy_dtype, to_bfloat16_grid
from rope_onnx.verify.views import source_shape, viewed


@dataclass(frozen=True)
class Site:
    """One fused node and the tensors both models share around it."""

    node: str
    output: str
    x: str
    cos: str  # as the original graph consumes it
    sin: str
    interleaved: int
    rotary_dim: int
    #: original tensor -> the constant shape of the Reshape the pass wrote to read it as a view
    views: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def cut_inputs(self) -> tuple[str, ...]:
        """x, cos and sin, each once (ChatGLM's cos and sin are two views of one cache)."""
        return tuple(dict.fromkeys((self.x, self.cos, self.sin)))


def tensor_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    return names | {out for node in graph.node for out in node.output if out}


class _FusedGraph:
    """Producers and constants of the fused graph, indexed once for all its sites."""

    def __init__(self, fused: ModelProto) -> None:
        self.made_by = producers(fused.graph)
        self.constants = {t.name for t in fused.graph.initializer}
        self.constants |= {out for out, node in self.made_by.items() if node.op_type == "Constant"}
        self.values = {  # small int64 vectors: the constant shapes of the Reshapes the pass writes
            t.name: numpy_helper.to_array(t)
            for t in fused.graph.initializer
            if t.data_type == TensorProto.INT64
            and len(t.dims) == 1
            and t.dims[0] <= 8
            and t.data_location != TensorProto.EXTERNAL
        }
        self.read_by = consumers(fused.graph)

    def site_output(self, output: str, original_names: set[str]) -> str:
        """The original tensor a fused node computes: its output, or the output of the one Gather/Concat
        that moves its channels into the site's order (a site that is a permutation of the op)."""
        readers = self.read_by.get(output, [])
        if output not in original_names and len(readers) == 1 and readers[0].output[0] in original_names:
            return readers[0].output[0]
        return output

    def original_tensor(
        self, name: str, original_names: set[str], site: str, views: dict[str, tuple[int, ...]]
    ) -> str:
        """Follow an input of the fused node back through nodes the fusion added (a widening Gather
        of a table, a Slice of the window of x a site rotates, the Reshape of a view: its constant
        shape goes into ``views``) to the tensor the original consumes."""
        seen = name
        for _ in range(8):
            if seen in original_names:
                return seen
            node = self.made_by.get(seen)
            data = [i for i in (node.input if node else ()) if i and i not in self.constants]
            if len(data) != 1:
                break
            if node is not None and node.op_type == "Reshape" and node.input[1] in self.values:
                views[data[0]] = tuple(int(v) for v in self.values[node.input[1]])
            seen = data[0]
        raise InputError(
            f"site '{site}': input '{name}' of the fused node does not lead back to a tensor of the "
            "original model; the two models do not correspond"
        )


def find_sites(original: ModelProto, fused: ModelProto) -> list[Site]:
    """The RoPECustomer nodes of ``fused``, each with the tensors it shares with ``original``."""
    names = tensor_names(original.graph)
    graph = _FusedGraph(fused)
    # RoPECustomer nodes the original already had are not sites of this fusion: they stay as they were
    already = {n.output[0] for n in original.graph.node if is_rope_node(n) and n.output}
    sites = []
    for node in fused.graph.node:
        if not is_rope_node(node) or node.name.startswith(CONVERTED_PREFIX):
            continue  # converted from a rotary op: reads caches, not the original's tables; outputs judge it
        if node.output and node.output[0] in already:
            continue
        label = node.name or node.output[0]
        if len(node.input) != 3 or len(node.output) != 1:
            raise InputError(f"{OP_TYPE} node '{label}' must have 3 inputs and 1 output")
        views: dict[str, tuple[int, ...]] = {}
        x = graph.original_tensor(node.input[0], names, label, views)  # a window Slice the pass added
        output = graph.site_output(node.output[0], names)
        for tensor in (output, x):
            if tensor not in names:
                raise InputError(
                    f"site '{label}': tensor '{tensor}' is not in the original model; the two models do not "
                    "correspond (the fused model must come from the original)"
                )
        attrs = attributes_of(node)
        cos, sin = (graph.original_tensor(t, names, label, views) for t in node.input[1:3])
        viewed = tuple(sorted(views.items()))
        sites.append(Site(label, output, x, cos, sin, attrs.interleaved, attrs.rotary_dim, viewed))
    return sites


def site_shapes(
    site: Site, specs: dict[str, InputSpec], dims: DimValues, head_widths: dict[str, int]
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for x, cos, sin; where the fused node reads views of them (verify.views),
    chosen on the views and carried back to the tensors both cuts are fed."""
    if not site.views:
        return _site_shapes(site, specs, dims, head_widths)
    views = dict(site.views)
    seen = {**specs, **{n: s for n, shape in views.items() if (s := viewed(specs.get(n), shape)) is not None}}
    shapes = _site_shapes(site, seen, dims, head_widths)
    return {
        n: source_shape(specs[n], views[n], s, dims, site.node) if n in views else s
        for n, s in shapes.items()
    }


def _site_shapes(
    site: Site, specs: dict[str, InputSpec], dims: DimValues, head_widths: dict[str, int]
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for x, cos, sin at which the cut runs as the model does.

    The same symbol gets the same value.  A table's leading dims must broadcast against x: 1 or
    x's size at the axis they align with (from the right, the last axis excepted).  Shape
    inference often names the same size differently (TorchScript: ``seq`` for x, ``unk__0`` for
    the table); a guessed symbol then follows the constraint, and an unknown dim takes x's size.
    """
    x = specs.get(site.x)
    if x is None or x.dims is None or not isinstance(x.dims[-1], int) or x.dims[-1] <= 0:
        raise InputError(
            f"site '{site.node}': the shape of x '{site.x}' is unknown (need at least its last dim); "
            "export with static head sizes or verify without --sites"
        )

    def value(d) -> int | None:
        if isinstance(d, int) and d > 0:
            return d
        return dims.resolve(d) if isinstance(d, str) else None

    x_shape = [value(d) for d in x.dims]
    partial: dict[str, tuple[int | None, ...]] = {}  # None: x's size at the aligned axis
    for name in (site.cos, site.sin):
        spec = specs.get(name)
        if spec is None or spec.dims is None:
            raise InputError(
                f"site '{site.node}': the shape of table '{name}' is unknown; verify without --sites"
            )
        table: list[int | None] = [None] * len(spec.dims)
        for k in range(2, len(spec.dims) + 1):  # leading axes, aligned from the right with x's
            t_dim, axis = spec.dims[-k], len(x_shape) - k
            size = value(t_dim)
            if axis < 0 or size == 1:
                table[-k] = 1 if axis < 0 else size
                continue
            x_size = x_shape[axis]
            if size is None or x_size is None:
                size = x_size if size is None else size
                x_shape[axis] = size if x_size is None else x_size
            elif size != x_size and not (isinstance(t_dim, str) and dims.follow(t_dim, x_size)):
                x_dim = x.dims[axis]
                if not (isinstance(x_dim, str) and dims.follow(x_dim, size)):
                    raise InputError(
                        f"site '{site.node}': table '{name}' axis {-k} is {size} but x '{site.x}' has "
                        f"{x_size} there; give both with --dim or verify without --sites"
                    )
                x_shape[axis] = size
            else:
                size = x_size
            table[-k] = size
        last = value(spec.dims[-1]) or head_widths.get(name) or site.rotary_dim or x_shape[-1]
        partial[name] = (*table[:-1], last)
    x_final = tuple(OTHER if d is None else d for d in x_shape)
    tables = {
        n: tuple(x_final[len(x_final) - len(s) + i] if d is None else d for i, d in enumerate(s))
        for n, s in partial.items()
    }
    return {site.x: x_final, **tables}


def random_inputs(
    site: Site, specs: dict[str, InputSpec], shapes: dict[str, tuple[int, ...]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """x ~ N(0, 1); tables ~ U(-1, 1): arbitrary: the op is exact for any tables (docs/op-contract.md)."""
    arrays = {}
    for name in site.cut_inputs:
        shape, elem = shapes[name], specs[name].elem_type
        raw = rng.standard_normal(shape) if name == site.x else rng.uniform(-1.0, 1.0, shape)
        array = raw.astype(numpy_dtype(elem))
        arrays[name] = to_bfloat16_grid(array) if elem == TensorProto.BFLOAT16 else array
    return arrays


def widened_width(fused: ModelProto, table_input: str) -> int | None:
    """Last dim of the original table behind a widening Gather (its largest index + 1), if any."""
    node = producers(fused.graph).get(table_input)
    if node is None or node.op_type != "Gather":
        return None
    for tensor in fused.graph.initializer:
        if tensor.name == node.input[1]:
            return int(numpy_helper.to_array(tensor).max()) + 1
    return None
