"""One exception family for the whole tool, carrying the exit code docs/conventions.md assigns.

The library raises these; the CLI only prints ``str(error)`` and exits with ``error.exit_code``.
Keeping the code on the exception (not in the CLI) means a library caller and the command
line always agree on what kind of failure happened.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


class RopeOnnxError(Exception):
    """Base class of every error rope-onnx raises on purpose.

    ``report`` is what the command had to show before it failed (e.g. the comparison table of
    ``fuse --verify``): the CLI prints it on stdout, then the one-line error on stderr.
    """

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, report: str = "") -> None:
        super().__init__(message)
        self.report = report


class InputError(RopeOnnxError):
    """The input, a path, an option or the environment is unusable (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class CheckFailed(RopeOnnxError):
    """A check on a valid input did not pass: verify mismatch, --expect not met (exit 1)."""

    exit_code = EXIT_CHECK_FAILED


def require_model_proto(value: object, caller: str, also: str = "") -> None:
    """Refuse, with a ``TypeError`` naming both, anything that is not an ``onnx.ModelProto``.

    Passing the wrong object is a programming error, not bad input (so not an exit code): it must
    fail at the call, not deep inside the pass.  ``onnx_ir`` models are the usual mix-up.
    """
    from onnx import ModelProto

    if isinstance(value, ModelProto):
        return
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    expected = f"an onnx.ModelProto{f' or {also}' if also else ''}"
    hint = ""
    if kind.startswith("onnx_ir"):
        hint = "; convert an onnx_ir model with onnx_ir.serde.serialize_model(model)"
    raise TypeError(f"{caller}: expected {expected}, got {kind}{hint}")
