"""Site inputs the rewrite creates: views of a Reshape's input (:class:`~rope_onnx.fusion.ops.reshape.View`).

Meta's real-arithmetic RoPE reshapes the ``[B, L, H*D]`` projection straight to ``[B, L, H, D/2, 2]``,
so no ``[B, L, H, D]`` x exists in the graph; ChatGLM reshapes its ``[B, L, R/2, 2]`` cache to
``[-1, L, 1, R/2, 2]``.  The tracer follows such a Reshape through a view (the input reshaped to the
target's leading entries and one channel axis).  Here the view gets what the other checks of a site
input need: dims named by their sources (the same :class:`~rope_onnx.fusion.dimproof.DimProver`
names the table-broadcast proof compares), the element type of its source, and the constant shape
of the one Reshape the rewrite writes for it — or the reason no constant shape is proven.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rope_onnx.fusion.channels import NotRope
from rope_onnx.fusion.dimproof import DimProver
from rope_onnx.fusion.ops.dimnames import SourceDims
from rope_onnx.fusion.ops.registry import fold_ints
from rope_onnx.fusion.ops.reshape import View, view_dims, view_shape
from rope_onnx.graph.folding import IntValue
from rope_onnx.graph.index import Dim, GraphIndex

__all__ = ["Views"]


class Views:
    """The views one candidate reads, with dims and shapes proven by source-named dims."""

    def __init__(self, index: GraphIndex, views: Mapping[str, View], prover: DimProver) -> None:
        self.index = index
        self.views = views
        self.prover = prover

    def source(self, name: str) -> str:
        """The graph tensor ``name`` is a view of (its values and element type), else ``name``."""
        view = self.views.get(name)
        return name if view is None else view.source

    def _named(self, name: str) -> list[Dim] | None:
        """Source-named dims; an axis the prover cannot name gets its own symbol (as inference names it)."""
        dims = self.prover.dims(name)
        return None if dims is None else [f"dim:{name}:{i}" if d is None else d for i, d in enumerate(dims)]

    def _fold(self, name: str) -> IntValue:
        return fold_ints(self.index, name, self._named)

    def proven(self, name: str) -> SourceDims | None:
        """What the table-broadcast proof compares: source-named dims of a tensor or a view."""
        view = self.views.get(name)
        return self.prover.dims(name) if view is None else list(view_dims(view, self._fold, self._named))

    def plan(self, names: Iterable[str]) -> str:
        """'' when every view among ``names`` has a constant shape to be written with, else why not."""
        try:
            self.shapes(names)
        except NotRope as why:
            return str(why)
        return ""

    def shapes(self, names: Iterable[str]) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Each view among ``names``: (its source, the constant target of the Reshape that creates it)."""
        out = {}
        for name in sorted(set(names) & self.views.keys()):
            view = self.views[name]
            out[name] = (view.source, tuple(view_shape(view, self._fold, self._named)))
        return out
