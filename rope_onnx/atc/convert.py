"""``rope-onnx atc``: pre-flight, render, and (on an Ascend host) run ATC — one code path for the
library and the CLI.

Order matters: everything that needs no CANN (profile, graph checks, output path) runs first, so a
wrong model or profile is reported in a second on any machine; only then does a real run look for
``atc`` and the installed custom op package, and finally spend minutes compiling.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rope_onnx.atc import cann, errors_map, marking, preflight
from rope_onnx.atc.command import AtcCommand, build_command, output_stem
from rope_onnx.atc.fit import fit
from rope_onnx.atc.overrides import check_atc_args
from rope_onnx.atc.profile import Profile, load_profile
from rope_onnx.atc.runner import run_logged
from rope_onnx.atc.soc import family_of
from rope_onnx.errors import CheckFailed, InputError
from rope_onnx.graph.index import GraphIndex
from rope_onnx.io.atomic import check_output_path, write_report
from rope_onnx.io.load import LoadedModel, load_model
from rope_onnx.io.targets import STDOUT
from rope_onnx.schemas import stamp

log = logging.getLogger(__name__)


def _warn(line: str) -> None:
    log.warning("%s", line)


def _echo(line: str) -> None:
    """ATC's own output, line by line as it comes (a 7B model compiles for minutes)."""
    log.info("%s", line, extra={"rope_onnx_raw": True})


@dataclass
class AtcResult:
    model: Path
    profile: Profile
    variant: str
    soc_version: str
    command: AtcCommand
    checks: list[preflight.Check]
    dry_run: bool
    package: Path | None = None
    returncode: int | None = None
    diagnoses: list[errors_map.Diagnosis] = field(default_factory=list)
    graph_values: dict[str, int] = field(default_factory=dict)  # sizes the profile left to the graph
    marked: marking.Marking | None = None  # --kernel: the file ATC gets and the nodes marked in it
    loaded: LoadedModel | None = field(default=None, repr=False)

    @property
    def failed(self) -> list[preflight.Check]:
        return [c for c in self.checks if c.status == preflight.FAIL]

    @property
    def warnings(self) -> list[preflight.Check]:
        return [c for c in self.checks if c.status == preflight.WARN]

    def to_json(self) -> dict:
        """The atc report (docs/reports.md, rope_onnx/schemas/atc.schema.json)."""
        ran = self.returncode is not None
        return stamp(
            "atc",
            {
                "model": str(self.model),
                "profile": str(self.profile.path),
                "variant": self.variant,
                "soc_version": self.soc_version,
                "command": self.command.text,
                "argv": self.command.argv,
                "dry_run": self.dry_run,
                "checks": [c.as_dict() for c in self.checks],
                "profile_warnings": self.profile.warnings,
                "graph_values": self.graph_values,
                **self._kernel_json(),
                "package": str(self.package) if self.package else None,
                "atc": {
                    "returncode": self.returncode,
                    "log": str(self.command.log_path) if ran else None,
                    "om": str(self.command.om_path) if ran and self.returncode == 0 else None,
                    "errors": [d.as_dict() for d in self.diagnoses],
                },
            },
        )

    def _kernel_json(self) -> dict:
        if self.marked is None:
            return {}
        return {
            "kernel": self.marked.kernel,
            "atc_model": str(self.marked.atc_model),
            "marked_builtin": self.marked.marked,
        }


def _write_report(result: AtcResult, report: str | Path | TextIO | None) -> None:
    if report is not None:
        if isinstance(report, (str, Path)) and str(report) == STDOUT:
            report = sys.stdout
        target = Path(report) if isinstance(report, (str, Path)) else report
        write_report(json.dumps(result.to_json(), indent=2) + "\n", target)


