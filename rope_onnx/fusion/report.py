"""Human-readable rendering of a fusion result (the JSON form is ``FuseResult.to_json``)."""

from __future__ import annotations

from rope_onnx.fusion.result import FuseResult
from rope_onnx.printable import printable


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def render_fuse(result: FuseResult) -> str:
    """One row per fused site, then the skipped candidates with their reasons."""
    target = "" if result.target == "atc" else f" as {result.target} RotaryEmbedding"
    lines = [
        f"{printable(result.model)}: fused {result.fused} RoPE site(s){target}, "
        f"skipped {len(result.skipped)} candidate(s)"
    ]
    if result.sites:
        rows = [
            [
                printable(s.output),
                s.layer,
                "interleaved" if s.interleaved else "half",
                str(s.rotary_dim),
                str(s.head_dim),
                s.dtype,
                str(s.nodes_removed),
            ]
            for s in result.sites
        ]
        lines += _table(
            ["output", "layer", "layout", "rotary_dim", "head_dim", "dtype", "nodes_removed"], rows
        )
    elif not result.converted:
        lines.append("no RoPE site was found: the output is the input graph unchanged")
    if result.converted:
        lines.append(f"converted {len(result.converted)} existing rotary op(s) into RoPECustomer:")
        lines += [f"  {c.output}: {c.op} '{c.node}'" for c in result.converted]
    if result.kept:
        lines.append(f"already fused, kept as they are: {len(result.kept)} node(s):")
        lines += [f"  {k.output}: {k.op} '{k.node}'" for k in result.kept]
    if result.skipped:
        lines.append("skipped candidates:")
        lines += [f"  {printable(s.at)}: {printable(s.reason)}" for s in result.skipped]
    if result.verification is not None:
        lines += ["", result.verification.render()]
    return "\n".join(lines)
