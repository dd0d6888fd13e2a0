"""``rope-onnx kernel-sim``: run the host-compiled RoPECustomer kernel on arrays from an .npz file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rope_onnx.cli.logs import add_report_option
from rope_onnx.io.atomic import check_output_path, write_report
from rope_onnx.kernel.chips import describe_choices


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kernel-sim",
        help="run the Ascend kernel's host build on x, cos, sin and report its memory traffic",
        description=(
            "Build (cached) and run the custom_op kernel core and tiling on the host, for the chip's core "
            "count and UB size, checking the hardware's copy and buffer rules; write y to OUT.npz."
        ),
    )
    parser.add_argument("--inputs", required=True, metavar="IN.npz", help="arrays x, cos, sin (float16/32)")
    parser.add_argument("--output", required=True, metavar="OUT.npz", help="where y is written")
    parser.add_argument("--interleaved", type=int, choices=(0, 1), default=1)
    parser.add_argument("--rotary-dim", type=int, default=0, help="0 = the whole head (default)")
    parser.add_argument(
        "--soc",
        default="Ascend910B2",
        metavar="CHIP",
        help=f"the exact chip as ATC spells it (default Ascend910B2): {describe_choices()}",
    )
    add_report_option(parser, "the summary")
    parser.add_argument(
        "--json", action="store_true", help="print only the JSON report, on stdout (as --report - -q)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rope_onnx.kernel.sim import simulate_file  # imported here: other commands never load it

    target = args.console.report_target(args.report)
    if isinstance(target, Path):
        check_output_path(target, Path(args.inputs), Path(args.output))
    result = simulate_file(args.inputs, args.output, args.interleaved, args.rotary_dim, args.soc)
    plan = result.plan
    moved = result.gm_bytes_read + result.gm_bytes_written
    args.console.show(
        f"{plan['soc_version']}: {result.blocks} blocks, {plan['split']} split, view PQST "
        f"{plan['view_PQST']}, tile {plan['tile_rows']} table rows, chunk {plan['chunk_rows']} x rows\n"
        f"global memory: {moved} B moved, minimum {result.min_bytes} B (x{result.traffic_ratio:.4f}); "
        f"UB peak {result.ub_peak_bytes} of {result.ub_capacity_bytes} B\n"
        f"max |y - reference| = {result.max_abs_err_vs_reference:g}; y written to {args.output}"
    )
    if target is not None:
        report = result.to_json(inputs=str(args.inputs), output=str(args.output))
        write_report(json.dumps(report, indent=None if args.json else 2) + "\n", target)
    return 0
