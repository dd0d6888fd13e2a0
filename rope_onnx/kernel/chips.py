"""The Ascend chips the custom op targets, with each figure's public source — the one table in the code.

``kernel-sim`` runs the tiling with a chip's core count and UB size (the values the op's TilingFunc gets
from ``platform_ascendc::PlatformAscendC`` on that chip), and ``bench/kernel_traffic.py`` models time at
the chip's own memory bandwidth.  ``--soc`` takes the exact chip as ATC's ``--soc_version`` spells it
(``Ascend910B3``), because core counts differ inside a family (910B1/B2: 48 vector cores, B3/B4: 40).  A
family name (``ascend910b``, as CANN's ``AddConfig`` spells it) is accepted only through :data:`ALIASES`,
which names the one chip it stands for — documented in ``rope-onnx kernel-sim --help``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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


_BASE: dict[str, Chip] = {
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


def _sibling(base: Chip, soc: str, vector_cores: int, ai_cores: int) -> Chip:
    """Another chip of ``base``'s family: same UB, copy and cast rules (platform ini), other core count."""
    return replace(
        base,
        soc_version=soc,
        cores=vector_cores,
        cores_source=_PLATFORM_INI.format(
            chip=soc, key=f"[SoCInfo] vector_core_cnt={vector_cores} (ai_core_cnt={ai_cores})"
        ),
        ub_source=_PLATFORM_INI.format(chip=soc, key="[AICoreSpec] ub_size=196608"),
        f322f16r_source=_PLATFORM_INI.format(chip=soc, key="Intrinsic_vconv lists f322f16r"),
        bandwidth_source=base.bandwidth_source.replace("910B2", soc.removeprefix("Ascend")),
    )


_B2 = _BASE["ascend910b"]
#: Every chip kernel-sim has figures for, by the exact name ATC's --soc_version takes.
SOCS: dict[str, Chip] = {
    "Ascend910B1": _sibling(_B2, "Ascend910B1", 48, 24),
    "Ascend910B2": _B2,
    "Ascend910B3": _sibling(_B2, "Ascend910B3", 40, 20),
    "Ascend910B4": _sibling(_B2, "Ascend910B4", 40, 20),
    "Ascend310P3": _BASE["ascend310p"],
}
#: The alias -> chip table: a family name stands for this one chip (the family's figures in bench/).
ALIASES: dict[str, str] = {"ascend910b": "Ascend910B2", "ascend310p": "Ascend310P3"}
#: One chip per family (the aliases' targets), for the per-family sweeps of tests and bench/.
CHIPS: dict[str, Chip] = {family: SOCS[soc] for family, soc in ALIASES.items()}


def describe_choices() -> str:
    aliases = ", ".join(f"{a} = {c}" for a, c in ALIASES.items())
    return f"{', '.join(SOCS)} (aliases: {aliases})"


def chip(name: str) -> Chip:
    """The chip ``--soc`` names: an exact chip (ATC's spelling, any case) or an alias from :data:`ALIASES`."""
    exact = {soc.lower(): spec for soc, spec in SOCS.items()}
    if name.lower() in exact:
        return exact[name.lower()]
    if name in ALIASES:
        return SOCS[ALIASES[name]]
    raise InputError(f"unknown --soc '{name}'; choose an exact chip, one of {describe_choices()}")
