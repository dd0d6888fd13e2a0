"""Saving a fused graph next to (or away from) the weights it shares with its input (docs/conventions.md).

Only the graph is written; the output's external references are the input's, unchanged, and
the data files are linked or copied by :mod:`rope_onnx.io.datafiles`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from onnx import ModelProto

from rope_onnx.errors import InputError
from rope_onnx.io.atomic import check_output_path, write_bytes_atomically
from rope_onnx.io.datafiles import Shared, remove_created, share_data_files
from rope_onnx.io.load import PROTOBUF_LIMIT, LoadedModel


def save_model(
    model: ModelProto,
    out: Path,
    loaded: LoadedModel,
    *,
    share: str = "copy",
    progress: TextIO | None = None,
) -> Shared:
    """Write ``model`` (graph only; weights stay where ``loaded`` has them) atomically to ``out``.

    The output's external references are the input's, unchanged: the data files are shared
    (see :func:`rope_onnx.io.datafiles.share_data_files` for ``share``).  On any failure nothing new
    is left in the output folder.  ``progress`` is where a copy's progress bar goes (default: log records).
    """
    if share not in ("link", "copy"):
        raise ValueError(f"share must be 'link' or 'copy', not {share!r}")
    check_output_path(out, loaded.path, *loaded.files)  # never the input or one of its data files
    # serialised once, before any data file is shared (upb's ByteSize would encode the whole model
    # again to size it: 7 ms at 70B); only where encoding fails is the model sized, to say why
    try:
        data = model.SerializeToString()
    except Exception:
        size = model.ByteSize()
        if size > PROTOBUF_LIMIT:
            raise _too_large(out, size) from None
        raise
    if len(data) > PROTOBUF_LIMIT:
        raise _too_large(out, len(data))
    shared = share_data_files(loaded.external, loaded.folder, out.parent, share, progress)
    try:
        write_bytes_atomically(data, out)
    except BaseException:
        remove_created(shared.created)
        raise
    return shared


def _too_large(out: Path, size: int) -> InputError:
    return InputError(
        f"{out}: the model proto would be {size / 2**30:.1f} GiB, over protobuf's 2 GiB limit; "
        "store the weights as external data (onnx.save(..., save_as_external_data=True)) first"
    )
