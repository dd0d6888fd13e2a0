"""Find the CANN toolkit and the installed RoPECustomer package, as ATC itself would.

ATC looks for custom op packages in two places (hicann/ge
``graph_metadef/base/common/plugin/plugin_manager.cc``, ``GetOpsProtoPath`` and the framework
plugin lookup next to it):
- every folder listed, colon-separated, in ``ASCEND_CUSTOM_OPP_PATH`` (highest priority), each a
  vendor folder such as ``<install-path>/vendors/<vendor>``;
- ``$ASCEND_OPP_PATH/vendors/<vendor>/`` for the vendors named in ``vendors/config.ini``
  (what ``custom_opp_*.run`` without ``--install-path`` installs into).
A usable vendor folder has the ONNX plugin (``framework/onnx/*.so``), the operator prototype
(``op_proto/**.so``; without it ATC fails with E10501) and the op implementation registered for the
chip family (``op_impl/ai_core/tbe/config/<family>/aic-<family>-ops-info.json`` naming RoPECustomer).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from rope_onnx.errors import InputError
from rope_onnx.op.contract import OP_TYPE

NO_CANN = (
    "no CANN toolkit here: 'atc' is not on PATH; run on an Ascend host after "
    "'source <CANN install>/set_env.sh', or add --dry-run to print the command only"
)


def find_atc() -> str:
    found = shutil.which("atc")
    if found is None:
        raise InputError(NO_CANN)
    return found


def vendor_problems(folder: Path, family: str) -> list[str]:
    """What a vendor folder lacks for ATC to parse and compile RoPECustomer on ``family``."""
    problems = []
    if not any((folder / "framework" / "onnx").glob("*.so")):
        problems.append("no ONNX plugin (framework/onnx/*.so)")
    if not any((folder / "op_proto").rglob("*.so")):
        problems.append("no operator prototype (op_proto/**.so)")
    info = folder / "op_impl" / "ai_core" / "tbe" / "config" / family / f"aic-{family}-ops-info.json"
    if not info.is_file():
        problems.append(f"no op implementation for {family} ({info.relative_to(folder)})")
    elif OP_TYPE not in info.read_text(encoding="utf-8", errors="replace"):
        problems.append(f"{info.relative_to(folder)} does not list {OP_TYPE}")
    return problems


def candidate_folders(env: Mapping[str, str] | None = None) -> list[Path]:
    """Vendor folders ATC would search, highest priority first."""
    environ: Mapping[str, str] = os.environ if env is None else env
    folders = [Path(p) for p in environ.get("ASCEND_CUSTOM_OPP_PATH", "").split(":") if p]
    opp = environ.get("ASCEND_OPP_PATH")
    if opp:
        vendors = Path(opp) / "vendors"
        if vendors.is_dir():
            folders.extend(sorted(p for p in vendors.iterdir() if p.is_dir()))
    return folders


def find_package(
    vendor: str, family: str, install_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The vendor folder ATC will use for RoPECustomer, or InputError saying what to install or export."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if not environ.get("ASCEND_OPP_PATH") and not environ.get("ASCEND_CUSTOM_OPP_PATH"):
        raise InputError("ASCEND_OPP_PATH is not set: source <CANN install>/set_env.sh before running ATC")
    reports = []
    for folder in candidate_folders(env):
        problems = vendor_problems(folder, family)
        if not problems:
            return folder
        if folder.name == vendor or (folder / "framework" / "onnx").is_dir():
            reports.append(f"{folder}: {', '.join(problems)}")
    if install_path is not None:
        hidden = install_path / "vendors" / vendor
        if hidden.is_dir() and not vendor_problems(hidden, family):
            raise InputError(
                f"the RoPECustomer package at {hidden} is not visible to ATC: "
                f"export ASCEND_CUSTOM_OPP_PATH={hidden}"
            )
    detail = f" ({'; '.join(reports[:2])})" if reports else ""
    raise InputError(
        f"the RoPECustomer custom op package for {family} is not installed{detail}: build "
        f"custom_op/ and run build_out/custom_opp_*.run (vendor '{vendor}'), or export "
        "ASCEND_CUSTOM_OPP_PATH=<install-path>/vendors/<vendor>"
    )
