"""custom_op/'s C++ self-tests built with g++ here, and build.sh's handling of CANN's environment scripts.

The self-tests cover what a CANN compile would otherwise be the first to see: the per-chip rounding rule
of the result cast (a kernel that rounds half with CAST_RINT is flagged on the 310P), the pass-through
lanes and the counted-Gather bound (host_sim/kernel_selftest.cpp), the tiling's UB reserve and Gather
bound (host_sim/tiling_selftest.cpp), and the ONNX plugin's attribute reader
(host_sim/attr_json_selftest.cpp)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OP = ROOT / "custom_op"
CXX = shutil.which(os.environ.get("CXX", "g++"))


@pytest.mark.skipif(CXX is None, reason="needs a C++17 compiler")
@pytest.mark.parametrize("name", ["kernel_selftest", "tiling_selftest", "attr_json_selftest"])
def test_cpp_selftest(tmp_path: Path, name: str) -> None:
    exe = tmp_path / name
    build = subprocess.run(
        [str(CXX), "-std=c++17", "-O1", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "-DROPE_HOST",
         "-o", str(exe), str(OP / "host_sim" / f"{name}.cpp")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stdout
    assert " 0 failed" in run.stdout


def fake_toolkit(root: Path, *, versioned: bool) -> Path:
    """A toolkit whose environment script reads an unset $1, as CANN 8.1.RC1's runtime/bin/setenv.bash."""
    latest = root / "ascend-toolkit" / "latest"
    (latest / "runtime" / "bin").mkdir(parents=True)
    (latest / "runtime" / "bin" / "setenv.bash").write_text("param_mult_ver=$1\nexport ROPE_FAKE_CANN=1\n")
    if versioned:
        (latest / "bin").mkdir()
        (latest / "bin" / "setenv.bash").write_text(f"source {latest}/runtime/bin/setenv.bash\n")
    else:  # only the toolkit-wide script, one level above latest/
        (root / "ascend-toolkit" / "set_env.sh").write_text(f"source {latest}/runtime/bin/setenv.bash\n")
    return latest


@pytest.mark.parametrize("versioned", [True, False])
def test_build_sh_survives_cann_env_scripts_under_set_u(tmp_path: Path, versioned: bool) -> None:
    latest = fake_toolkit(tmp_path, versioned=versioned)
    env = {"PATH": "/usr/bin:/bin", "ASCEND_HOME_PATH": str(latest), "HOME": str(tmp_path)}
    run = subprocess.run(["bash", str(OP / "build.sh")], capture_output=True, text=True, env=env, check=False)
    # it got past sourcing the scripts and stopped at the next step: no msopgen in the fake toolkit
    assert run.returncode == 2
    assert "msopgen not on PATH after sourcing" in run.stderr, run.stderr
    assert "unbound variable" not in run.stderr


def test_build_sh_without_a_toolkit_says_so(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ASCEND_HOME_PATH": str(tmp_path / "none"), "HOME": str(tmp_path)}
    run = subprocess.run(["bash", str(OP / "build.sh")], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 2 and "no CANN toolkit at" in run.stderr
