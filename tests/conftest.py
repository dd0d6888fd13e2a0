"""Shared helpers for the test-suite: run models on ONNX Runtime CPU, fuse in memory."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from rope_onnx.op.decomposition import runnable_copy

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "models" / "fixtures"
#: The tiny-model ATC profile (Ascend910B3); :func:`profile_310p` is the same for an Ascend310P3.
PROFILE_910B = ROOT / "atc_configs" / "tiny-llama_ascend910b3.toml"


def run_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run on ONNX Runtime's CPU provider; RoPECustomer nodes are served by the reference functions."""
    if any(n.op_type == "RoPECustomer" for n in model.graph.node):
        model = runnable_copy(model)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # errors are raised: their log lines would only repeat them
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(None, {k: v for k, v in feeds.items() if k in wanted}), strict=True))


def cli_subprocess(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m rope_onnx`` the way a user runs the command (only tests/cli's end-to-end tests)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rope_onnx", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=full_env,
        check=False,
        timeout=300,
    )


class _Stream(io.StringIO):
    """A captured stdout/stderr that outlives ``close()`` (main closes stderr on a broken pipe)."""

    def close(self) -> None:
        pass


def cli(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``rope_onnx.cli.app.main(args)`` in this process, as ``python -m rope_onnx`` would run it.

    A subprocess per call cost most of the suite's time (interpreter start plus numpy/onnx/onnxruntime
    imports); in-process the command shares the already imported library. The result has the
    ``returncode``/``stdout``/``stderr`` of a CompletedProcess so assertions read as for a real run.
    Nothing leaks into the next test: the working directory, os.environ, the root and ``rope_onnx``
    loggers and
    sys.stdout/sys.stderr are restored, and argparse's SystemExit (usage errors, ``--version``) becomes
    the exit code a shell would see. ``env`` replaces the whole environment, as subprocess's ``env`` does.
    Arguments may be paths (or anything else): each is passed as ``str(arg)``, as a shell would.
    """
    from rope_onnx.cli.app import main

    out, err = _Stream(), _Stream()
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    loggers = [logging.getLogger(), logging.getLogger("rope_onnx")]  # the root and the package's own
    saved_logs = [(logger, list(logger.handlers), logger.level, logger.propagate) for logger in loggers]
    try:
        os.chdir(cwd or ROOT)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code: int | str | None = main([str(a) for a in args])
            except SystemExit as stop:
                code = stop.code
        if code is None:
            returncode = 0
        elif isinstance(code, int):
            returncode = code
        else:  # sys.exit("message"): printed to stderr, exit status 1
            err.write(f"{code}\n")
            returncode = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for logger, handlers, level, propagate in saved_logs:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
    return subprocess.CompletedProcess(
        ["rope-onnx", *map(str, args)], returncode, out.getvalue(), err.getvalue()
    )


@pytest.fixture(name="cli")
def cli_fixture():
    return cli


@pytest.fixture(scope="session")
def profile_310p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny-model profile retargeted to an Ascend310P3 (same inputs, another chip)."""
    text = PROFILE_910B.read_text().replace('soc_version = "Ascend910B3"', 'soc_version = "Ascend310P3"')
    path = tmp_path_factory.mktemp("profiles") / "tiny-llama_ascend310p3.toml"
    path.write_text(text)
    return path
