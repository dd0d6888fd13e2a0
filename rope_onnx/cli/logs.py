"""Logging for the command line, Polygraphy-style: ``-v``/``-q`` (repeatable), ``--log-file``, ``--debug``.

The library only logs, through the standard :mod:`logging` module under the ``rope_onnx`` logger
(``rope_onnx/__init__`` adds a ``NullHandler``, so a library caller sees nothing unless they configure
logging).  This module is the one place that decides where those records go when the command runs:

* stderr gets records at the chosen verbosity: ``-q`` warnings and errors, ``-qq`` errors only, ``-qqq``
  nothing; the default adds progress lines for long steps (each ONNX Runtime load and run, an ATC run,
  a data-file copy); ``-v`` adds debug records, ``-vv`` everything;
* ``--log-file PATH`` gets every record at debug level or finer (whatever the console shows), with
  times, plus the human summary the command prints — what a bug report needs;
* stdout carries only what the command produces (a table, a command line, a JSON report); the human
  summary is hidden by ``-q`` and moves to stderr when ``--report -`` puts the JSON on stdout.

The handlers are installed for one :func:`session` and removed after it, so in-process callers
(tests, ``rope_onnx.cli.app.main([...])`` in a notebook) get the same output every time.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rope_onnx.errors import InputError

#: Logger every rope_onnx module logs under (module loggers are its children: ``rope_onnx.verify.runner``).
ROOT_LOGGER = "rope_onnx"
#: Extra attribute of a record printed as it is (no prefix): ATC's own output lines.
RAW = "rope_onnx_raw"
#: Extra attribute of the human summary record: written to the log file only (the console prints it).
SUMMARY = "rope_onnx_summary"

_PREFIX = {logging.DEBUG: "debug: ", logging.WARNING: "warning: ", logging.ERROR: "error: "}


def console_level(verbosity: int) -> int:
    """``-v`` count minus ``-q`` count → a level: 0 INFO, 1 DEBUG, 2+ all; -1 WARNING, -2 ERROR, -3 none."""
    if verbosity >= 2:
        return 1
    return {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING, -2: logging.ERROR}.get(
        verbosity, logging.CRITICAL + 1
    )


class _ConsoleFormatter(logging.Formatter):
    """``rope-onnx VERB: [level: ]message``, matching the one-line error every command ends with."""

    def __init__(self, verb: str) -> None:
        super().__init__()
        self.verb = verb

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if getattr(record, RAW, False):
            return message
        level = max((lvl for lvl in _PREFIX if lvl <= record.levelno), default=logging.DEBUG)
        prefix = _PREFIX.get(level, "") if record.levelno != logging.INFO else ""
        text = f"rope-onnx {self.verb}: {prefix}{message}"
        if record.exc_info:
            text = self.formatException(record.exc_info) + "\n" + text
        return text


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest's capsys swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, SUMMARY, False):
            return
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # a closed stderr must not turn a finished run into a failure
            self.handleError(record)


@dataclass
class Console:
    """Where a command's human summary goes, and whether it is shown at all."""

    verbosity: int = 0
    report_on_stdout: bool = False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger(f"{ROOT_LOGGER}.cli"))

    @property
    def stream(self) -> TextIO:
        """stdout, or stderr when stdout carries the JSON report (``--report -``)."""
        return sys.stderr if self.report_on_stdout else sys.stdout

    def show(self, text: str) -> None:
        """The summary (a table, a status line): hidden by ``-q``, always copied to the log file."""
        self.log.info(text, extra={SUMMARY: True})
        if self.verbosity >= 0 and text:
            print(text, file=self.stream, flush=True)

    def product(self, text: str) -> None:
        """What the user asked the command to print (``atc --dry-run``'s command): printed even with
        ``-q``, on stdout unless stdout carries the JSON report."""
        self.log.debug("printed: %s", text)
        print(text, file=self.stream, flush=True)

    def report_target(self, value: str | None) -> Path | TextIO | None:
        """``--report VALUE``: a path, or stdout for ``-`` (then nothing else goes to stdout)."""
        if value is None:
            return None
        return sys.stdout if value == "-" else Path(value)


def add_report_option(parser: argparse.ArgumentParser, moved: str) -> None:
    """``--report`` as every verb takes it (read by :meth:`Console.report_target`): ``moved`` is what
    goes to stderr instead of stdout when the JSON report takes stdout (``-``)."""
    parser.add_argument(
        "--report", metavar="REPORT.json", help=f"write the JSON report here ('-': stdout, {moved} to stderr)"
    )


def _open_log_file(path: str) -> logging.FileHandler:
    target = Path(path)
    if target.is_dir():
        raise InputError(f"--log-file {path}: is a directory; give a file name")
    if not (target.parent if str(target.parent) else Path(".")).is_dir():
        raise InputError(f"--log-file {path}: folder does not exist; create it first")
    try:
        handler = logging.FileHandler(target, mode="a", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--log-file {path}: cannot open it ({exc.strerror or exc})") from exc
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


@contextlib.contextmanager
def session(verb: str, verbosity: int = 0, log_file: str | None = None) -> Iterator[None]:
    """Send the ``rope_onnx`` records to stderr (and ``log_file``) while one command runs."""
    logger = logging.getLogger(ROOT_LOGGER)
    saved = (logger.level, logger.propagate, list(logger.handlers))
    console = _StderrHandler(console_level(verbosity))
    console.setFormatter(_ConsoleFormatter(verb))
    handlers: list[logging.Handler] = [console]
    if log_file:
        file_handler = _open_log_file(log_file)
        file_handler.setLevel(min(logging.DEBUG, console.level))
        handlers.append(file_handler)
    logger.handlers = handlers
    logger.setLevel(min(h.level for h in handlers))
    logger.propagate = False  # the command owns the output; a host's root handlers would print twice
    try:
        yield
    finally:
        for handler in handlers:
            handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers = saved[2]
