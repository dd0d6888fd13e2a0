"""Site shapes where the fused node reads a view of an original tensor (rope_onnx.fusion.views).

Meta's real-arithmetic RoPE has no ``[B, L, H, D]`` x in the graph: the pass writes
``Reshape(projection, [0, 0, H, D])`` and the fused node reads that; ChatGLM's tables are a view
``[-1, 0, 1, R]`` of its ``[B, L, R/2, 2]`` cache.  Both models still share the original tensor, so
the cut is fed there; but the tables broadcast against the view, not the projection.  So the
shapes are chosen on the views (:func:`viewed`), then carried back to the tensors fed
(:func:`source_shape`): a copied (``0``) axis keeps its size, static axes stay, and the one axis
left is what the element count leaves.
"""

from __future__ import annotations

import numpy as np

from rope_onnx.errors import InputError
from rope_onnx.verify.dims import OTHER, DimValues
from rope_onnx.verify.feeds import InputSpec

__all__ = ["source_shape", "viewed"]


def viewed(spec: InputSpec | None, shape: tuple[int, ...]) -> InputSpec | None:
    """The spec of ``Reshape(spec, shape)`` for a constant ``shape`` (``allowzero`` 0); -1 unknown."""
    if spec is None or spec.dims is None:
        return spec
    dims = tuple(
        (spec.dims[i] if i < len(spec.dims) else None) if e == 0 else e if e > 0 else None
        for i, e in enumerate(shape)
    )
    return InputSpec(spec.name, spec.elem_type, dims)


def source_shape(
    spec: InputSpec, shape: tuple[int, ...], view: tuple[int, ...], dims: DimValues, site: str
) -> tuple[int, ...]:
    """A concrete shape of the original tensor whose ``Reshape(·, shape)`` has the concrete ``view``."""
    assert spec.dims is not None  # viewed() left unknown-rank specs alone: site_shapes refused them
    out: list[int | None] = []
    for i, d in enumerate(spec.dims):
        copied = i < len(shape) - 1 and shape[i] == 0
        out.append(view[i] if copied else d if isinstance(d, int) and d > 0 else None)
    size = int(np.prod(view))
    known = int(np.prod([v for v in out if v is not None]))
    missing = [i for i, v in enumerate(out) if v is None]
    if len(missing) == 1 and known and size % known == 0:
        out[missing[0]] = size // known
    final = [v if v is not None else _resolve(spec.dims[i], dims) for i, v in enumerate(out)]
    if _reshaped(final, shape) != list(view):
        raise InputError(
            f"site '{site}': no shape of '{spec.name}' {list(spec.dims)} holds the {list(view)} the fused "
            "node reads as its view; give the dims with --dim or verify without --sites"
        )
    return tuple(final)


def _resolve(dim: object, dims: DimValues) -> int:
    return dims.resolve(dim) if isinstance(dim, str) else OTHER


def _reshaped(source: list[int], shape: tuple[int, ...]) -> list[int] | None:
    """The shape ``Reshape`` gives ``source`` for ``shape`` (``allowzero`` 0), or None where it fails."""
    out = [source[i] if e == 0 and i < len(source) else e for i, e in enumerate(shape)]
    if out.count(-1) > 1:
        return None
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        if not known or int(np.prod(source)) % known:
            return None
        out[out.index(-1)] = int(np.prod(source)) // known
    return out if int(np.prod(out)) == int(np.prod(source)) else None