def plan(
    model: str | Path,
    profile: str | Path,
    *,
    variant: str = "prefill",
    output: str | Path | None = None,
    soc: str | None = None,
    need_weights: bool = False,
    overrides: Iterable[str] = (),
    atc_args: Iterable[str] = (),
    report: str | Path | TextIO | None = None,
    kernel: str = "custom",
    marked_output: str | Path | None = None,
) -> AtcResult:
    """Load and check everything that needs no CANN; never raises for a failed graph check (see
    ``result.failed``), only for unusable input (InputError).  Writes nothing.

    ``profile``: a path or a shipped profile's name; ``overrides``: ``KEY=VALUE`` strings (``--set``);
    ``atc_args``: extra ATC flags appended to the command (``--atc-arg``); ``kernel``: ``custom`` (ATC gets
    the input) or ``auto`` (nodes Huawei's built-in op is proven to serve are marked in a new file,
    ``marked_output`` or :func:`.marking.default_path`, which ATC gets: :mod:`.marking`).
    """
    extra = check_atc_args(atc_args)
    prof = load_profile(profile, overrides)
    if variant not in prof.variants:
        raise InputError(f"{prof.path}: has no variant '{variant}' (it has: {', '.join(prof.variants)})")
    chosen = prof.variants[variant]
    soc_version = soc or prof.soc_version
    family = family_of(soc_version)
    if family != prof.family:
        raise InputError(
            f"--soc {soc_version} is a {family} chip but profile {prof.path.name} is written "
            f"for {prof.family} ({prof.soc_version}); use a profile for this chip family"
        )
    loaded = load_model(model, need_external_data=need_weights)
    fitted = fit(chosen, loaded.model, prof.model)  # inputs by role, sizes the profile leaves to the graph
    # auto: one shape inference serves marking and the checks (marking renames ops, changes no tensor)
    index = GraphIndex(loaded.model) if kernel == "auto" else None
    marked = marking.prepare(loaded, family, fitted.variant, soc_version, kernel, marked_output, index)
    stem = output_stem(loaded.path, prof, fitted.variant, output)
    command = build_command(marked.atc_model, prof, fitted.variant, soc_version, stem, extra)
    # every path this command (or ATC for it) writes, against the model, its data files, the profile
    protected = [*loaded.files, prof.path]
    written = []
    if marked.path is not None:
        check_output_path(marked.path, loaded.path, *protected)
        written.append(marked.path)
    check_output_path(command.om_path, loaded.path, *protected, *written)
    check_output_path(command.log_path, loaded.path, *protected, *written, command.om_path)
    if isinstance(report, (str, Path)) and str(report) != STDOUT:
        check_output_path(report, loaded.path, *protected, *written, command.om_path, command.log_path)
    # the checks read the graph ATC gets; its data files are the input's, where they are now
    seen = LoadedModel(marked.model, loaded.path, loaded.external) if marked.model is not None else loaded
    checks = preflight.run_checks(seen, prof, fitted.variant, soc_version, family, fitted.problems, index)
    checks.append(preflight.Check("atc_model", preflight.PASS, marked.sentence()))
    result = AtcResult(loaded.path, prof, variant, soc_version, command, checks, dry_run=True)
    result.graph_values = fitted.values
    result.marked = marked
    result.loaded = loaded
    return result


def _raise_if_failed(result: AtcResult) -> None:
    if not result.failed:
        return
    first = result.failed[0]
    more = f" (+{len(result.failed) - 1} more failed check(s))" if len(result.failed) > 1 else ""
    message = f"pre-flight {first.name}: {first.message}{more}"
    raise (InputError if first.input_problem else CheckFailed)(message)


