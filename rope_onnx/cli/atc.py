"""``rope-onnx atc FUSED.onnx --profile atc_configs/NAME.toml``: convert a fused model to .om."""

from __future__ import annotations

import argparse
import sys

from rope_onnx.atc import convert


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "atc",
        help="pre-flight a fused model and convert it with Huawei ATC using a profile",
        description="Check a fused model against an ATC profile (atc_configs/*.toml), render the exact atc "
        "command, and run it on an Ascend host with the RoPECustomer package installed.",
    )
    parser.add_argument("model", help="the fused .onnx model (from rope-onnx fuse)")
    parser.add_argument(
        "--profile", required=True, help="ATC profile, e.g. atc_configs/llama2-7b_ascend910b3.toml"
    )
    parser.add_argument(
        "--variant",
        choices=("prefill", "decode"),
        default="prefill",
        help="which graph the model is (default: prefill)",
    )
    parser.add_argument(
        "--output", help="output path (ATC appends .om); default <model dir>/<profile name>_<variant>"
    )
    parser.add_argument("--soc", help="another chip of the profile's family instead of its soc_version")
    parser.add_argument(
        "--dry-run", action="store_true", help="run the pre-flight, print the atc command on stdout and stop"
    )
    parser.add_argument("--report", help="write the JSON report here ('-': on stdout)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = convert(
        args.model,
        args.profile,
        variant=args.variant,
        output=args.output,
        soc=args.soc,
        dry_run=args.dry_run,
        report=args.report,
    )
    human = sys.stderr if args.report == "-" else sys.stdout  # '-': the JSON report owns stdout
    if args.dry_run:
        print(result.command.text, file=human)
    else:
        print(f"wrote {result.command.om_path} (ATC log: {result.command.log_path})", file=human)
    return 0
