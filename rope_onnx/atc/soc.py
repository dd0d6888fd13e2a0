"""Which ``--soc_version`` values rope-onnx can target, and the chip family each belongs to.

ATC's ``--soc_version`` takes an exact chip: the "Chip Name" that ``npu-smi info`` (or
``ascend-dmi -i -dt``) prints, prefixed with "Ascend" and with spaces removed, e.g. Ascend910B3
or Ascend310P3 (CANN ATC reference, ``--soc_version``:
https://www.hiascend.com/document/detail/zh/canncommercial/63RC1/inferapplicationdev/atctool/atctool_000065.html).
A family name ("Ascend910B", "Ascend310P") is not a chip and ATC rejects it.

The custom operator package is built for two families only (docs/ascend.md: ``AddConfig("ascend910b")``
and ``AddConfig("ascend310p")``); its op-info file for a family lives at
``op_impl/ai_core/tbe/config/<family>/aic-<family>-ops-info.json`` inside the vendor folder.
"""

from __future__ import annotations

import re

from rope_onnx.errors import InputError
from rope_onnx.op.contract import CHIP_DTYPES

# Ascend910B1..B4 (and the B2C/B4-1 style suffixes some servers report) → ascend910b;
# Ascend310P1/P3 → ascend310p.
_CHIP_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Ascend910B[1-4](C|-1)?$"), "ascend910b"),
    (re.compile(r"^Ascend310P[1-9]$"), "ascend310p"),
)
_FAMILY_NAMES = {"ascend910b": "Ascend910B", "ascend310p": "Ascend310P"}


def family_of(soc_version: str, *, where: str = "--soc") -> str:
    """The op-package family ("ascend910b"/"ascend310p") of an exact chip name, or InputError."""
    for pattern, family in _CHIP_PATTERNS:
        if pattern.match(soc_version):
            return family
    if soc_version.lower() in _FAMILY_NAMES:
        raise InputError(
            f"{where}: '{soc_version}' is a chip family, not a chip; ATC needs the exact chip "
            f"(e.g. {_FAMILY_NAMES[soc_version.lower()]}3 — 'npu-smi info' shows it)"
        )
    raise InputError(
        f"{where}: '{soc_version}' is not a chip the RoPECustomer package is built for; "
        "use an Ascend910B1..B4 or Ascend310P1/P3 chip name as 'npu-smi info' prints it"
    )


def dtypes_of(family: str) -> tuple[str, ...]:
    """Element types RoPECustomer supports on a family (bfloat16 only on the 910B family)."""
    return CHIP_DTYPES[family]
