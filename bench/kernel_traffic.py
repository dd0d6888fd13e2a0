"""Global-memory traffic of the RoPECustomer kernel and its modelled time at each chip's bandwidth.

Runs the host build of the kernel (``rope_onnx.kernel.sim``: the op package's own tiling and kernel
core) on the seed's shape, a decode step and a 4k prefill, for the 910B and the 310P, and prints the
bytes moved, the blocks used and bytes / bandwidth -- the memory-bound floor, next to the seed
article's measured 48 us -- then the bytes per x/y transfer (DataCopy call) for BNSD x with [L, R]
tables, before and after issue 14's strided transfers.  This is a model, not a measurement on an NPU.

    python bench/kernel_traffic.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rope_onnx.kernel.chips import CHIPS
from rope_onnx.kernel.sim import simulate

SEED_FUSED_US = 48.0  # seed article: fused op, LLaMA-7B layer B=1 H=32 L=512 D=128 fp16
SHAPES = [
    ("seed  B1 H32 L512 D128", (1, 32, 512, 128), (512, 128), 1),
    ("decode B1 H32 L1 D128", (1, 32, 1, 128), (1, 128), 0),
    ("prefill B1 H32 L4096 D128", (1, 32, 4096, 128), (4096, 128), 0),
]
# BNSD x with [L, R] tables: bytes per x/y transfer before issue 14 (one copy per head's run of rows)
# and now (the heads' runs of one position range in one strided DataCopy)
TRANSFER_SHAPES = [
    ("decode B1 H32 L1 D128", (1, 32, 1, 128)),
    ("short  B1 H32 L16 D128", (1, 32, 16, 128)),
    ("short  B1 H32 L64 D128", (1, 32, 64, 128)),
    ("seed   B1 H32 L512 D128", (1, 32, 512, 128)),
    ("prefill B1 H32 L4096 D128", (1, 32, 4096, 128)),
]


def transfers(rng: np.random.Generator) -> None:
    """Print bytes per x/y transfer (mean, smallest) before and after, per chip."""
    print(f"\n{'BNSD x, [L,R] tab (fp16)':<27}{'chip':<13}{'copies before':>14}{'B/copy before':>14}"
          f"{'copies now':>11}{'B/copy now':>11}{'min B now':>10}")  # fmt: skip
    for name, shape in TRANSFER_SHAPES:
        x = rng.standard_normal(shape).astype(np.float16)
        cos = rng.standard_normal((shape[2], shape[3])).astype(np.float16)
        sin = rng.standard_normal((shape[2], shape[3])).astype(np.float16)
        for chip in CHIPS.values():
            old = simulate(x, cos, sin, 0, 0, chip.soc_version, one_run_per_copy=True)
            new = simulate(x, cos, sin, 0, 0, chip.soc_version)
            assert new.max_abs_err_vs_reference == 0.0 == old.max_abs_err_vs_reference
            print(
                f"{name:<27}{chip.soc_version:<13}{old.x_transfers:>14}{old.x_bytes_per_transfer:>14.0f}"
                f"{new.x_transfers:>11}{new.x_bytes_per_transfer:>11.0f}{new.x_transfer_min_bytes:>10}"
            )
    print("a copy = one DataCopy/DataCopyPad call (x in or y out); where B/copy stays small (decode) a")
    print("block's whole share of x is one copy each way: x is too small to fill larger ones")


def main() -> int:
    rng = np.random.default_rng(0)
    header = (
        f"{'shape (fp16)':<27}{'chip':<13}{'blocks':>7}{'bytes moved':>13}{'min bytes':>12}{'model us':>10}"
    )
    print(header + f"{'seed us':>9}")
    for name, x_shape, t_shape, interleaved in SHAPES:
        x = rng.standard_normal(x_shape).astype(np.float16)
        cos = rng.standard_normal(t_shape).astype(np.float16)
        sin = rng.standard_normal(t_shape).astype(np.float16)
        for family, chip in CHIPS.items():
            result = simulate(x, cos, sin, interleaved, 0, family)
            moved = result.gm_bytes_read + result.gm_bytes_written
            micros = moved / chip.bandwidth_bytes_per_s * 1e6
            seed = f"{SEED_FUSED_US:.0f}" if name.startswith("seed") and family == "ascend910b" else "-"
            assert result.max_abs_err_vs_reference == 0.0
            print(
                f"{name:<27}{chip.soc_version:<13}{result.blocks:>7}{moved:>13}{result.min_bytes:>12}"
                f"{micros:>10.2f}{seed:>9}"
            )
    transfers(rng)
    print("\nmodel: time = bytes moved / memory bandwidth (launch overhead and DMA efficiency not modelled)")
    for chip in CHIPS.values():
        print(
            f"- {chip.soc_version}: {chip.cores} cores, UB {chip.ub_bytes} B, {chip.memory} "
            f"{chip.bandwidth_bytes_per_s / 1e9:.1f} GB/s"
        )
        print(f"    cores: {chip.cores_source}")
        print(f"    UB: {chip.ub_source}")
        print(f"    bandwidth: {chip.bandwidth_source}")
    print(
        "- seed 48 us: the article in docs/ascend.md, measured by the article's author on its own "
        "kernel, chip not stated beyond 'Ascend'"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
