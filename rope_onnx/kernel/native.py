"""Build (once, cached) and load the host-compiled RoPECustomer kernel behind ``kernel-sim``.

The C++ is the op package's own: ``custom_op/op_kernel/rope_core.h`` (kernel schedule and arithmetic),
``custom_op/op_host/rope_tiling_core.h`` (tiling) and ``custom_op/host_sim/`` (host backend, C ABI).
g++ compiles it into a shared library cached under ``~/.cache/rope-onnx/kernel-sim/<hash>/``, the hash
covering the sources, the compiler's version and the flags, so an edit or a new compiler rebuilds it.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from rope_onnx.errors import InputError

#: The sources the library is built from, relative to the custom_op/ folder.
SOURCES = (
    "host_sim/rope_sim.cpp",
    "host_sim/host_backend.h",
    "host_sim/half_convert.h",
    "op_kernel/rope_core.h",
    "op_kernel/rope_params.h",
    "op_host/rope_tiling_core.h",
)
#: -ffp-contract=off: no fused multiply-add, so x*cos + rot*sin rounds exactly as the NumPy reference.
FLAGS = ("-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-DROPE_HOST")
ENV_SOURCE_DIR = "ROPE_ONNX_CUSTOM_OP"

log = logging.getLogger(__name__)


class SimStats(ctypes.Structure):
    _fields_ = [
        ("gm_bytes_read", ctypes.c_uint64),
        ("gm_bytes_written", ctypes.c_uint64),
        ("min_bytes", ctypes.c_uint64),
        ("ub_peak_bytes", ctypes.c_uint64),
        ("blocks", ctypes.c_uint32),
        ("split", ctypes.c_uint32),
        ("tile_rows", ctypes.c_uint32),
        ("chunk_rows", ctypes.c_uint32),
        ("P", ctypes.c_uint32),
        ("Q", ctypes.c_uint32),
        ("S", ctypes.c_uint32),
        ("T", ctypes.c_uint32),
        ("gather_swap", ctypes.c_uint32),
        ("use_pad", ctypes.c_uint32),
        ("x_copies", ctypes.c_uint64),
        ("x_copy_min_bytes", ctypes.c_uint64),
    ]


def candidate_dirs() -> list[Path]:
    """Where the custom_op/ sources are looked for, in order."""
    found = []
    if os.environ.get(ENV_SOURCE_DIR):
        found.append(Path(os.environ[ENV_SOURCE_DIR]))
    found.append(Path(__file__).resolve().parents[2] / "custom_op")  # a checkout
    found.append(Path(sys.prefix) / "share" / "rope-onnx" / "custom_op")  # pip install (data-files)
    return found


def source_dir() -> Path:
    for folder in candidate_dirs():
        if all((folder / name).is_file() for name in SOURCES):
            return folder
    looked = ", ".join(str(d) for d in candidate_dirs())
    raise InputError(
        f"cannot find the custom_op C++ sources (looked in {looked}); run from a rope-onnx checkout or "
        f"set {ENV_SOURCE_DIR} to its custom_op/ folder"
    )


def _compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    path = shutil.which(cxx)
    if path is None:
        raise InputError(f"kernel-sim needs a C++17 compiler: '{cxx}' is not on PATH; install g++ or set CXX")
    return path


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rope-onnx" / "kernel-sim"


def build_library() -> Path:
    """The cached shared library, compiled first if its sources, compiler or flags changed."""
    src = source_dir()
    cxx = _compiler()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    digest = hashlib.sha256()
    for part in (version, " ".join(FLAGS)):
        digest.update(part.encode())
    for name in SOURCES:
        digest.update(name.encode())
        digest.update((src / name).read_bytes())
    folder = _cache_root() / digest.hexdigest()[:20]
    lib = folder / "librope_sim.so"
    if lib.is_file():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    log.info("building the kernel simulator with %s (once; cached in %s)", cxx, folder)
    fd, tmp = tempfile.mkstemp(prefix=".librope_sim.", suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run(
            [cxx, *FLAGS, "-o", tmp, str(src / "host_sim" / "rope_sim.cpp")],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise InputError(f"g++ failed to build the kernel simulator: {done.stderr.strip()[:2000]}")
        os.replace(tmp, lib)  # atomic: a concurrent build sees either nothing or a whole library
    finally:
        Path(tmp).unlink(missing_ok=True)
    return lib


@lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(build_library()))
    i64p = ctypes.POINTER(ctypes.c_int64)
    lib.rope_sim_run.restype = ctypes.c_int
    lib.rope_sim_run.argtypes = [
        ctypes.c_int, ctypes.c_void_p, i64p, ctypes.c_int,
        ctypes.c_void_p, i64p, ctypes.c_int,
        ctypes.c_void_p, i64p, ctypes.c_int,
        ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int,
        ctypes.POINTER(SimStats), ctypes.c_char_p, ctypes.c_int,
    ]  # fmt: skip
    for name, src, dst in (
        ("rope_sim_float_to_half", ctypes.c_float, ctypes.c_uint16),
        ("rope_sim_half_to_float", ctypes.c_uint16, ctypes.c_float),
        ("rope_sim_float_to_bf16", ctypes.c_float, ctypes.c_uint16),
    ):
        fn = getattr(lib, name)
        fn.restype = None
        fn.argtypes = [ctypes.POINTER(src), ctypes.POINTER(dst), ctypes.c_uint64]
    return lib
