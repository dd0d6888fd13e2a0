"""The Ascend chips the custom op targets, with each figure's public source — the one table in the code.

``kernel-sim`` runs the tiling with a chip's core count and UB size (the values the op's TilingFunc gets
from ``platform_ascendc::PlatformAscendC`` on that chip), and ``bench/kernel_traffic.py`` models time at
the chip's own memory bandwidth.  ``--soc`` names a family as CANN's ``AddConfig`` does; each family maps
to one exact chip, because core counts differ inside a family (910B1 ... 910B4).
"""

from __future__ import annotations

from dataclasses import dataclass

from rope_onnx.errors import InputError

_PLATFORM_INI = (
    "CANN 8.1.RC1 platform description "
    "ascend-toolkit/8.1.RC1/aarch64-linux/data/platform_config/{chip}.ini "
    "(public copy: github.com/leideng/CANN-8.1.RC1): {key}"
)
_DATACOPYPAD_DOC = (
    "Ascend C API reference, DataCopyPad(ISASI) support table: not supported on 'Atlas inference "
    "series AI Core' (hiascend.com/document/detail/zh/canncommercial/latest/API/ascendcopapi/"
    "atlasascendc_api_07_0265.html)"
)


@dataclass(frozen=True)
class Chip:
    """One exact chip: what the tiling needs and what the time model needs, each with its source."""

    family: str  # the AddConfig / ASCEND_COMPUTE_UNIT name
    soc_version: str  # the exact chip ATC's --soc_version takes
    cores: int  # vector-capable cores a kernel launches on (GetCoreNumAiv)
    ub_bytes: int  # Unified Buffer per core (GetCoreMemSize(UB))
    has_data_copy_pad: bool
    # float32 -> float16 Cast with RoundMode::CAST_RINT (vconv f322f16r in the chip's platform config)
    has_f322f16r: bool
    memory: str
    bandwidth_bytes_per_s: float
    cores_source: str
    ub_source: str
    pad_source: str
    bandwidth_source: str
    f322f16r_source: str = ""

    @property
    def sim_flags(self) -> int:
        """The capabilities as the host simulator's chipFlags bits (custom_op/host_sim/host_backend.h)."""
        return int(self.has_data_copy_pad) | (int(self.has_f322f16r) << 1)


CHIPS: dict[str, Chip] = {
    "ascend910b": Chip(
        family="ascend910b",
        soc_version="Ascend910B2",
        cores=48,
        ub_bytes=196608,
        has_data_copy_pad=True,
        has_f322f16r=True,
        memory="HBM2e",
        bandwidth_bytes_per_s=1.6e12,
        cores_source=_PLATFORM_INI.format(
            chip="Ascend910B2", key="[SoCInfo] vector_core_cnt=48 (ai_core_cnt=24)"
        ),
        ub_source=_PLATFORM_INI.format(chip="Ascend910B2", key="[AICoreSpec] ub_size=196608"),
        pad_source=_DATACOPYPAD_DOC + "; supported on Atlas A2 (910B)",
        f322f16r_source=_PLATFORM_INI.format(chip="Ascend910B2", key="Intrinsic_vconv lists f322f16r"),
        bandwidth_source=(
            "~1.6 TB/s HBM class (rope-onnx docs/ascend.md); Huawei publishes no per-SKU HBM bandwidth "
            "for the 910B2, so this is an estimate (third-party listings range 1.2-1.6 TB/s)"
        ),
    ),
    "ascend310p": Chip(
        family="ascend310p",
        soc_version="Ascend310P3",
        cores=8,
        ub_bytes=262144,
        has_data_copy_pad=False,
        has_f322f16r=False,
        memory="LPDDR4X",
        bandwidth_bytes_per_s=204.8e9,
        cores_source=_PLATFORM_INI.format(
            chip="Ascend310P3", key="[SoCInfo] ai_core_cnt=8 (vector_core_cnt=7 not used by this kernel)"
        ),
        ub_source=_PLATFORM_INI.format(chip="Ascend310P3", key="[AICoreSpec] ub_size=262144"),
        pad_source=_DATACOPYPAD_DOC,
        f322f16r_source=_PLATFORM_INI.format(
            chip="Ascend310P3", key="Intrinsic_vconv lists f322f16 and f322f16o but no f322f16r"
        ),
        bandwidth_source=(
            "Huawei Atlas 300I Pro inference card datasheet: 24 GB LPDDR4X, 204.8 GB/s (one Ascend 310P3); "
            "rope-onnx docs/ascend.md"
        ),
    ),
}


def chip(family: str) -> Chip:
    """The chip behind a ``--soc`` family name; InputError listing the choices otherwise."""
    try:
        return CHIPS[family.lower()]
    except KeyError:
        raise InputError(f"unknown --soc '{family}'; choose one of {', '.join(CHIPS)}") from None
