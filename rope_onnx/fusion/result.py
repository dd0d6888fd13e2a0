"""What the fusion pass reports: each fused :class:`Site`, each near miss (:class:`Skip`), and the
:class:`FuseResult` that gathers them for the JSON report and the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    linked: list[str] = field(default_factory=list)  # data files fuse_file hard-linked (link_data)

    @property
    def fused(self) -> int:
        return len(self.sites)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "fused": self.fused,
            "sites": [{**s.__dict__, "assumes": list(s.assumes)} for s in self.sites],
            "skipped": [s.__dict__ for s in self.skipped],
            **({"verify": self.verification.to_json()} if self.verification is not None else {}),
        }
