"""The verification result: a table for people, JSON for tools (``--report``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from rope_onnx.printable import printable
from rope_onnx.schemas import stamp
from rope_onnx.verify.compare import Comparison


@dataclass
class VerifyResult:
    original: str
    fused: str
    mode: str  # "full" (both models run end to end) | "sites" (per-site cuts, no weights)
    seed: int
    results: list[Comparison] = field(default_factory=list)
    dims: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    defaults: str = ""  # the default tolerances, as printed

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[Comparison]:
        return [r for r in self.results if not r.passed]

    def to_json(self) -> dict[str, object]:
        """The verify report (docs/reports.md, rope_onnx/schemas/verify.schema.json)."""
        body: dict[str, object] = {
            "original": self.original,
            "fused": self.fused,
            "passed": self.passed,
            "mode": self.mode,
            "seed": self.seed,
            "dims": self.dims,
            "notes": self.notes,
            "results": [r.to_json() for r in self.results],
        }
        return stamp("verify", body)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def render(self) -> str:
        how = "full run" if self.mode == "full" else "per-site cuts on random tensors, no weights"
        lines = [f"verify {self.original} against {self.fused} (ONNX Runtime CPU, {how}, seed {self.seed})"]
        if self.dims:
            lines.append("dims: " + ", ".join(f"{k}={v}" for k, v in sorted(self.dims.items())))
        if self.defaults:
            lines.extend(self.defaults.splitlines())
        lines.extend(f"note: {n}" for n in self.notes)
        header = (
            "kind",
            "dtype",
            "atol",
            "rtol",
            "max_abs",
            "mean_abs",
            "max_rel",
            "min_atol",
            "result",
            "name",
        )
        rows = [header]
        for r in self.results:
            rows.append(
                (
                    r.kind,
                    r.dtype,
                    f"{r.atol:.1e}",
                    f"{r.rtol:.1e}",
                    f"{r.max_abs:.3e}",
                    f"{r.mean_abs:.3e}",
                    f"{r.max_rel:.3e}",
                    f"{r.min_passing_atol:.3e}",
                    "PASSED" if r.passed else "FAILED",
                    r.name + (f"  [node {r.node}]" if r.node else "") + (f"  ({r.note})" if r.note else ""),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        for row in rows:
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
            )
        lines.append(self.verdict())
        return "\n".join(printable(line) for line in lines)  # names may hold control characters

    def verdict(self) -> str:
        """The table's last line: PASSED, or FAILED with the names of the failing comparisons."""
        failed = self.failures
        total = len(self.results)
        if not total:
            return "FAILED: nothing was compared"
        if failed:
            names = ", ".join(r.name for r in failed[:5]) + (" …" if len(failed) > 5 else "")
            return f"FAILED: {len(failed)} of {total} comparisons out of tolerance: {names}"
        return f"PASSED: {total} of {total} comparisons within tolerance"
