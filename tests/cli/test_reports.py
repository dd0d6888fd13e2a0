"""The JSON reports: ``--report -`` on stdout, ``schema`` and ``rope_onnx_version`` in each, and real
output of every command validated against the schema shipped in the package (docs/reports.md).

In-process (``rope_onnx.cli.app.main``) with capsys: the same parsing, streams and exit codes as the
installed command, without a subprocess per case.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, ROOT
from json_schema import errors

import rope_onnx
from rope_onnx.cli.app import main
from rope_onnx.schemas import REPORTS, schema

LLAMA = FIXTURES / "llama_base_ts_fp32.onnx"
PROFILE = ROOT / "atc_configs" / "tiny-llama_ascend910b3.toml"


def valid(report: dict, name: str) -> None:
    assert report["schema"] == REPORTS[name] and report["rope_onnx_version"] == rope_onnx.__version__
    assert list(report)[:2] == ["schema", "rope_onnx_version"]
    problems = errors(report, schema(name))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fused") / "llama_fused.onnx"
    assert main(["fuse", str(LLAMA), "-o", str(out), "-q"]) == 0
    return out


def test_the_validator_reports_what_it_checks_and_refuses_what_it_cannot() -> None:
    """The schema tests below mean something only if this small validator fails bad reports."""
    s = schema("fuse")
    good = {"schema": "rope-onnx/fuse/1", "rope_onnx_version": "0", "model": "m", "fused": 0}
    good |= {"sites": [], "skipped": [], "a_key_a_later_release_adds": {"x": 1}}
    assert errors(good, s) == []
    without = {k: v for k, v in good.items() if k != "skipped"}
    assert errors(without, s) == ["$: missing required key 'skipped'"]
    assert errors({**good, "fused": "4"}, s) == ["$.fused: '4' is not of type integer"]
    assert errors({**good, "schema": "rope-onnx/fuse/2"}, s) == [
        "$.schema: 'rope-onnx/fuse/2' is not 'rope-onnx/fuse/1'"
    ]
    site = {"output": "y", "input": "x", "cos": "c", "sin": "s", "interleaved": 2, "rotary_dim": 8}
    site |= {"head_dim": 8, "dtype": "float32", "nodes_removed": 1, "node": "n", "assumes": []}
    assert errors({**good, "sites": [site]}, s) == [
        "$.sites[0]: missing required key 'layer'",
        "$.sites[0].interleaved: 2 is not one of [0, 1]",
    ]
    row = schema("verify")["$defs"]["number"]
    assert errors("inf", row, schema("verify")) == [] and errors("big", row, schema("verify"))
    with pytest.raises(ValueError, match="does not implement"):
        errors(1, {"pattern": "x"})


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_each_schema_is_shipped_versioned_and_open_to_new_keys(name: str) -> None:
    path = ROOT / "rope_onnx" / "schemas" / f"{name}.schema.json"
    text = path.read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert loaded == schema(name)  # what the package loads is the file in the tree
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert loaded["properties"]["schema"] == {**loaded["properties"]["schema"], "const": REPORTS[name]}
    assert set(loaded["required"]) <= set(loaded["properties"])
    assert '"additionalProperties": false' not in text  # other releases add keys without a new major
    assert f"rope_onnx/schemas/{name}.schema.json" in (ROOT / "docs" / "reports.md").read_text()


def test_fuse_report_dash_is_json_on_stdout_and_the_table_on_stderr(tmp_path: Path, capsys) -> None:
    assert main(["fuse", str(LLAMA), "-o", str(tmp_path / "f.onnx"), "--report", "-"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)  # stdout is the report and nothing else
    valid(report, "fuse")
    assert report["fused"] == 4 and [s["layer"] for s in report["sites"]] == ["0", "0", "1", "1"]
    assert "fused 4 RoPE site(s)" in err and "nodes_removed" in err
    assert not (tmp_path / "-").exists()


def test_fuse_verify_report_nests_a_valid_verify_report(tmp_path: Path, capsys) -> None:
    report = tmp_path / "r.json"
    argv = ["fuse", str(LLAMA), "-o", str(tmp_path / "f.onnx"), "--verify", "--report", str(report), "-q"]
    assert main(argv) == 0
    assert capsys.readouterr() == ("", "")
    data = json.loads(report.read_text())
    valid(data, "fuse")
    valid(data["verify"], "verify")
    assert data["verify"]["passed"] is True


@pytest.mark.parametrize("mode", [[], ["--sites"]], ids=["full", "sites"])
def test_verify_report_dash_validates(fused: Path, mode: list[str], capsys) -> None:
    assert main(["verify", str(LLAMA), str(fused), *mode, "--report", "-"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    valid(report, "verify")
    assert report["mode"] == ("sites" if mode else "full") and "PASSED" in err


def test_atc_dry_run_report_dash_keeps_stdout_for_the_json(fused: Path, tmp_path: Path, capsys) -> None:
    argv = ["atc", str(fused), "--profile", str(PROFILE), "--dry-run", "--output", str(tmp_path / "m")]
    assert main([*argv, "--report", "-"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    valid(report, "atc")
    assert report["dry_run"] is True and report["atc"]["returncode"] is None
    assert err.strip() == report["command"]  # the command a dry run prints moved to stderr
    assert main([*argv, "-q"]) == 0  # the command is what --dry-run asked for: printed even with -q
    assert capsys.readouterr().out.strip() == report["command"]


def test_kernel_sim_json_and_report_validate(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 3, 16)).astype(np.float32)
    table = rng.standard_normal((3, 16)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x, cos=table, sin=table)
    argv = ["kernel-sim", "--inputs", str(tmp_path / "in.npz"), "--output", str(tmp_path / "y.npz")]
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and err == ""
    valid(json.loads(out), "kernel-sim")
    assert main([*argv, "--report", str(tmp_path / "k.json"), "--interleaved", "0"]) == 0
    data = json.loads((tmp_path / "k.json").read_text())
    valid(data, "kernel-sim")
    assert data["interleaved"] == 0 and "global memory" in capsys.readouterr().out
