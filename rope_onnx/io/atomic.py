"""Atomic writes and output-path checks: a failed or interrupted run leaves nothing behind.

Outputs go to a temporary file in the destination folder and are renamed into place
(``os.replace``), so ``out`` is either whole or untouched; the input and its data files are
never a valid output path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rope_onnx.errors import InputError


def check_output_path(output: str | os.PathLike[str], source: Path, *inputs: Path) -> Path:
    """Validate where an output goes before any work is done.

    ``source`` and ``inputs`` (e.g. :attr:`LoadedModel.files`: the model and its data files) are
    never overwritten.
    """
    out = Path(output)
    if out.exists() and out.is_dir():
        raise InputError(f"{out}: is a directory; give a file name for the output")
    for protected in (source, *inputs):
        if out.resolve() == protected.resolve() or (
            out.exists() and protected.exists() and out.samefile(protected)
        ):
            if protected.suffix == ".onnx" or protected == source:
                raise InputError(
                    f"{out}: output equals the input; the input is never modified, choose another path"
                )
            raise InputError(
                f"{out}: is the input's external data file '{protected.name}'; writing there would destroy "
                "the weights, choose another output name"
            )
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{folder}: output folder does not exist; create it first")
    try:  # os.access says yes to root even where writes fail (read-only mounts, sysfs): try it
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise InputError(
            f"{folder}: output folder is not writable ({exc.strerror or exc}); choose another folder"
        ) from exc
    return out


def write_bytes_atomically(data: bytes, out: Path) -> None:
    """Temporary file in the destination folder + rename: ``out`` is either whole or untouched.

    An OS failure (disk full, permissions, folder gone) becomes an :class:`InputError` after the
    temporary file is removed; an interrupt removes it too and propagates.
    """
    try:
        _write_atomically(data, out)
    except OSError as exc:
        raise InputError(
            f"{out}: cannot write ({exc.strerror or exc}); nothing was written, free space or "
            "choose another folder"
        ) from exc


def _write_atomically(data: bytes, out: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
