"""``fuse_file``: the whole ``rope-onnx fuse`` command as one library call.

Load the graph (weights stay on disk), fuse in memory, optionally check the result on ONNX
Runtime against the file it came from, write the JSON report, and only then write the model —
atomically, so a failed check or an interrupted run leaves no output behind.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rope_onnx.errors import CheckFailed
from rope_onnx.fusion.api import fuse_model
from rope_onnx.fusion.collector import collector_paused
from rope_onnx.fusion.report import render_fuse
from rope_onnx.fusion.result import FuseResult
from rope_onnx.graph.index import GraphIndex
from rope_onnx.io.atomic import check_output_path, write_report
from rope_onnx.io.datafiles import check_data_targets
from rope_onnx.io.load import LoadedModel, load_model
from rope_onnx.io.save import save_model
from rope_onnx.io.targets import STDOUT

if TYPE_CHECKING:
    from rope_onnx.verify import VerifyOptions

log = logging.getLogger(__name__)


@collector_paused
def _load(source: str | Path) -> LoadedModel:
    """The graph with its checks (weights stay on disk); the collector waits, as in the pass: the
    checks make a tuple of names per node and no cycle, and a full collection would walk them all."""
    return load_model(source, need_external_data=True)


@collector_paused
def _index(loaded: LoadedModel) -> GraphIndex:
    """The index of the graph as loaded: the names the checks read are handed over, not read again."""
    return GraphIndex(loaded.model, names=loaded.names)


@collector_paused
def fuse_file(
    source: str | Path,
    output: str | Path,
    *,
    domain: str = "",
    target: str = "atc",
    expect: int | None = None,
    report: str | Path | TextIO | None = None,
    verify: VerifyOptions | None = None,
    link_data: bool = False,
    copy_data: bool = True,
) -> FuseResult:
    """Load ``source`` (graph only), fuse, and write ``output`` atomically; the input is untouched.

    With ``expect`` set, a different number of fused sites raises :class:`CheckFailed`; with
    ``verify`` set, the fused model is compared with ``source`` on ONNX Runtime first and a
    mismatch raises :class:`CheckFailed`.  Either way no model is written (the JSON report still
    is, to show what was found).  ``report`` is a path, ``"-"`` (stdout) or a stream the caller chose
    (the CLI's ``--report -`` passes stdout).  An output beside the input shares its data files by
    reference; one in another folder gets its own copies, or hard links with ``link_data`` (which
    onnx.load then refuses, for the input too; ``copy_data`` is the default and kept for callers
    that pass it).

    The cyclic collector waits for the whole command, not only for each step: resumed between
    steps, it walked the hundreds of thousands of objects the step before had made (twice on a
    70B-shaped model, ~12 ms, finding nothing to free).
    """
    loaded = _load(source)
    out = check_output_path(output, loaded.path, *loaded.files)
    # the data files the output gets, each once: the report path is resolved against every one
    copies = list(dict.fromkeys(out.parent / location for location in loaded.locations))
    check_data_targets(loaded.external, loaded.folder, out.parent)  # fail now, not after the fuse
    if isinstance(report, (str, Path)) and str(report) == STDOUT:
        report = sys.stdout
    report_to = (
        check_output_path(report, loaded.path, *loaded.files, out, *copies)
        if isinstance(report, (str, Path))
        else report
    )
    log.debug("loaded %s: %d nodes", loaded.path, len(loaded.model.graph.node))
    index = _index(loaded)
    result = fuse_model(loaded.model, domain, name=str(source), target=target, index=index)
    log.debug("fused %d site(s), skipped %d candidate(s)", result.fused, len(result.skipped))
    failure = ""
    if expect is not None and result.fused != expect:
        failure = f"fused {result.fused} site(s), expected {expect}; no model was written"
    elif verify is not None and (result.fused or result.converted):
        from rope_onnx.verify import verify_models  # only a --verify run loads the verifier

        result.verification = verify_models(loaded.path, loaded.model, verify)
        if not result.verification.passed:
            failure = "the fused model does not match the original (see the table); no model was written"
    if report_to is not None:
        write_report(json.dumps(result.to_json(), indent=2) + "\n", report_to)
    if failure:
        raise CheckFailed(failure, report=render_fuse(result))
    shared = save_model(loaded.model, out, loaded, share="link" if link_data else "copy")
    result.linked = list(shared.linked)
    log.debug("wrote %s", out)
    return result
