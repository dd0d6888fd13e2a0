"""The code base stays ruff clean (the project's lint configuration lives in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is installed by the test extra")
def test_ruff_is_clean() -> None:
    run = subprocess.run(
        ["ruff", "check", "rope_onnx", "tests", "models", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in readme[:6] if line.startswith("pip install")]
    assert len(commands) == 2
    assert commands[1] in (ROOT / ".ci" / "run").read_text()
