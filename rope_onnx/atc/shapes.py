"""Input shapes of a profile variant and their rendering to ATC's exact syntax.

Three ways ATC accepts non-fixed dimensions (CANN ATC reference, ``--input_shape`` and
``--dynamic_dims``; https://www.hiascend.com/document/detail/en/canncommercial/800/devaids/atc/atlasatcparam_16_0016.html
and .../atlasatcparam_16_0020.html):

- ``static``: every dimension a positive integer: ``--input_shape="a:1,128;b:1,128"``.
- ``dynamic_dims`` (gears): a dimension is ``-1`` in ``--input_shape`` and
  ``--dynamic_dims="v1,v2;v1',v2'"`` lists one profile per gear; the values of a profile fill the
  ``-1`` placeholders in the order they appear in ``--input_shape``; 2..100 profiles; needs
  ``--input_format=ND``.  Each gear is compiled statically: the fastest option on the NPU.
- ``range``: a dimension is ``lo~hi`` (or ``-1``: any size) inside ``--input_shape`` itself (CANN
  versions that accept ranges there; ``--input_shape_range`` is deprecated and not used).  The model
  is compiled once with dynamic-shape kernels.

A profile writes a dimension as an integer, a symbol (a key of the variant's ``dims`` table or of the
profile's ``[model]`` table) or ``symbol+N`` (e.g. ``past+1`` for an attention mask that covers
the past and the new token).  One of :data:`GRAPH_SYMBOLS` left out of ``[model]`` is a size read from
the graph when the profile is fitted to it (:mod:`rope_onnx.atc.fit`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MODES = ("static", "dynamic_dims", "range")
MIN_GEARS, MAX_GEARS = 2, 100  # ATC: "The profile range is (1,100]"
_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\+\s*(\d+))?\s*$")
_RANGE = re.compile(r"^\s*(\d+)\s*~\s*(\d+)\s*$")
#: [model] symbols a profile may leave to the graph (read from the axis they label).
GRAPH_SYMBOLS = ("num_layers", "num_heads", "num_kv_heads", "head_dim")


@dataclass(frozen=True)
class DimValue:
    """One symbol's value in a variant: fixed, a list of gears, a range, or unbounded (-1)."""

    fixed: int | None = None
    gears: tuple[int, ...] = ()
    low: int | None = None
    high: int | None = None  # low/high both None and fixed None and no gears: unbounded
    graph: str | None = None  # a GRAPH_SYMBOLS name: the graph's size on this axis, set by atc.fit

    @property
    def free(self) -> bool:
        """A size ATC is told is not fixed (gears, a range, -1); a size from the graph is fixed."""
        return self.fixed is None and self.graph is None

    def shifted(self, offset: int) -> DimValue:
        if self.fixed is not None:
            return DimValue(fixed=self.fixed + offset)
        if self.gears:
            return DimValue(gears=tuple(g + offset for g in self.gears))
        if self.low is not None and self.high is not None:
            return DimValue(low=self.low + offset, high=self.high + offset)
        return self


@dataclass(frozen=True)
class InputShape:
    name: str
    dims: tuple[DimValue, ...]


def parse_dim_value(raw: object, mode: str, key: str) -> DimValue:
    """Read one entry of a variant's ``dims`` table; ``key`` names it in errors."""
    if isinstance(raw, bool):
        raise ValueError(f"{key}: expected a number, got {raw!r}")
    if isinstance(raw, int):
        if raw == -1 and mode == "range":
            return DimValue()
        if raw <= 0:
            raise ValueError(f"{key}: a dimension must be a positive integer, got {raw}")
        return DimValue(fixed=raw)
    if isinstance(raw, list):
        if mode != "dynamic_dims":
            raise ValueError(f'{key}: a list of gears needs mode = "dynamic_dims" (mode is "{mode}")')
        if not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in raw):
            raise ValueError(f"{key}: gears must be positive integers, got {raw!r}")
        if not MIN_GEARS <= len(raw) <= MAX_GEARS:
            raise ValueError(f"{key}: ATC takes {MIN_GEARS}..{MAX_GEARS} gears, got {len(raw)}")
        if len(set(raw)) != len(raw):
            raise ValueError(f"{key}: gears repeat a value: {raw!r}")
        return DimValue(gears=tuple(raw))
    if isinstance(raw, str):
        match = _RANGE.match(raw)
        if not match:
            raise ValueError(f'{key}: expected "lo~hi", got {raw!r}')
        if mode != "range":
            raise ValueError(f'{key}: a range "lo~hi" needs mode = "range" (mode is "{mode}")')
        low, high = int(match[1]), int(match[2])
        if not 0 < low <= high:
            raise ValueError(f"{key}: range needs 0 < lo <= hi, got {raw!r}")
        return DimValue(low=low, high=high)
    raise ValueError(f'{key}: expected an integer, a list of gears or "lo~hi", got {raw!r}')


def resolve_dim(raw: object, symbols: dict[str, DimValue], key: str) -> DimValue:
    """Resolve one entry of an input's ``shape`` list against the known symbols."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw <= 0:
            raise ValueError(f"{key}: a literal dimension must be positive, got {raw}")
        return DimValue(fixed=raw)
    if not isinstance(raw, str) or not (match := _EXPR.match(raw)):
        raise ValueError(f'{key}: expected an integer, a symbol or "symbol+N", got {raw!r}')
    name, offset = match[1], int(match[2] or 0)
    if name not in symbols and name in GRAPH_SYMBOLS:
        if offset:
            raise ValueError(f"{key}: '{raw}' adds to a size read from the graph; pin '{name}' in [model]")
        return DimValue(graph=name)
    if name not in symbols:
        raise ValueError(f"{key}: unknown symbol '{name}' (define it in the variant's dims or in [model])")
    value = symbols[name]
    if offset and value.fixed is None and not value.gears and value.low is None:
        raise ValueError(f"{key}: '{raw}' adds to an unbounded dimension; give '{name}' a range")
    return value.shifted(offset)


def gear_count(inputs: list[InputShape]) -> int:
    """Number of gears (0 when no dimension has gears); all gear lists must agree."""
    counts = {len(d.gears) for i in inputs for d in i.dims if d.gears}
    if len(counts) > 1:
        raise ValueError(
            f"all gear lists must have the same length (profile k uses the k-th gear), got {sorted(counts)}"
        )
    return counts.pop() if counts else 0


def _render_dim(dim: DimValue) -> str:
    if dim.graph is not None:  # not fitted to a graph yet (never reaches ATC: plan() fits first)
        return dim.graph
    if dim.fixed is not None:
        return str(dim.fixed)
    if dim.gears:
        return "-1"
    if dim.low is not None:
        return f"{dim.low}~{dim.high}"
    return "-1"


def render_input_shape(inputs: list[InputShape]) -> str:
    """``name:d0,d1;name2:d0,d1`` as ``--input_shape`` takes it."""
    return ";".join(f"{i.name}:{','.join(_render_dim(d) for d in i.dims)}" for i in inputs)


def render_dynamic_dims(inputs: list[InputShape]) -> str:
    """``--dynamic_dims`` value: one profile per gear, values in -1 placeholder order."""
    count = gear_count(inputs)
    placeholders = [d for i in inputs for d in i.dims if d.gears]
    return ";".join(",".join(str(d.gears[k]) for d in placeholders) for k in range(count))


def placeholder_count(inputs: list[InputShape]) -> int:
    return sum(1 for i in inputs for d in i.dims if d.gears)