def convert(
    model: str | Path,
    profile: str | Path,
    *,
    variant: str = "prefill",
    output: str | Path | None = None,
    soc: str | None = None,
    dry_run: bool = False,
    report: str | Path | TextIO | None = None,
    overrides: Iterable[str] = (),
    atc_args: Iterable[str] = (),
    kernel: str = "custom",
    marked_output: str | Path | None = None,
    warn: Callable[[str], None] = _warn,
    echo: Callable[[str], None] = _echo,
) -> AtcResult:
    """Check, render and (unless ``dry_run``) run ATC.  Raises CheckFailed (exit 1) when a pre-flight
    check or ATC itself fails, InputError (exit 2) for unusable input or no CANN.

    ``kernel="auto"``: once the pre-flight passes, the marked model (:func:`plan`) is written -- on a
    dry run too, so the printed command runs as printed -- and is the model ATC gets.

    ``report``: a path, or a stream the caller chose; it is written also when a check fails.  Warnings
    and ATC's live output go to the ``rope_onnx.atc.convert`` logger unless ``warn``/``echo`` are given.
    """
    # ATC reads every weight: a real run refuses missing data files up front (docs/conventions.md, exit 2).
    result = plan(
        model,
        profile,
        variant=variant,
        output=output,
        soc=soc,
        need_weights=not dry_run,
        overrides=overrides,
        atc_args=atc_args,
        report=report,
        kernel=kernel,
        marked_output=marked_output,
    )
    result.dry_run = dry_run
    for note in result.profile.warnings:
        warn(note)
    if result.graph_values:
        read = ", ".join(f"{k} = {v}" for k, v in result.graph_values.items())
        log.info("note: read from the graph (the profile does not pin them): %s", read)
    for check in result.warnings:
        warn(f"{check.name}: {check.message}")
    try:
        _raise_if_failed(result)
        if not dry_run:  # no toolkit or package: exit 2 before anything is written
            cann.find_atc()
            prof = result.profile
            result.package = cann.find_package(prof.vendor, prof.family, prof.install_path)
        _log_kernels(result, logging.INFO if kernel == "auto" else logging.DEBUG)
        if result.marked is not None and result.marked.path is not None and result.loaded is not None:
            marking.write(result.marked, result.loaded)
            log.info("%s", f"wrote {result.marked.path}: {len(result.marked.marked)} node(s) marked for "
                     "Huawei's built-in RotaryPositionEmbedding")  # fmt: skip
        if not dry_run:
            _run(result, warn, echo)
    finally:
        _write_report(result, report)
    return result


def _log_kernels(result: AtcResult, level: int) -> None:
    """Which kernel each fused node gets and which file ATC gets: a summary at ``level``, per node with -v.

    ``level`` is INFO for ``--kernel auto`` and DEBUG (``-v``) for the default ``custom``, whose dry run
    prints nothing but the command, as before."""
    rows = [c for c in result.checks if c.name.startswith("kernel[")]
    builtin = sum(c.message.startswith("Huawei's built-in") for c in rows if c.status == preflight.PASS)
    could = sum("would also serve" in c.message for c in rows)
    hint = f" ({could} of them eligible for the built-in op: --kernel auto)" if could else ""
    if rows:
        log.log(level, "kernels: %d fused node(s) on Huawei's built-in RotaryPositionEmbedding, %d on the "
                "custom kernel ro_pe_customer%s", builtin, len(rows) - builtin, hint)  # fmt: skip
    for check in rows:
        log.debug("%s: %s", check.name, check.message)
    for check in result.checks:
        if check.name == "atc_model":
            log.log(level, "%s", check.message)


def _run(result: AtcResult, warn: Callable[[str], None], echo: Callable[[str], None]) -> None:
    om = result.command.om_path
    existed = om.exists()
    log.info("running %s", result.command.text)
    result.returncode, output = run_logged(result.command.argv, result.command.log_path, echo)
    result.diagnoses = errors_map.diagnose(output)
    if result.returncode == 0 and om.is_file():
        return
    if om.exists() and not existed:  # a failed run leaves no half-written model behind
        om.unlink()
    for diagnosis in result.diagnoses:
        warn(f"{diagnosis.code}: {diagnosis.sentence}")
    first = next((d for d in result.diagnoses if d.known), None)
    reason = f"{first.code}: {first.sentence}" if first else f"exit status {result.returncode}"
    raise CheckFailed(f"ATC failed ({reason}); full log: {result.command.log_path}")
