"""Fit a profile variant to the graph it converts: input names by role, sizes the profile leaves open.

A profile input is either a literal graph input name (``name = "input_ids"``, ``{i}`` + ``repeat`` for
one per layer) or a role (``role = "past_key"``) matched against the graph's own input names with the
naming rules every exporter follows (HF/optimum ``past_key_values.<i>.key``, TorchScript
``past_key_<i>``, ``position_ids`` present or not): an export's names need no profile edit.  A role
entry marked ``optional = true`` is dropped when the graph has no such input (``position_ids``, which an
``input_ids`` + ``attention_mask`` export lacks).

The model symbols ``num_layers``, ``num_heads``, ``num_kv_heads`` and ``head_dim`` may be left out of
``[model]``: a shape axis written with one of them takes the graph's size on that axis, and
``num_layers`` (for ``repeat``) is the number of layers the graph's inputs count.  A size the graph
leaves free must then be pinned (``--set model.head_dim=128``).  What was read from the graph is
reported, so a fitted command is never a surprise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import onnx

from rope_onnx.atc.shapes import GRAPH_SYMBOLS, DimValue, InputShape
from rope_onnx.errors import InputError
from rope_onnx.verify.feeds import role_of

#: More inputs than any exported model has (a 100-layer KV-cache graph has ~200).
MAX_INPUTS = 100_000

if TYPE_CHECKING:
    from rope_onnx.atc.profile import Variant

#: ``role`` values of a profile input, each matched by the graph input's name.
ROLES = ("ids", "mask", "positions", "cache_position", "past_key", "past_value")
_TOKEN = re.compile(r"[A-Za-z]+|\d+")


@dataclass(frozen=True)
class InputEntry:
    """One ``inputs`` item of a variant as written: a literal name pattern or a role."""

    name: str | None
    role: str | None
    dims: tuple[DimValue, ...]
    repeat: str | None = None
    optional: bool = False


@dataclass
class Fit:
    """The variant with its inputs bound to the graph, what was read from it, and what does not fit."""

    variant: Variant
    values: dict[str, int] = field(default_factory=dict)  # symbol -> size read from the graph
    problems: list[str] = field(default_factory=list)


def _kv_kind(name: str) -> str | None:
    """'key' or 'value' for a cache input (the LAST key/value token: past_key_values.0.value is a value)."""
    for token in reversed(_TOKEN.findall(name.lower())):
        if token in ("key", "k"):
            return "key"
        if token in ("value", "v"):
            return "value"
    return None


def _layer(name: str) -> int:
    digits = [int(t) for t in _TOKEN.findall(name) if t.isdigit()]
    return digits[0] if digits else -1


def matches(role: str, name: str) -> bool:
    """Whether graph input ``name`` plays ``role`` (the naming rules of :func:`role_of`)."""
    if role in ("past_key", "past_value"):
        return role_of(name) == "past" and _kv_kind(name) == role.removeprefix("past_")
    return role_of(name) == role


def _graph_inputs(model: onnx.ModelProto) -> dict[str, list[int | None] | None]:
    init = {t.name for t in model.graph.initializer}
    out: dict[str, list[int | None] | None] = {}
    for vi in model.graph.input:
        if vi.name in init:
            continue
        tensor = vi.type.tensor_type
        out[vi.name] = (
            [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            if tensor.HasField("shape")
            else None
        )
    return out


def _graph_layers(inputs: dict[str, list[int | None] | None]) -> int | None:
    layers = {_layer(n) for n in inputs if role_of(n) == "past" and _kv_kind(n)}
    return len(layers) if layers and -1 not in layers else None


def fit(variant: Variant, model: onnx.ModelProto | None, pinned: dict[str, int]) -> Fit:
    """Bind ``variant``'s entries to ``model``'s inputs; ``pinned`` are the profile's [model] values.

    Without a model (a profile read on its own) only the literal entries expand, and sizes left to
    the graph stay unresolved: the inputs are complete once fitted to the graph they convert.
    """
    if model is None:
        return _expand_literal(variant, pinned)
    graph = _graph_inputs(model)
    result = Fit(variant)
    values: dict[str, int] = {}
    where: dict[str, str] = {}

    def layers_for(patterns: list[str]) -> int:
        if "num_layers" in pinned:
            return pinned["num_layers"]
        if "num_layers" not in values:
            counted = max((_count(p, graph) for p in patterns), default=0) or _graph_layers(graph) or 0
            if not counted:
                result.problems.append(
                    f"cannot count the layers: no graph input matches {patterns[0]!r}; "
                    "pin them with --set model.num_layers=N"
                )
            values["num_layers"] = counted
            where["num_layers"] = "the graph's per-layer inputs"
        return values["num_layers"]

    def bind(name: str, dims: tuple[DimValue, ...]) -> InputShape:
        have = graph.get(name)
        out = []
        for axis, dim in enumerate(dims):
            if dim.graph is None:
                out.append(dim)
                continue
            size = have[axis] if have is not None and axis < len(have) else None
            if size is None:
                if dim.graph not in values:
                    result.problems.append(
                        f"'{name}' axis {axis} ({dim.graph}) is free in the graph; "
                        f"pin it with --set model.{dim.graph}=N"
                    )
                out.append(DimValue(fixed=values.get(dim.graph, 1)))
                continue
            if values.setdefault(dim.graph, size) != size:
                result.problems.append(
                    f"'{name}' axis {axis} is {size} but {dim.graph} is {values[dim.graph]} "
                    f"({where[dim.graph]}); pin it with --set model.{dim.graph}=N"
                )
            where.setdefault(dim.graph, f"'{name}' axis {axis}")
            out.append(DimValue(fixed=size))
        return InputShape(name, tuple(out))

    entries = list(variant.entries)
    bound: list[InputShape] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        if entry.role is not None:
            group = [entry]  # consecutive role entries: graph order (layer by layer, key before value)
            while index + 1 < len(entries) and entries[index + 1].role is not None:
                index += 1
                group.append(entries[index])
            for name in graph:
                hit = next((e for e in group if matches(e.role or "", name)), None)
                if hit is not None and not any(b.name == name for b in bound):
                    bound.append(bind(name, hit.dims))
            for e in group:
                if not e.optional and not any(matches(e.role or "", n) for n in graph):
                    result.problems.append(f"no graph input plays the role '{e.role}' (ATC: E10016)")
            layers = {_layer(b.name) for b in bound if role_of(b.name) == "past"}
            if "num_layers" in pinned and layers and len(layers) != pinned["num_layers"]:
                result.problems.append(
                    f"the graph has {len(layers)} layers (its cache inputs), the profile pins "
                    f"num_layers = {pinned['num_layers']}"
                )
        elif entry.repeat:
            group = [entry]  # consecutive repeated entries expand layer by layer
            while index + 1 < len(entries) and entries[index + 1].repeat == entry.repeat:
                index += 1
                group.append(entries[index])
            patterns = [e.name or "" for e in group]
            count = pinned[entry.repeat] if entry.repeat in pinned else layers_for(patterns)
            _bound_inputs(len(bound) + count * len(group), entry.repeat, count)
            for i in range(count):
                bound.extend(bind((e.name or "").replace("{i}", str(i)), e.dims) for e in group)
        else:
            bound.append(bind(entry.name or "", entry.dims))
        index += 1
    result.values = {k: v for k, v in values.items() if k not in pinned and k in GRAPH_SYMBOLS}
    result.variant = replace(variant, inputs=bound)
    return result


def _expand_literal(variant: Variant, pinned: dict[str, int]) -> Fit:
    inputs: list[InputShape] = []
    entries = [e for e in variant.entries if e.role is None]
    index = 0
    while index < len(entries):
        group = [entries[index]]
        repeat = entries[index].repeat
        while repeat and index + 1 < len(entries) and entries[index + 1].repeat == repeat:
            index += 1
            group.append(entries[index])
        count = pinned.get(repeat, 0) if repeat else 1
        _bound_inputs(len(inputs) + count * len(group), repeat or "", count)
        for i in range(count):
            inputs.extend(InputShape((e.name or "").replace("{i}", str(i)), e.dims) for e in group)
        index += 1
    return Fit(replace(variant, inputs=inputs))


def _bound_inputs(total: int, repeat: str, count: int) -> None:
    """Refuse a profile whose repeats expand to more inputs than any model has (10**9 would hang)."""
    if total > MAX_INPUTS:
        raise InputError(
            f"profile inputs: 'repeat = \"{repeat}\"' ({repeat} = {count}) expands to more than "
            f"{MAX_INPUTS} inputs; no model has that many"
        )


def _count(pattern: str, graph: dict[str, list[int | None] | None]) -> int:
    count = 0
    while pattern.replace("{i}", str(count)) in graph:
        count += 1
    return count
