"""The real process boundary: ``python -m rope_onnx`` started as a user starts it.

Every other command-line test calls ``rope_onnx.cli.app.main`` in-process (conftest.cli), which
cannot see what only a fresh interpreter shows: the ``__main__`` entry point, ``sys.exit`` of the
return code, output flushed at exit, and nothing printed by interpreter shutdown. These few runs
cover that boundary once per verb; keep them few, each costs an interpreter start and the imports.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import onnx
import pytest
from conftest import FIXTURES, ROOT, cli, cli_subprocess
from rope_graphs import SiteSpec, build

import rope_onnx

README = ROOT / "README.md"
LLAMA = FIXTURES / "llama_base_ts_fp32.onnx"
TINY = "atc_configs/tiny-llama_ascend910b3.toml"


def _quick_start() -> list[str]:
    """The arguments of README's quick-start ``rope-onnx fuse`` command (its first code line)."""
    for line in README.read_text().splitlines():
        if "&& rope-onnx fuse " in line:
            return shlex.split(line.split("&& rope-onnx ", 1)[1])
    raise AssertionError("README has no quick-start 'pip install -e . && rope-onnx fuse ...' line")


def test_version_is_printed_and_exits_0() -> None:
    run = cli_subprocess("--version")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"rope-onnx {rope_onnx.__version__}"


@pytest.mark.skipif(not LLAMA.is_file(), reason="models/fixtures not present")
def test_readme_quick_start_fuses_the_fixture(tmp_path: Path) -> None:
    """README's first command, run in a scratch folder so its relative outputs land there."""
    args = _quick_start()
    args[1] = str(ROOT / args[1])  # the input is relative to the repository root
    run = cli_subprocess(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "llama_fused.json").read_text())
    fused = onnx.load(str(tmp_path / "llama_fused.onnx"), load_external_data=False)
    count = sum(n.op_type == "RoPECustomer" for n in fused.graph.node)
    assert count > 0 and len(report["sites"]) == count
    assert "Traceback" not in run.stderr


def test_fuse_then_verify(tmp_path: Path) -> None:
    """fuse then verify on a hand-built site, each in its own process."""
    source = tmp_path / "model.onnx"
    onnx.save(build(SiteSpec(head_dim=16, rotary_dim=16)), source)
    fused = tmp_path / "fused.onnx"
    run = cli_subprocess("fuse", str(source), "-o", str(fused), "--expect", "1")
    assert run.returncode == 0, run.stderr
    run = cli_subprocess("verify", str(source), str(fused))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.skipif(not LLAMA.is_file(), reason="models/fixtures not present")
def test_atc_dry_run_prints_the_command(tmp_path: Path) -> None:
    fused = tmp_path / "fused.onnx"
    assert cli("fuse", str(LLAMA), "-o", str(fused), "--expect", "4").returncode == 0  # in-process
    run = cli_subprocess("atc", str(fused), "--profile", TINY, "--dry-run")
    assert run.returncode == 0, run.stderr
    argv = shlex.split(run.stdout.strip().splitlines()[-1])
    assert argv[0] == "atc" and f"--model={fused}" in argv
    assert "Traceback" not in run.stderr and "warning" not in run.stderr


def test_bad_input_is_exit_2_with_no_traceback(tmp_path: Path) -> None:
    source = tmp_path / "garbage.onnx"
    source.write_bytes(b"garbage")
    run = cli_subprocess("fuse", str(source), "-o", str(tmp_path / "out.onnx"))
    assert run.returncode == 2
    assert "not a readable ONNX model" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.skipif(not LLAMA.is_file(), reason="models/fixtures not present")
def test_the_fast_exit_flushes_the_report_and_the_log(tmp_path: Path) -> None:
    """The executable leaves with ``os._exit`` (cli/app.py ``entry``): whatever was written to
    stdout and the log file before it must all be there."""
    log = tmp_path / "fuse.log"
    fused = tmp_path / "fused.onnx"
    run = cli_subprocess("fuse", str(LLAMA), "-o", str(fused), "--report", "-", "--log-file", str(log), "-v")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)  # the whole report, flushed
    assert report["fused"] == 4 and fused.is_file()
    assert "fused 4 site(s)" in log.read_text()
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
