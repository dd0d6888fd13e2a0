"""JSON Schemas of the reports (``--report``, ``kernel-sim --json``), shipped with the package.

Every report starts with ``schema`` (``rope-onnx/<report>/<major>``) and ``rope_onnx_version``, so a
tool reading a saved report knows what it holds and which release wrote it.  The major number changes
only when a key is removed or changes meaning; new keys are added without a bump, and every schema
allows keys it does not list (docs/reports.md).  :func:`schema` loads one of the files beside this
module, so a consumer can validate with any JSON Schema (2020-12) validator.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from rope_onnx import __version__

#: Report name -> its current schema identifier (the value of the report's ``schema`` key).
REPORTS = {
    "fuse": "rope-onnx/fuse/1",
    "verify": "rope-onnx/verify/1",
    "atc": "rope-onnx/atc/1",
    "kernel-sim": "rope-onnx/kernel-sim/1",
}


def stamp(report: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the report's ``schema`` and the tool's ``rope_onnx_version`` first."""
    return {"schema": REPORTS[report], "rope_onnx_version": __version__, **body}


@cache
def schema(report: str) -> dict[str, Any]:
    """The JSON Schema of ``report`` (one of :data:`REPORTS`), read from the package's data."""
    if report not in REPORTS:
        raise KeyError(f"no schema for report {report!r}; reports: {', '.join(REPORTS)}")
    text = resources.files(__name__).joinpath(f"{report}.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


__all__ = ["REPORTS", "schema", "stamp"]
