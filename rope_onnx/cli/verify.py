"""``rope-onnx verify ORIGINAL FUSED``: compare a fused model with its original on ONNX Runtime CPU.

Exit codes (docs/conventions.md): 0 every comparison passed; 1 a mismatch (the table and ``--report`` say
where); 2 unusable input (unreadable file, models that do not correspond, feeds that do not fit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rope_onnx.errors import EXIT_CHECK_FAILED, EXIT_OK
from rope_onnx.io.atomic import check_output_path, write_bytes_atomically
from rope_onnx.io.load import load_model
from rope_onnx.io.targets import STDOUT
from rope_onnx.verify import VerifyOptions, verify_models
from rope_onnx.verify.dims import parse_dim_options


def add_verify_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with ``fuse --verify``."""
    parser.add_argument(
        "--atol", type=float, help="absolute tolerance for every comparison (default: per dtype)"
    )
    parser.add_argument(
        "--rtol", type=float, help="relative tolerance for every comparison (default: per dtype)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0)")
    parser.add_argument(
        "--dim",
        action="append",
        metavar="NAME=VALUE",
        help="value of a symbolic input dimension, e.g. --dim batch=1 --dim sequence_length=16 (repeatable)",
    )


def options_from(args: argparse.Namespace) -> VerifyOptions:
    """The parsed flags as :class:`VerifyOptions`, which checks them itself (exit 2 when unusable)."""
    return VerifyOptions(
        atol=args.atol,
        rtol=args.rtol,
        seed=args.seed,
        dims=parse_dim_options(args.dim),
        inputs=Path(args.inputs) if getattr(args, "inputs", None) else None,
        sites=bool(getattr(args, "sites", False)),
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="compare a fused model with its original on ONNX Runtime CPU",
        description="Run ORIGINAL and FUSED on ONNX Runtime's CPU provider (RoPECustomer served by its "
        "reference decomposition, in memory) and compare every output and every fused site's output.",
    )
    parser.add_argument("original", help="the model before fusion (.onnx)")
    parser.add_argument("fused", help="the model rope-onnx fuse produced from it (.onnx)")
    add_verify_options(parser)
    parser.add_argument("--inputs", metavar="FEEDS.npz", help="real feeds (numpy .npz keyed by input name)")
    parser.add_argument(
        "--sites",
        action="store_true",
        help="prove each site locally on random tensors; needs no weights and no full run",
    )
    parser.add_argument(
        "--report",
        metavar="REPORT.json",
        help="write the JSON report here ('-': on stdout, the table on stderr)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    options = options_from(args)
    report = None
    need = not options.sites
    original = load_model(args.original, need_external_data=need)
    fused = load_model(args.fused, need_external_data=need)
    if args.report and args.report != STDOUT:  # never over an input model or any of its data files
        report = check_output_path(args.report, original.path, *original.files, *fused.files)
    result = verify_models(original, fused, options)
    print(result.render(), file=sys.stderr if args.report == STDOUT else sys.stdout)
    if report is not None:
        write_bytes_atomically(result.dumps().encode(), report)
    elif args.report == STDOUT:
        sys.stdout.write(result.dumps())
    return EXIT_OK if result.passed else EXIT_CHECK_FAILED
