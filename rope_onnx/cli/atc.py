"""``rope-onnx atc FUSED.onnx --profile NAME``: convert a fused model to .om; ``--list-profiles``."""

from __future__ import annotations

import argparse

from rope_onnx.cli.logs import add_report_option
from rope_onnx.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "atc",
        help="pre-flight a fused model and convert it with Huawei ATC using a profile",
        description="Check a fused model against an ATC profile (a shipped one by name, or a .toml path), "
        "render the exact atc command, and run it on an Ascend host with the RoPECustomer package installed.",
    )
    parser.add_argument("model", nargs="?", help="the fused .onnx model (from rope-onnx fuse)")
    parser.add_argument(
        "--profile",
        help="a shipped profile's name (e.g. tiny-llama_ascend910b3; see --list-profiles) or a .toml path",
    )
    parser.add_argument("--list-profiles", action="store_true", help="list the shipped profiles and stop")
    parser.add_argument(
        "--variant",
        choices=("prefill", "decode"),
        default="prefill",
        help="which graph the model is (default: prefill)",
    )
    parser.add_argument(
        "--output", help="output path (ATC appends .om); default <model dir>/<profile name>_<variant>"
    )
    parser.add_argument(
        "--soc",
        help="another exact chip of the profile's family (e.g. Ascend910B2) instead of its soc_version",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override one profile value, e.g. --set model.num_layers=28 "
        "--set 'variants.prefill.dims.seq=[128]' (repeatable; checked like the file)",
    )
    parser.add_argument(
        "--atc-arg",
        action="append",
        metavar="ARG",
        help="pass one more flag to atc, written --atc-arg=--name=value (repeatable)",
    )
    parser.add_argument(
        "--kernel",
        choices=("custom", "auto"),
        default="custom",
        help="custom (default): every fused node on the RoPECustomer kernel, ATC gets the model as it is; "
        "auto: nodes Huawei's built-in RotaryPositionEmbedding is proven to serve on this chip for every "
        "profile shape are marked RoPEBuiltin in a NEW model file, which ATC gets (the input is untouched; "
        "the pre-flight's kernel[...] and atc_model rows say which kernel and which file)",
    )
    parser.add_argument(
        "--marked-output",
        metavar="PATH",
        help="where --kernel auto writes the marked model (default: <model>_builtin_<soc>_<variant>.onnx "
        "next to the model, sharing its data files; elsewhere they are copied)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="run the pre-flight, print the atc command on stdout and stop (--kernel auto still writes "
        "the marked model, so the command runs as printed)",
    )
    add_report_option(parser, "the rest")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rope_onnx.atc import convert  # imported here: `fuse` and `--help` never load the ATC layer
    from rope_onnx.atc.catalog import render_list

    if args.list_profiles:
        print(render_list())
        return 0
    if not args.model or not args.profile:
        raise InputError("give the fused model and --profile NAME (rope-onnx atc --list-profiles lists them)")
    result = convert(
        args.model,
        args.profile,
        variant=args.variant,
        output=args.output,
        soc=args.soc,
        dry_run=args.dry_run,
        report=args.console.report_target(args.report),
        overrides=args.set or (),
        atc_args=args.atc_arg or (),
        kernel=args.kernel,
        marked_output=args.marked_output,
    )
    if args.dry_run:
        args.console.product(result.command.text)
    else:
        args.console.show(f"wrote {result.command.om_path} (ATC log: {result.command.log_path})")
    return 0
