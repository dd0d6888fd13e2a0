"""Shared helpers for the test-suite: run models on ONNX Runtime CPU, fuse in memory."""

from __future__ import annotations

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


def run_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run on ONNX Runtime's CPU provider; RoPECustomer nodes are served by the reference functions."""
    if any(n.op_type == "RoPECustomer" for n in model.graph.node):
        model = runnable_copy(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(None, {k: v for k, v in feeds.items() if k in wanted}), strict=True))


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m rope_onnx`` the way a user runs the command."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "rope_onnx", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        check=False,
    )


@pytest.fixture(name="cli")
def cli_fixture():
    return cli
