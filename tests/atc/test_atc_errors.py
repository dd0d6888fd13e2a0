"""ATC log diagnosis on public log lines, the custom op package lookup, and the no-CANN path.

No test pretends to be ATC: log lines come from Huawei's public documentation and public issue
threads (cited per case), the package lookup runs on a directory laid out as
``custom_opp_*.run`` installs it, and the no-CANN path runs the real CLI with ``atc`` absent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from test_atc_models import llm_inputs, make_model, save
from test_atc_profiles import cli

from rope_onnx.atc import cann, errors_map
from rope_onnx.atc.runner import run_logged
from rope_onnx.errors import InputError

# Ascend/ModelZoo-PyTorch issue #6 (ATC output for an ONNX model with unregistered custom ops).
MODELZOO_ISSUE_6 = """\
ATC start working now, please wait for a moment...
ATC run failed, Please check the detail log, Try 'atc --help' for more information
E19010: No parser is registered for Op [/down_blocks.1/attentions.0/transformer_blocks.0/tome1/FindMax, \
optype [ai.onnx::11::FindMax]].
      Solution: Check the version of the installation package and reinstall the package. For details, see \
the operator specifications.
      TraceBack (most recent call last):
      No parser is registered for Op [/down_blocks.1/attentions.0/transformer_blocks.0/tome1/TomeMerged, \
optype [ai.onnx::11::TomeMerged]].
"""
# hiascend forum thread-02101177738192247018: YOLO11 exported with opset 19, converted for Ascend310P3.
FORUM_OPSET19 = "E19010: No parser is registered for Op [/model.0/conv/Conv, optype [ai.onnx::19::Conv]]."
# hiascend forum thread-0223103961674073017.
FORUM_OPP_PATH = (
    "E20002: Value [/usr/local/Ascend/nnrt/6.0.0.alpha001/opp/] for environment variable "
    "[ASCEND_OPP_PATH] is invalid when load buildin op store."
)
# Error Code Reference templates (atlaserrorcode_15_0093 / _0095 / _0062), filled in for RoPECustomer.
DOC_E16002 = "E16002: No ONNX parser is registered for optype [ai.onnx::17::RoPECustomer]."
DOC_E16005 = "E16005: The model has [2] [--domain_version] fields, but only one is allowed."
DOC_E10501 = "E10501: IR for Op [rope_0, optype [RoPECustomer]], is not registered."
# ATC --log reference: "[Level] Module(PID,PName):DateTime [File:Line]Content" (its example line, with the
# GELOGE text hicann/ge parser/parser/onnx/onnx_parser.cc prints next to REPORT_PREDEFINED_ERR_MSG("E11010")).
LOG_E11010 = (
    "[ERROR] GE(30741,atc.bin):2021-12-09-16:10:22.539.201 [error_manager.cc:263]30741 "
    "ReportErrMessage: error_code: E11010, [Parse][Params] for op [rope_0] fail, "
    "optype [RoPECustomer]"
)


def test_modelzoo_log_custom_op_without_plugin():
    (diagnosis,) = errors_map.diagnose(MODELZOO_ISSUE_6)
    assert diagnosis.code == "E19010" and diagnosis.known
    assert diagnosis.sentence == (
        "ATC has no parser for the custom op ai.onnx::11::FindMax: install the "
        "package that provides it, or remove the op from the model"
    )


def test_forum_log_standard_op_at_unsupported_opset():
    (diagnosis,) = errors_map.diagnose(FORUM_OPSET19)
    assert "does not support default opset 19; re-export the model with a lower opset" in diagnosis.sentence


def test_documented_lines_map_to_one_sentence_with_the_fix():
    cases = {
        DOC_E16002: ("E16002", "ai.onnx::17::RoPECustomer: the RoPECustomer package is not installed"),
        DOC_E16005: ("E16005", "re-fuse without --domain"),
        DOC_E10501: ("E10501", "no operator prototype (IR) for RoPECustomer"),
        LOG_E11010: ("E11010", "parse function failed for RoPECustomer"),
        FORUM_OPP_PATH: ("E20002", "ASCEND_OPP_PATH environment variable is invalid"),
    }
    for line, (code, phrase) in cases.items():
        (diagnosis,) = errors_map.diagnose(line)
        assert diagnosis.code == code
        assert phrase in diagnosis.sentence, diagnosis.sentence
        assert diagnosis.sentence.count(". ") == 0  # one sentence


def test_every_code_is_listed_once_in_order_and_unknown_codes_pass_through():
    log = "\n".join([DOC_E16005, DOC_E16002, DOC_E16005, "E12345: something new"])
    found = errors_map.diagnose(log)
    assert [d.code for d in found] == ["E16005", "E16002", "E12345"]
    assert not found[-1].known and found[-1].sentence.startswith("E12345: something new")
    assert errors_map.diagnose("ATC run success, welcome to the next use.") == []


def test_every_known_code_names_its_source():
    assert {"E16002", "E16005", "E10501", "E11010"} <= set(errors_map.KNOWN)
    assert all(k.source for k in errors_map.KNOWN.values())


def install_package(
    root: Path, vendor: str = "rope_onnx", families: tuple[str, ...] = ("ascend910b",), plugin: bool = True
) -> Path:
    """Lay out a vendor folder as custom_opp_*.run installs it (empty files: only the layout matters)."""
    folder = root / "vendors" / vendor
    if plugin:
        (folder / "framework" / "onnx").mkdir(parents=True)
        (folder / "framework" / "onnx" / "libcust_onnx_parsers.so").write_bytes(b"")
    (folder / "op_proto" / "lib" / "linux" / "x86_64").mkdir(parents=True)
    (folder / "op_proto" / "lib" / "linux" / "x86_64" / "libcust_opsproto_rt2.0.so").write_bytes(b"")
    for family in families:
        config = folder / "op_impl" / "ai_core" / "tbe" / "config" / family
        config.mkdir(parents=True)
        (config / f"aic-{family}-ops-info.json").write_text('{"RoPECustomer": {}}')
    return folder


def test_package_found_under_opp_path(tmp_path):
    folder = install_package(tmp_path)
    found = cann.find_package("rope_onnx", "ascend910b", env={"ASCEND_OPP_PATH": str(tmp_path)})
    assert found == folder


def test_package_found_through_custom_opp_path_first(tmp_path):
    install_package(tmp_path / "opp", families=("ascend310p",))
    custom = install_package(tmp_path / "mine", families=("ascend910b", "ascend310p"))
    env = {"ASCEND_OPP_PATH": str(tmp_path / "opp"), "ASCEND_CUSTOM_OPP_PATH": f"/nonexistent:{custom}"}
    assert cann.find_package("rope_onnx", "ascend910b", env=env) == custom


def test_package_problems_are_named(tmp_path):
    install_package(tmp_path, plugin=False, families=("ascend910b",))
    env = {"ASCEND_OPP_PATH": str(tmp_path)}
    with pytest.raises(InputError, match=r"no ONNX plugin \(framework/onnx/\*\.so\)"):
        cann.find_package("rope_onnx", "ascend910b", env=env)
    with pytest.raises(InputError, match="no op implementation for ascend310p"):
        cann.find_package("rope_onnx", "ascend310p", env=env)
    with pytest.raises(InputError, match="ASCEND_OPP_PATH is not set"):
        cann.find_package("rope_onnx", "ascend910b", env={})


def test_package_installed_elsewhere_says_what_to_export(tmp_path):
    folder = install_package(tmp_path / "custom")
    (tmp_path / "opp" / "vendors").mkdir(parents=True)
    with pytest.raises(InputError, match=f"export ASCEND_CUSTOM_OPP_PATH={folder}"):
        cann.find_package(
            "rope_onnx", "ascend910b", tmp_path / "custom", env={"ASCEND_OPP_PATH": str(tmp_path / "opp")}
        )


def test_no_cann_is_exit_2_with_one_line(tmp_path):
    model = save(make_model(llm_inputs(2, 1, 16, decode=False, position_ids=False)), tmp_path / "m.onnx")
    # PATH holds only the interpreter's folder, which has no atc (checked, not assumed).
    bin_dir = str(Path(sys.executable).parent)
    assert not (Path(bin_dir) / "atc").exists()
    report = tmp_path / "r.json"
    run = cli(
        "atc",
        str(model),
        "--profile",
        "atc_configs/tiny-llama_ascend910b3.toml",
        "--report",
        str(report),
        env={"PATH": bin_dir},
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [f"rope-onnx atc: error: {cann.NO_CANN}"]
    assert not list(tmp_path.glob("*.om")) and not list(tmp_path.glob("*.atc.log"))
    assert report.is_file()


def test_runner_streams_lines_and_keeps_the_log(tmp_path):
    # A plain child process, not an ATC stand-in: it only checks the tee-to-log plumbing.
    seen: list[str] = []
    script = "import sys; print('step 1'); print('step 2', file=sys.stderr); sys.exit(3)"
    status, text = run_logged([sys.executable, "-c", script], tmp_path / "x.log", seen.append)
    assert status == 3
    assert seen == ["step 1", "step 2"]
    assert text == "step 1\nstep 2\n"
    assert (tmp_path / "x.log").read_text().endswith("step 1\nstep 2\n")


def test_environment_is_not_required_for_a_dry_run(tmp_path):
    model = save(make_model(llm_inputs(2, 1, 16, decode=False, position_ids=False)), tmp_path / "m.onnx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCEND")}
    run = cli(
        "atc",
        str(model),
        "--profile",
        "atc_configs/tiny-llama_ascend910b3.toml",
        "--dry-run",
        env={**env, "PATH": str(Path(sys.executable).parent)},
    )
    assert run.returncode == 0 and run.stdout.startswith("atc ")
