"""The ``rope-onnx`` command line: parse arguments, call the library, map errors to exit codes.

No logic lives here.  Each sub-command is a module in :mod:`rope_onnx.cli` with a
``register(subparsers)`` function that adds its parser and sets ``run`` to a function taking
the parsed arguments and returning an exit code; the library raises
:class:`~rope_onnx.errors.RopeOnnxError` subclasses that carry their exit code (docs/conventions.md).
The logging options (``-v``, ``-q``, ``--log-file``, ``--debug``) are accepted before or after the
verb, as Polygraphy's are; :mod:`rope_onnx.cli.logs` decides where the library's log records go.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rope_onnx import __version__
from rope_onnx.cli import logs
from rope_onnx.cli.signals import Terminated, terminate_as_interrupt
from rope_onnx.errors import EXIT_BAD_INPUT, InputError, RopeOnnxError
from rope_onnx.printable import printable

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ("fuse", "verify", "atc", "kernel_sim")
#: The verb each module registers (``rope-onnx kernel-sim`` lives in ``kernel_sim``).
VERBS = {name.replace("_", "-"): name for name in COMMANDS}
#: The top-level options (add_logging_options) as they can be spelled before the verb.
_FLAGS = frozenset({"--verbose", "--quiet", "--debug"})
#: Arguments of the verbs that name files the command reads (a --log-file must not be one of them).
INPUT_ARGUMENTS = ("model", "original", "fused", "inputs", "profile")

log = logging.getLogger("rope_onnx.cli")


def add_logging_options(parser: argparse.ArgumentParser, where: int) -> None:
    """The same four options on the top-level parser (``where`` 0) and on each verb (1).

    Separate destinations per place: argparse copies a sub-parser's defaults over the values the
    top-level parser already set, so ``-v fuse -v`` would otherwise count one ``-v``.
    """
    group = parser.add_argument_group("logging (before or after the command)")
    group.add_argument(
        "-v", "--verbose", action="count", default=0, dest=f"verbose_{where}", help="more detail on stderr"
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0,
        dest=f"quiet_{where}",
        help="less: -q hides the summary and progress (warnings and errors stay), -qq warnings, -qqq all",
    )
    group.add_argument(
        "--log-file",
        metavar="PATH",
        dest=f"log_file_{where}",
        help="also append every log record (debug level, with times) and the summary to PATH",
    )
    group.add_argument(
        "--debug", action="store_true", dest=f"debug_{where}", help="show a traceback on errors"
    )


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors kept to two lines (the error and where to get help).

    The stock message reprints the whole usage, which wraps over many lines for ``fuse``; the
    one-or-two-line rule of docs/conventions.md holds for usage errors too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nTry '{self.prog} --help'.\n")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``verb`` (a key of :data:`VERBS`), only that sub-command.

    Building all four sub-parsers costs ~15 ms (a tenth of a small model's fuse); a command line
    that names its verb parses the same with only that one, and anything else (``--help``, no
    verb, a typo) gets the full parser, so every message is what the full parser says.
    """
    parser = _Parser(
        prog="rope-onnx",
        description="Find, prove and fuse rotary position embedding in ONNX models for Ascend ATC.",
    )
    parser.add_argument("--version", action="version", version=f"rope-onnx {__version__}")
    add_logging_options(parser, 0)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if verb is None else (VERBS[verb],):
        importlib.import_module(f"rope_onnx.cli.{name}").register(subparsers)
    for sub in subparsers.choices.values():
        add_logging_options(sub, 1)
    return parser


def _log_file(args: argparse.Namespace) -> str | None:
    """The log file, refused when it is a file the command reads (appending would corrupt it)."""
    path = args.log_file_1 or args.log_file_0
    if path:
        for name in INPUT_ARGUMENTS:
            value = getattr(args, name, None)
            if value and Path(value).exists() and Path(path).exists() and Path(path).samefile(value):
                raise InputError(f"--log-file {path}: is an input of the command; choose another path")
    return path


def verb_of(argv: Sequence[str]) -> str | None:
    """The verb ``argv`` names, past the top-level options; None where that is not certain (an
    abbreviated or unknown option, ``--help``), so that the full parser reads it."""
    words = iter(argv)
    for word in words:
        if word in VERBS:
            return word
        if word == "--log-file":
            next(words, None)
        elif not (word in _FLAGS or word.startswith("--log-file=") or re.fullmatch(r"-[vq]+", word)):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(verb_of(argv)).parse_args(argv)
    args.debug = args.debug_0 or args.debug_1
    verbosity = args.verbose_0 + args.verbose_1 - args.quiet_0 - args.quiet_1
    if getattr(args, "json", False):  # kernel-sim --json: the report only, as --report - -q
        args.report, verbosity = "-", min(verbosity, -1)
    args.console = logs.Console(verbosity, report_on_stdout=getattr(args, "report", None) == "-")
    try:
        with logs.session(args.command, verbosity, _log_file(args)):
            log.debug("rope-onnx %s, argv: %s", __version__, argv)
            return _run(args)
    except InputError as error:  # the log file itself is unusable: there is no log to write to
        print(f"rope-onnx {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code


def entry() -> NoReturn:
    """The ``rope-onnx`` executable (and ``python -m rope_onnx``): :func:`main`, then an exit that
    leaves the heap to the OS.

    A fuse leaves ~100,000 objects in reference cycles (protobuf's message wrappers refer to their
    parents: the graph, its nodes and the index over them); the interpreter's shutdown would search
    and free them all, ~50 ms on a 70B-shaped model, for memory the OS takes back at once.  mypy
    exits the same way.  The streams and the log are flushed first; nothing else runs at exit
    (atexit handlers: the library registers none).

    The cyclic collector is off for the whole process, for the same reason.  The library pauses it
    while it works (rope_onnx.fusion.collector), and the objects made meanwhile all stay in the young
    generation: resumed, the first allocation starts a collection that walks every one of them (a
    generation-0 pass of 40-50 ms after a 70B-shaped fuse, as the table and the log are written) to
    find nothing worth freeing before the exit.  Reference counting frees what a command drops, and
    what cycles a command leaves are bounded by that one command.
    """
    gc.disable()
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # the reader went away, or it was closed
            stream.flush()
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        with terminate_as_interrupt():
            return int(args.run(args))
    except RopeOnnxError as error:
        if error.report:
            args.console.show(error.report)
        log.error("%s", printable(str(error)), exc_info=args.debug)
        return error.exit_code
    except BrokenPipeError:  # the reader (e.g. `| head`) went away; the work itself is done
        sys.stderr.close()
        return 0
    except Terminated as stop:  # SIGTERM/SIGHUP: cleaned up like Ctrl-C, exit as the signal would
        print(
            f"rope-onnx {args.command}: terminated (signal {stop.signum}); no output was written",
            file=sys.stderr,
        )
        return 128 + stop.signum
    except KeyboardInterrupt:
        log.error("interrupted; no output was written")
        return 130
    except Exception as error:  # a bug: say so in one line, show the traceback only on request
        log.error(
            "internal error: %s: %s (rerun with --debug and report it)",
            type(error).__name__,
            error,
            exc_info=args.debug,
        )
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
