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
from rope_onnx.fusion.api import fuse_model
from rope_onnx.fusion.report import render_fuse
from rope_onnx.fusion.result import FuseResult
from rope_onnx.io.atomic import check_output_path, write_bytes_atomically
from rope_onnx.io.load import load_model
from rope_onnx.io.save import save_model
from rope_onnx.io.targets import STDOUT
from rope_onnx.verify import VerifyOptions, verify_models


def fuse_file(
    source: str | Path,
    output: str | Path,
    *,
    domain: str = "",
    expect: int | None = None,
    report: str | Path | None = None,
    verify: VerifyOptions | None = None,
    link_data: bool = False,
    copy_data: bool = True,
) -> FuseResult:
    """Load ``source`` (graph only), fuse, and write ``output`` atomically; the input is untouched.

    With ``expect`` set, a different number of fused sites raises :class:`CheckFailed`; with
    ``verify`` set, the fused model is compared with ``source`` on ONNX Runtime first and a
    mismatch raises :class:`CheckFailed`.  Either way no model is written (the JSON report still
    is, to show what was found; ``report="-"`` prints it on stdout).  An output beside the input
    shares its data files by reference; one in another folder gets its own copies, or hard links
    with ``link_data`` (which onnx.load then refuses, for the input too; ``copy_data`` is the
    default and kept for callers that pass it).
    """
    loaded = load_model(source, need_external_data=True)
    out = check_output_path(output, loaded.path, *loaded.files)
    to_stdout = report is not None and str(report) == STDOUT
    copies = [out.parent / ref.location for ref in loaded.external]  # the data files the output gets
    report_path = (
        check_output_path(report, loaded.path, *loaded.files, out, *copies)
        if report is not None and not to_stdout
        else None
    )
    result = fuse_model(loaded.model, domain, name=str(source))
    failure = ""
    if expect is not None and result.fused != expect:
        failure = f"fused {result.fused} site(s), expected {expect}; no model was written"
    elif verify is not None and result.fused:
        result.verification = verify_models(loaded.path, loaded.model, verify)
        if not result.verification.passed:
            failure = "the fused model does not match the original (see the table); no model was written"
    text = json.dumps(result.to_json(), indent=2) + "\n"
    if report_path is not None:
        write_bytes_atomically(text.encode(), report_path)
    elif to_stdout:
        sys.stdout.write(text)
        sys.stdout.flush()
    if failure:
        raise CheckFailed(failure, report=render_fuse(result))
    shared = save_model(loaded.model, out, loaded, share="link" if link_data else "copy", progress=sys.stderr)
    result.linked = list(shared.linked)
    return result
