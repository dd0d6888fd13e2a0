"""Nothing of the user's is overwritten or made unreadable.

- An output beside its input shares the data files by reference; an output in another folder gets
  its own copies (``--link-data`` keeps hard links on request and says what they cost;
  ``--copy-data`` is an alias of the default).  Afterwards ``onnx.load`` reads both models and the
  input's data files are unchanged in content and link count.
- Every path a command writes (``-o``, ``--report`` of fuse/verify/atc, the ``.om`` and ATC log it
  passes to ATC) is checked against every input model and every data file before anything runs.
- ``--report -`` is stdout; an existing target that is not a regular file (device, FIFO, socket,
  symlink) is refused; ``-o -`` is refused.
- SIGTERM and SIGHUP clean up temporary files as Ctrl-C does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from subprocess import CompletedProcess

import onnx
import pytest
from bad_models import CRASH_MARKERS
from bad_models import _with_external_weight as with_external_weight
from conftest import ROOT

PROFILE = ROOT / "atc_configs" / "tiny-llama_ascend910b3.toml"


def assert_refused(result: CompletedProcess[str], says: str = "") -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert 1 <= len(lines) <= 2, result.stderr
    assert not any(marker in result.stderr for marker in CRASH_MARKERS), result.stderr
    assert says.lower() in result.stderr.lower(), result.stderr


@pytest.fixture(name="src")
def src_fixture(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return with_external_weight(folder, "w.bin")


def _state(path: Path) -> tuple[bytes, int, int]:
    info = path.stat()
    return path.read_bytes(), info.st_nlink, info.st_ino


# ---------------------------------------------------------------------------------- data files
def test_output_beside_the_input_shares_the_data_by_reference(cli, src: Path) -> None:
    before = _state(src.parent / "w.bin")
    assert cli("fuse", src, "-o", src.parent / "fused.onnx").returncode == 0
    assert sorted(p.name for p in src.parent.iterdir()) == ["fused.onnx", "model.onnx", "w.bin"]
    assert _state(src.parent / "w.bin") == before
    for model in (src, src.parent / "fused.onnx"):
        onnx.load(model)  # with its external data: no hard-link refusal


@pytest.mark.parametrize("flags", [(), ("--copy-data",)])
def test_output_in_another_folder_gets_its_own_copies(cli, src: Path, tmp_path: Path, flags) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = _state(src.parent / "w.bin")
    assert cli("fuse", src, "-o", out / "fused.onnx", *flags).returncode == 0
    copy = out / "w.bin"
    assert copy.read_bytes() == before[0] and copy.stat().st_nlink == 1
    assert not copy.samefile(src.parent / "w.bin")
    assert _state(src.parent / "w.bin") == before  # content and link count unchanged
    onnx.load(src)
    onnx.load(out / "fused.onnx")


def test_link_data_keeps_hard_links_and_says_what_they_cost(cli, src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = cli("fuse", src, "-o", out / "fused.onnx", "--link-data")
    assert result.returncode == 0, result.stderr
    assert (out / "w.bin").samefile(src.parent / "w.bin")
    assert "onnx.load" in result.stderr and "link" in result.stderr


def test_copies_go_into_the_data_files_own_subfolder(cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "shards").mkdir(parents=True)
    src = with_external_weight(folder, "shards/w.bin")
    out = tmp_path / "out"
    out.mkdir()
    assert cli("fuse", src, "-o", out / "fused.onnx").returncode == 0
    assert (out / "shards" / "w.bin").stat().st_nlink == 1
    assert (folder / "shards" / "w.bin").stat().st_nlink == 1
    onnx.load(out / "fused.onnx")


# ---------------------------------------------------------------------- what a command may write
def _fused_beside(cli, src: Path) -> Path:
    fused = src.parent / "fused.onnx"
    assert cli("fuse", src, "-o", fused).returncode == 0
    return fused


def test_verify_report_over_a_data_file_is_refused(cli, src: Path) -> None:
    fused = _fused_beside(cli, src)
    data = src.parent / "w.bin"
    before = _state(data)
    assert_refused(cli("verify", src, fused, "--report", data), "w.bin")
    assert _state(data) == before


def test_verify_report_over_the_fused_models_own_data_copy_is_refused(cli, src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert cli("fuse", src, "-o", out / "fused.onnx").returncode == 0
    before = _state(out / "w.bin")
    assert_refused(cli("verify", src, out / "fused.onnx", "--report", out / "w.bin"), "w.bin")
    assert _state(out / "w.bin") == before


@pytest.mark.parametrize("target", ["w.bin", "fused.onnx"])
def test_atc_report_over_an_input_is_refused(cli, src: Path, target: str) -> None:
    fused = _fused_beside(cli, src)
    path = src.parent / target
    before = _state(path)
    assert_refused(cli("atc", fused, "--profile", PROFILE, "--dry-run", "--report", path))
    assert _state(path) == before


@pytest.mark.parametrize("location, output", [("m.om", "m"), ("m.atc.log", "m"), ("m.om", "m.om")])
def test_atc_om_and_log_paths_over_a_data_file_are_refused(cli, tmp_path: Path, location, output) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    src = with_external_weight(folder, location)
    fused = _fused_beside(cli, src)
    before = _state(folder / location)
    assert_refused(cli("atc", fused, "--profile", PROFILE, "--dry-run", "--output", folder / output))
    assert _state(folder / location) == before


def test_fuse_report_over_the_data_file_is_refused(cli, src: Path) -> None:
    before = _state(src.parent / "w.bin")
    assert_refused(cli("fuse", src, "-o", src.parent / "f.onnx", "--report", src.parent / "w.bin"))
    assert _state(src.parent / "w.bin") == before
    assert not (src.parent / "f.onnx").exists()


# -------------------------------------------------------------------------------- special files
def test_report_dash_is_stdout(cli, src: Path) -> None:
    result = cli("fuse", src, "-o", src.parent / "f.onnx", "--report", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fused"] == 1
    assert not (src.parent / "-").exists()


def test_verify_report_dash_is_stdout(cli, src: Path) -> None:
    fused = _fused_beside(cli, src)
    result = cli("verify", src, fused, "--report", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True
    assert not Path("-").exists()


def test_output_dash_is_refused(cli, src: Path) -> None:
    assert_refused(cli("fuse", src, "-o", "-"))
    assert not Path("-").exists()


def _special(kind: str, path: Path):
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return sock
    elif kind == "symlink":
        target = path.parent / "elsewhere.txt"
        target.write_text("keep me")
        path.symlink_to(target)
    elif kind == "device":
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
        except PermissionError:
            pytest.skip("creating a device node needs CAP_MKNOD")
    return None


def _kind_of(path: Path) -> int:
    return stat.S_IFMT(path.lstat().st_mode)


@pytest.mark.parametrize("kind", ["fifo", "socket", "symlink", "device"])
@pytest.mark.parametrize("option", ["-o", "--report"])
def test_an_existing_target_that_is_not_a_regular_file_is_refused(cli, src: Path, kind, option) -> None:
    target = src.parent / f"target.{kind}"
    keep = _special(kind, target)
    mode = _kind_of(target)
    argv = ["fuse", src, "-o", target] if option == "-o" else ["fuse", src, "-o", src.parent / "f.onnx"]
    if option == "--report":
        argv += ["--report", target]
    try:
        assert_refused(cli(*argv), "regular file")
    finally:
        if keep is not None:
            keep.close()
    assert _kind_of(target) == mode, "the special file was replaced"
    assert not (src.parent / "f.onnx").exists()
    if kind == "symlink":
        assert (src.parent / "elsewhere.txt").read_text() == "keep me"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_verify_and_atc_refuse_special_report_targets(cli, src: Path, kind: str) -> None:
    fused = _fused_beside(cli, src)
    target = src.parent / f"r.{kind}"
    _special(kind, target)
    assert_refused(cli("verify", src, fused, "--report", target), "regular file")
    assert_refused(cli("atc", fused, "--profile", PROFILE, "--dry-run", "--report", target), "regular file")
    assert _kind_of(target) in (stat.S_IFIFO, stat.S_IFCHR)


# ----------------------------------------------------------------------------------- signals
SLOW_COPY = """
import sys, time
from rope_onnx.io import datafiles
datafiles.COPY_CHUNK = 4096
real = datafiles._Progress.update
def slow(self, done):
    time.sleep(0.02)
    real(self, done)
datafiles._Progress.update = slow
from rope_onnx.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_termination_signal_cleans_up_like_ctrl_c(tmp_path: Path, signum: int) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    src = with_external_weight(folder, "w.bin")
    (folder / "w.bin").write_bytes(b"\0" * (2 * 2**20))  # 512 slow chunks: the copy takes seconds
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_COPY, "fuse", str(src), "-o", str(out / "f.onnx")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(out.iterdir()) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert process.poll() is None, process.communicate()
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, err
    assert list(out.iterdir()) == [], "temporary or partial files were left behind"
    assert "Traceback" not in err
