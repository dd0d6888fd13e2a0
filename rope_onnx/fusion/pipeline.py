"""``fuse_file``: the whole ``rope-onnx fuse`` command as one library call.

Load the graph (weights stay on disk), fuse in memory, optionally check the result on ONNX
Runtime against the file it came from, write the JSON report, and only then write the model —
atomically, so a failed check or an interrupted run leaves no output behind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rope_onnx.errors import CheckFailed
from rope_onnx.fusion.passes import FuseResult, fuse_model
from rope_onnx.fusion.report import render_fuse
from rope_onnx.io.atomic import check_output_path, write_bytes_atomically
from rope_onnx.io.load import load_model
from rope_onnx.io.save import save_model
from rope_onnx.verify import VerifyOptions, verify_models


def fuse_file(
    source: str | Path,
    output: str | Path,
    *,
    domain: str = "",
    expect: int | None = None,
    report: str | Path | None = None,
    verify: VerifyOptions | None = None,
    copy_data: bool = False,
) -> FuseResult:
    """Load ``source`` (graph only), fuse, and write ``output`` atomically; the input is untouched.

    With ``expect`` set, a different number of fused sites raises :class:`CheckFailed`; with
    ``verify`` set, the fused model is compared with ``source`` on ONNX Runtime first and a
    mismatch raises :class:`CheckFailed`.  Either way no model is written (the JSON report still
    is, to show what was found).  An output in another folder shares the input's external data
    by hard links, or by copies with ``copy_data`` (onnx.load refuses hard-linked data files).
    """
    loaded = load_model(source, need_external_data=True)
    out = check_output_path(output, loaded.path, *loaded.files)
    report_path = check_output_path(report, loaded.path, *loaded.files, out) if report else None
    result = fuse_model(loaded.model, domain, name=str(source))
    failure = ""
    if expect is not None and result.fused != expect:
        failure = f"fused {result.fused} site(s), expected {expect}; no model was written"
    elif verify is not None and result.fused:
        result.verification = verify_models(loaded.path, loaded.model, verify)
        if not result.verification.passed:
            failure = "the fused model does not match the original (see the table); no model was written"
    if report_path is not None:
        write_bytes_atomically((json.dumps(result.to_json(), indent=2) + "\n").encode(), report_path)
    if failure:
        raise CheckFailed(failure, report=render_fuse(result))
    save_model(loaded.model, out, loaded, share="copy" if copy_data else "link", progress=sys.stderr)
    return result
