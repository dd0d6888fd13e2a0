"""``rope-onnx fuse IN.onnx -o OUT.onnx``: parse arguments, call :func:`rope_onnx.fusion.fuse_file`."""

from __future__ import annotations

import argparse
import logging

from rope_onnx.cli.logs import add_report_option
from rope_onnx.cli.verify import add_verify_options, options_from
from rope_onnx.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fuse",
        help="fuse every RoPE site into one RoPECustomer node",
        description="Find every rotary position embedding site, prove it, and rewrite it into one "
        "RoPECustomer node. The default output is for ATC (node in the default domain).",
    )
    parser.add_argument("model", help="input .onnx model (never modified; weights stay on disk)")
    parser.add_argument(
        "-o", "--output", help="output .onnx path (written atomically); required unless --explain"
    )
    add_report_option(parser, "the table")
    parser.add_argument(
        "--target",
        default="atc",
        help="output form: atc = RoPECustomer for Huawei ATC (default; existing rotary ops are converted); "
        "onnx = standard RotaryEmbedding (opset 23); ort = com.microsoft.RotaryEmbedding (docs/targets.md)",
    )
    parser.add_argument(
        "--domain",
        default=None,
        metavar="NAME",
        help="with --target atc: write RoPECustomer in domain NAME with its reference function embedded, so "
        "the output passes onnx.checker and runs in ONNX Runtime (not for ATC)",
    )
    parser.add_argument(
        "--expect", type=int, metavar="N", help="exit 1 (no output) unless exactly N sites fuse"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="compare the fused model with the input on ONNX Runtime CPU before writing it; a mismatch "
        "exits 1 and writes nothing (tolerance, seed and dim options as for `rope-onnx verify`)",
    )
    parser.add_argument(
        "--link-data",
        action="store_true",
        help="when OUT is in another folder, hard-link the external data files instead of copying them "
        "(instant, no extra disk; but onnx.load then refuses BOTH models: it rejects data files with more "
        "than one link)",
    )
    parser.add_argument(
        "--copy-data", action="store_true", help="copy the data files into OUT's folder (the default)"
    )
    parser.add_argument(
        "--explain",
        metavar="TENSOR",
        help="print how the pass traces and proves the candidate that ends in TENSOR, and write nothing",
    )
    add_verify_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.explain:  # imported here: `--help` and other commands skip the pass
        from rope_onnx.fusion.explain import explain
        from rope_onnx.io.load import load_model

        print(explain(load_model(args.model).model, args.explain))
        return 0
    if not args.output:
        raise InputError("fuse needs -o/--output OUT.onnx (or --explain TENSOR)")
    from rope_onnx.fusion.pipeline import fuse_file  # imported here: `--help` and other commands skip it
    from rope_onnx.fusion.report import render_fuse
    from rope_onnx.fusion.targets import check_options

    check_options(args.target, args.domain)  # the library validates the target and --domain
    verify = options_from(args) if args.verify else None
    result = fuse_file(
        args.model,
        args.output,
        domain=args.domain or "",
        target=args.target,
        expect=args.expect,
        report=args.console.report_target(args.report),
        verify=verify,
        link_data=args.link_data and not args.copy_data,
    )
    args.console.show(render_fuse(result))
    if result.linked:
        logging.getLogger("rope_onnx.cli").warning(
            "hard-linked %d data file(s) (%s); onnx.load (onnx >= 1.21) refuses data files with more than "
            "one link, for the input and the output alike, until one side's links are removed; ONNX Runtime "
            "and ATC read them",
            len(result.linked),
            ", ".join(result.linked[:3]),
        )
    return 0
