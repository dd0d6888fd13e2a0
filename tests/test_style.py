"""The code base stays ruff clean and ruff formatted (configuration in pyproject.toml).

Both checks run over the whole repository (``.``): rope_onnx, tests, scripts, bench and models,
exactly as ``.ci/run`` runs them, so a file cannot pass here and fail in CI.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT

needs_ruff = pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is installed by the test extra")


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ruff", *args], cwd=ROOT, capture_output=True, text=True, check=False)


@needs_ruff
def test_ruff_is_clean() -> None:
    run = _ruff("check", ".")
    assert run.returncode == 0, run.stdout + run.stderr


@needs_ruff
def test_ruff_format_is_clean() -> None:
    run = _ruff("format", "--check", ".")
    assert run.returncode == 0, run.stdout + run.stderr


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in readme[:6] if line.startswith("pip install")]
    assert len(commands) == 2
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_static_checks_after_the_test_command() -> None:
    """The static checks come after README's test command, so that command stays what CI runs."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = next(i for i, line in enumerate(lines) if line.startswith("pip install"))
    for check in ("ruff check .", "ruff format --check .", "mypy rope_onnx"):
        assert check in lines[test_command + 1 :], f".ci/run does not run '{check}' after the tests"
