"""``test_bad_inputs.py``'s bad inputs given to ``verify`` and ``atc``: the same ending (docs/conventions.md).

Exit 2, a one- or two-line message naming the problem, no traceback, inputs byte-identical and
nothing written.  These run the CLI in-process (``rope_onnx.cli.app.main``: the same argument parsing,
error mapping and stderr text as the installed command) because 19 bad models × 3 command forms
as subprocesses would cost a minute of CI; ``test_end_to_end.py`` covers the process boundary.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bad_models import CRASH_MARKERS, _good_model, _save
from bad_models import _with_external_weight as with_external_weight
from conftest import ROOT
from test_bad_inputs import BAD_MODELS, SAYS, _snapshot, _unwritable_folder

from rope_onnx.cli import app as cli_module
from rope_onnx.fusion.pipeline import fuse_file

PROFILE = ROOT / "atc_configs" / "tiny-llama_ascend910b3.toml"


class Ran:
    def __init__(self, code: int, stderr: str) -> None:
        self.returncode, self.stderr = code, stderr


@pytest.fixture(name="run")
def run_fixture(capsys: pytest.CaptureFixture[str]):
    def run(*argv: str) -> Ran:
        code = cli_module.main(list(argv))
        return Ran(code, capsys.readouterr().err)

    return run


def assert_clean_error(result: Ran, says: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert 1 <= len(lines) <= 2, result.stderr
    assert not any(marker in result.stderr for marker in CRASH_MARKERS), result.stderr
    assert says.lower() in result.stderr.lower(), result.stderr


@pytest.fixture(name="pair")
def pair_fixture(tmp_path: Path) -> tuple[Path, Path]:
    """A good original and the model fused from it."""
    good = tmp_path / "good"
    good.mkdir()
    original = _save(_good_model(), good / "model.onnx")
    fused = good / "fused.onnx"
    fuse_file(original, fused)
    return original, fused


FORMS = ("verify_original", "verify_fused", "atc_dry_run")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_verify_and_atc_refuse_bad_models_cleanly(case, form, run, pair, tmp_path: Path) -> None:
    if (case, form) == ("external_data_missing", "atc_dry_run"):
        pytest.skip("a dry run reads no weight (docs/conventions.md: only where needed); see below")
    folder = tmp_path / "bad"
    folder.mkdir()
    bad = BAD_MODELS[case](folder)
    original, fused = pair
    out = tmp_path / "out"
    out.mkdir()
    argv = {
        "verify_original": ("verify", str(bad), str(fused), "--report", str(out / "r.json")),
        "verify_fused": ("verify", str(original), str(bad), "--report", str(out / "r.json")),
        "atc_dry_run": (
            "atc",
            str(bad),
            "--profile",
            str(PROFILE),
            "--dry-run",
            "--output",
            str(out / "model"),
            "--report",
            str(out / "r.json"),
        ),
    }[form]
    before = _snapshot(tmp_path)
    assert_clean_error(run(*argv), SAYS[case])
    assert _snapshot(tmp_path) == before


def test_atc_without_dry_run_reports_the_bad_model_not_the_missing_toolkit(run, tmp_path: Path) -> None:
    result = run("atc", str(tmp_path / "absent.onnx"), "--profile", str(PROFILE))
    assert_clean_error(result, "no such file")


# --------------------------------------------------------------------------- external data
@pytest.fixture(name="unweighted")
def unweighted_fixture(tmp_path: Path) -> tuple[Path, Path]:
    """An original with an external weight, fused while the data was there, then the data lost."""
    source = with_external_weight(tmp_path, "w.bin")
    fused = tmp_path / "fused.onnx"
    fuse_file(source, fused)
    (tmp_path / "w.bin").unlink()
    return source, fused


def test_verify_needs_the_weights_for_a_full_run(run, unweighted) -> None:
    source, fused = unweighted
    assert_clean_error(run("verify", str(source), str(fused)), "missing")


def test_atc_needs_the_weights_for_a_real_run(run, unweighted, tmp_path: Path) -> None:
    _, fused = unweighted
    result = run("atc", str(fused), "--profile", str(PROFILE), "--output", str(tmp_path / "m"))
    assert_clean_error(result, "missing")


def test_verify_sites_needs_no_weights(run, unweighted) -> None:
    source, fused = unweighted
    result = run("verify", "--sites", str(source), str(fused))
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- output paths
@pytest.mark.parametrize("where", ["no_such_folder", "not_writable", "original", "fused"])
def test_verify_refuses_bad_report_paths(where: str, run, pair, tmp_path: Path) -> None:
    original, fused = pair
    report = {
        "no_such_folder": lambda: tmp_path / "nowhere" / "r.json",
        "not_writable": lambda: _unwritable_folder(tmp_path) / "r.json",
        "original": lambda: original,
        "fused": lambda: fused,
    }[where]()
    says = {"no_such_folder": "does not exist", "not_writable": "not writable"}.get(where, "equals the input")
    before = _snapshot(tmp_path)
    assert_clean_error(run("verify", str(original), str(fused), "--report", str(report)), says)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "where",
    [
        "output_no_such_folder",
        "output_not_writable",
        "output_is_input",
        "report_is_model",
        "report_is_profile",
        "report_no_such_folder",
    ],
)
def test_atc_refuses_bad_output_paths(where: str, run, pair, tmp_path: Path) -> None:
    """Regression: ``--report`` equal to the model (or profile) used to overwrite it."""
    _, fused = pair
    model = tmp_path / "good" / "model.om"  # an input ATC's output name (<stem>.om) can collide with
    shutil.copy(fused, model)
    profile = tmp_path / PROFILE.name
    shutil.copy(PROFILE, profile)
    extra = {
        "output_no_such_folder": ("--output", str(tmp_path / "nowhere" / "m")),
        "output_not_writable": ("--output", str(_unwritable_folder(tmp_path) / "m")),
        "output_is_input": ("--output", str(model.with_suffix(""))),
        "report_is_model": ("--report", str(model)),
        "report_is_profile": ("--report", str(profile)),
        "report_no_such_folder": ("--report", str(tmp_path / "nowhere" / "r.json")),
    }[where]
    says = (
        "does not exist"
        if "no_such" in where
        else "not writable"
        if "writable" in where
        else "equals the input"
    )
    before = _snapshot(tmp_path)
    assert_clean_error(run("atc", str(model), "--profile", str(profile), "--dry-run", *extra), says)
    assert _snapshot(tmp_path) == before
