"""``rope-onnx atc``: pre-flight, render, and (on an Ascend host) run ATC — one code path for the
library and the CLI.

Order matters: everything that needs no CANN (profile, graph checks, output path) runs first, so a
wrong model or profile is reported in a second on any machine; only then does a real run look for
``atc`` and the installed custom op package, and finally spend minutes compiling.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rope_onnx.atc import cann, errors_map, preflight
from rope_onnx.atc.command import AtcCommand, build_command, output_stem
from rope_onnx.atc.profile import Profile, load_profile
from rope_onnx.atc.runner import run_logged
from rope_onnx.atc.soc import family_of
from rope_onnx.errors import CheckFailed, InputError
from rope_onnx.io.atomic import check_output_path, write_bytes_atomically
from rope_onnx.io.load import load_model
from rope_onnx.io.targets import STDOUT


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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

    @property
    def failed(self) -> list[preflight.Check]:
        return [c for c in self.checks if c.status == preflight.FAIL]

    @property
    def warnings(self) -> list[preflight.Check]:
        return [c for c in self.checks if c.status == preflight.WARN]

    def to_json(self) -> dict:
        ran = self.returncode is not None
        return {
            "model": str(self.model),
            "profile": str(self.profile.path),
            "variant": self.variant,
            "soc_version": self.soc_version,
            "command": self.command.text,
            "argv": self.command.argv,
            "dry_run": self.dry_run,
            "checks": [c.as_dict() for c in self.checks],
            "profile_warnings": self.profile.warnings,
            "package": str(self.package) if self.package else None,
            "atc": {
                "returncode": self.returncode,
                "log": str(self.command.log_path) if ran else None,
                "om": str(self.command.om_path) if ran and self.returncode == 0 else None,
                "errors": [d.as_dict() for d in self.diagnoses],
            },
        }


def _write_report(result: AtcResult, report: str | Path | None) -> None:
    if report is not None and str(report) == STDOUT:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    elif report is not None:
        text = json.dumps(result.to_json(), indent=2) + "\n"
        write_bytes_atomically(text.encode("utf-8"), Path(report))


def plan(
    model: str | Path,
    profile: str | Path,
    *,
    variant: str = "prefill",
    output: str | Path | None = None,
    soc: str | None = None,
    need_weights: bool = False,
    report: str | Path | None = None,
) -> AtcResult:
    """Load and check everything that needs no CANN; never raises for a failed graph check (see
    ``result.failed``), only for unusable input (InputError)."""
    prof = load_profile(profile)
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
    stem = output_stem(loaded.path, prof, chosen, output)
    command = build_command(loaded.path, prof, chosen, soc_version, stem)
    # every path this command (or ATC for it) writes, against the model, its data files, the profile
    protected = [*loaded.files, prof.path]
    check_output_path(command.om_path, loaded.path, *protected)
    check_output_path(command.log_path, loaded.path, *protected, command.om_path)
    if report is not None and str(report) != STDOUT:
        check_output_path(report, loaded.path, *protected, command.om_path, command.log_path)
    checks = preflight.run_checks(loaded, prof, chosen, soc_version, family)
    return AtcResult(loaded.path, prof, variant, soc_version, command, checks, dry_run=True)


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
    report: str | Path | None = None,
    warn: Callable[[str], None] = _stderr,
    echo: Callable[[str], None] = _stderr,
) -> AtcResult:
    """Check, render and (unless ``dry_run``) run ATC.  Raises CheckFailed (exit 1) when a pre-flight
    check or ATC itself fails, InputError (exit 2) for unusable input or no CANN."""
    # ATC reads every weight: a real run refuses missing data files up front (docs/conventions.md, exit 2).
    result = plan(
        model, profile, variant=variant, output=output, soc=soc, need_weights=not dry_run, report=report
    )
    result.dry_run = dry_run
    for note in result.profile.warnings:
        warn(f"warning: {note}")
    for check in result.warnings:
        warn(f"warning: {check.name}: {check.message}")
    try:
        _raise_if_failed(result)
        if not dry_run:
            _run(result, warn, echo)
    finally:
        _write_report(result, report)
    return result


def _run(result: AtcResult, warn: Callable[[str], None], echo: Callable[[str], None]) -> None:
    cann.find_atc()
    prof = result.profile
    result.package = cann.find_package(prof.vendor, prof.family, prof.install_path)
    om = result.command.om_path
    existed = om.exists()
    echo(f"rope-onnx atc: {result.command.text}")
    result.returncode, log = run_logged(result.command.argv, result.command.log_path, echo)
    result.diagnoses = errors_map.diagnose(log)
    if result.returncode == 0 and om.is_file():
        return
    if om.exists() and not existed:  # a failed run leaves no half-written model behind
        om.unlink()
    for diagnosis in result.diagnoses:
        warn(f"{diagnosis.code}: {diagnosis.sentence}")
    first = next((d for d in result.diagnoses if d.known), None)
    reason = f"{first.code}: {first.sentence}" if first else f"exit status {result.returncode}"
    raise CheckFailed(f"ATC failed ({reason}); full log: {result.command.log_path}")
