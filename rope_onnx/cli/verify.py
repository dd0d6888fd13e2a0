"""``rope-onnx verify ORIGINAL FUSED``: compare a fused model with its original on ONNX Runtime CPU.

Exit codes (docs/conventions.md): 0 every comparison passed; 1 a mismatch (the table and ``--report`` say
where); 2 unusable input (unreadable file, models that do not correspond, feeds that do not fit).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rope_onnx.cli.logs import add_report_option
from rope_onnx.errors import EXIT_CHECK_FAILED, EXIT_OK

if TYPE_CHECKING:
    from rope_onnx.verify import VerifyOptions

log = logging.getLogger("rope_onnx.cli")


def add_verify_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with ``fuse --verify``."""
    for name, what in (("atol", "absolute"), ("rtol", "relative")):
        parser.add_argument(
            f"--{name}",
            action="append",
            metavar="[NAME:]VALUE",
            help=f"{what} tolerance, Polygraphy syntax: VALUE for every comparison, NAME:VALUE for one "
            f"output or site tensor (repeatable: --{name} logits:1e-2 --{name} 1e-4; default: per dtype)",
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
    from rope_onnx.verify import VerifyOptions  # imported when used: `fuse` without --verify skips it
    from rope_onnx.verify.dims import parse_dim_options
    from rope_onnx.verify.tolerances import parse_tolerance_options

    return VerifyOptions(
        atol=parse_tolerance_options(args.atol, "atol"),
        rtol=parse_tolerance_options(args.rtol, "rtol"),
        seed=args.seed,
        dims=parse_dim_options(args.dim),
        inputs=Path(args.inputs) if getattr(args, "inputs", None) else None,
        sites=bool(getattr(args, "sites", False)),
        save_inputs=Path(args.save_inputs) if getattr(args, "save_inputs", None) else None,
        save_outputs=Path(args.save_outputs) if getattr(args, "save_outputs", None) else None,
        save_bin=bool(getattr(args, "bin", False)),
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
    parser.add_argument(
        "--inputs",
        metavar="FEEDS",
        help="real feeds: an .npz keyed by input name, a folder of <name>.npy (what --save-inputs writes), "
        "or Polygraphy's --save-inputs JSON; integer ids of another integer type are cast",
    )
    parser.add_argument(
        "--save-inputs", metavar="DIR", help="write the feeds used as DIR/<input>.npy (+ manifest.json)"
    )
    parser.add_argument(
        "--save-outputs", metavar="DIR", help="write the ORIGINAL's outputs (the goldens) as DIR/<output>.npy"
    )
    parser.add_argument(
        "--bin", action="store_true", help="also write raw <name>.bin next to each .npy (for ais_bench, msit)"
    )
    parser.add_argument(
        "--sites",
        action="store_true",
        help="prove each site locally on random tensors; needs no weights and no full run",
    )
    add_report_option(parser, "the table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rope_onnx.io.atomic import check_output_path, write_report
    from rope_onnx.io.load import load_model
    from rope_onnx.verify import verify_models

    options = options_from(args)
    need = not options.sites  # --sites needs only the graphs
    original = load_model(args.original, need_external_data=need)
    fused = load_model(args.fused, need_external_data=need)
    report = args.console.report_target(args.report)
    if isinstance(report, Path):  # never over an input model or any of its data files
        report = check_output_path(report, original.path, *original.files, *fused.files)
    result = verify_models(original, fused, options)
    args.console.show(result.render())
    if report is not None:
        write_report(result.dumps(), report)
    if not result.passed:  # every failing exit ends with one line on stderr, also under -q
        log.error("%s", result.verdict())
    return EXIT_OK if result.passed else EXIT_CHECK_FAILED
