"""Sharing a model's external data files with an output in another folder.

An output beside its input refers to the very same data files (nothing copied, nothing linked:
the fast path, a 70B model fuses in seconds).  An output in another folder gets its own copies,
with a progress bar (``os.copy_file_range``: the kernel copies, and reflinks where the file
system offers it).  Hard links are available on request only (``share="link"``, ``fuse
--link-data``): onnx >= 1.21 refuses, in ``onnx.load`` and ``onnx.checker``, any data file with
more than one link (a hard-link-attack defence) — once linked, neither the input nor the output
loads in onnx, onnx_ir, onnxsim or onnxslim.  Whatever was created is removed again if the save
fails, so an output folder never holds half of a model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rope_onnx.errors import InputError
from rope_onnx.io.atomic import temporary_beside

if TYPE_CHECKING:
    from rope_onnx.io.load import ExternalRef

log = logging.getLogger(__name__)

#: Copy in 16 MiB chunks: large enough for full disk speed, small enough to never matter for memory.
COPY_CHUNK = 16 * 2**20


class _Progress:
    """Progress of a long copy (a 70B model's data is 140 GB): a line per 10% on the
    ``rope_onnx.io.datafiles`` logger, or a bar on ``stream`` when the caller gives one (redrawn in
    place on a terminal, a line per 10% otherwise).
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label, self.total = label, max(total, 1)
        self.stream = stream
        self.tty = stream is not None and stream.isatty()
        self.started = time.monotonic()
        self.shown = -1

    def update(self, done: int) -> None:
        percent = min(100, done * 100 // self.total)
        if percent == self.shown or (not self.tty and percent % 10 and percent != 100):
            return
        self.shown = percent
        rate = done / max(time.monotonic() - self.started, 1e-6) / 2**20
        bar = "#" * (percent // 4)
        line = f"{self.label}: [{bar:<25}] {percent:3d}% {done / 2**30:.2f}/{self.total / 2**30:.2f} GiB"
        line += f" {rate:.0f} MiB/s"
        if self.stream is None:
            log.info("%s", line)
            return
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and percent == 100:
            self.stream.write("\n")
        self.stream.flush()


def copy_with_progress(src: Path, dst: Path, progress: TextIO | None = None) -> None:
    """Copy ``src`` to ``dst`` through a temporary file in dst's folder, renamed at the end.

    An interrupted or failed copy leaves no file at ``dst`` and no temporary behind.
    """
    total = src.stat().st_size
    bar = _Progress(f"copying {src.name} to {dst.parent}", total, progress)
    with temporary_beside(dst) as (fd, tmp):
        with open(src, "rb") as reader, os.fdopen(fd, "wb") as writer:
            done = 0
            bar.update(0)
            while done < total:
                step = _copy_chunk(reader, writer, done, min(COPY_CHUNK, total - done))
                if step == 0:
                    break  # the source shrank while we copied: what is there is copied
                done += step
                bar.update(done)
        shutil.copymode(src, tmp)
        os.replace(tmp, dst)


def _copy_chunk(reader, writer, offset: int, size: int) -> int:
    """Copy up to ``size`` bytes at ``offset``: in the kernel where it can (copy_file_range,
    reflinks on btrfs/xfs), else through a buffer.  Returns the bytes copied."""
    if hasattr(os, "copy_file_range"):
        try:
            return os.copy_file_range(reader.fileno(), writer.fileno(), size, offset, offset)
        except OSError:
            pass  # not supported between these file systems: fall back
    reader.seek(offset)
    chunk = reader.read(size)
    writer.seek(offset)
    writer.write(chunk)
    return len(chunk)


@dataclass
class Shared:
    """How an output's data files came to be next to it (locations, as the model names them)."""

    linked: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)  # files and folders made, to undo on failure


def _missing_folders(src: Path, dst: Path, location: str) -> list[Path] | None:
    """The folders ``dst`` needs made (deepest first), None when ``dst`` already is ``src``; raises
    InputError where something else stands in the way (a different file, a file for a folder)."""
    if dst.exists():
        if dst.samefile(src):
            return None
        raise InputError(
            f"{dst}: a different file with the name of the model's data file '{location}' "
            "already exists there; remove it or write the output to another folder"
        )
    missing, folder = [], dst.parent  # a location like "weights/part-1.bin" needs its folder
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(
            f"{folder}: is a file where the data file '{location}' needs a folder; "
            "remove it or write the output to another folder"
        )
    return missing


def check_data_targets(refs: list[ExternalRef], source: Path, target: Path) -> None:
    """Raise the InputError :func:`share_data_files` would, before any work is done: a run that
    would fail at the very end (a different ``model.onnx.data`` in the output folder) fails first."""
    if refs and target.resolve() != source.resolve():
        for location in sorted({r.location for r in refs}):
            _missing_folders(source / location, target / location, location)


def share_data_files(
    refs: list[ExternalRef],
    source: Path,
    target: Path,
    share: str = "copy",
    progress: TextIO | None = None,
) -> Shared:
    """Make the output's external references resolve, without rewriting a weight.

    Same folder: the output refers to the very same data files, nothing to do.  Another
    folder: each data file is copied there (``share="copy"``, the default), or hard-linked
    (``share="link"``; copied where links are impossible, e.g. another file system).
    """
    shared = Shared()
    if not refs or target.resolve() == source.resolve():
        return shared
    try:
        for location in sorted({r.location for r in refs}):
            src, dst = source / location, target / location
            missing = _missing_folders(src, dst, location)
            if missing is None:
                continue  # the output's folder already holds this very file
            for folder in reversed(missing):
                folder.mkdir()
                shared.created.append(folder)
            try:
                if share != "link":
                    raise OSError("copy requested")
                os.link(src, dst)
                shared.linked.append(location)
            except OSError:  # cross-device, or a file system without hard links
                copy_with_progress(src, dst, progress)
                shared.copied.append(location)
            shared.created.append(dst)
    except BaseException:
        remove_created(shared.created)
        raise
    return shared


def remove_created(created: list[Path]) -> None:
    """Undo :func:`share_data_files`: files first, then the folders it made (deepest first)."""
    for path in reversed(created):
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.rmdir()
        else:
            path.unlink(missing_ok=True)
