"""What the fusion pass reports: each fused :class:`Site`, each near miss (:class:`Skip`), and the
:class:`FuseResult` that gathers them for the JSON report and the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rope_onnx.schemas import stamp

if TYPE_CHECKING:
    from rope_onnx.fusion.targets import Converted, Kept
    from rope_onnx.verify import VerifyResult


@dataclass(frozen=True)
class Site:
    """One fused site, as the report shows it (keys mirror the op's attributes)."""

    output: str
    input: str
    cos: str  # the tables as the original graph consumes them (before any widening)
    sin: str
    interleaved: int
    rotary_dim: int
    head_dim: int
    dtype: str
    nodes_removed: int
    node: str
    assumes: tuple[str, ...] = ()

    @property
    def layer(self) -> str:
        match = re.search(r"layers?[._/](\d+)", self.output)
        return match.group(1) if match else "-"


@dataclass(frozen=True)
class Skip:
    at: str
    reason: str


@dataclass
class FuseResult:
    model: str
    sites: list[Site] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    verification: VerifyResult | None = None  # set by pipeline.fuse_file(..., verify=...)
    target: str = "atc"
    converted: list[Converted] = field(default_factory=list)  # existing rotary ops -> RoPECustomer (atc)
    kept: list[Kept] = field(default_factory=list)  # nodes that already were one RoPE op, left as they are
    linked: list[str] = field(default_factory=list)  # data files fuse_file hard-linked (link_data)

    @property
    def fused(self) -> int:
        return len(self.sites)

    def to_json(self) -> dict:
        """The fuse report (docs/reports.md, rope_onnx/schemas/fuse.schema.json)."""
        return stamp(
            "fuse",
            {
                "model": self.model,
                "fused": self.fused,
                "sites": [{**s.__dict__, "assumes": list(s.assumes), "layer": s.layer} for s in self.sites],
                "skipped": [s.__dict__ for s in self.skipped],
                "target": self.target,
                "converted": [c.__dict__ for c in self.converted],
                "kept": [k.__dict__ for k in self.kept],
                **({"verify": self.verification.to_json()} if self.verification is not None else {}),
            },
        )
