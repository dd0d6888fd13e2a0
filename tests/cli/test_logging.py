"""Polygraphy-style logging on every verb: ``-v``/``-q`` (repeatable), ``--log-file``, ``--debug``, before
or after the verb; progress lines for long steps on stderr; the library logs and never prints.

In-process (``rope_onnx.cli.app.main``) with capsys, plus one real subprocess for the promise the issue
makes about the installed command (``rope-onnx fuse M -o O -q`` prints nothing).
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import pytest
from conftest import FIXTURES, cli_subprocess

from rope_onnx import fuse_file, fuse_model, verify_models
from rope_onnx.cli.app import main
from rope_onnx.cli.logs import console_level

LLAMA = FIXTURES / "llama_base_ts_fp32.onnx"


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fused") / "llama_fused.onnx"
    fuse_file(LLAMA, out)
    return out


def test_fuse_quiet_prints_nothing_as_a_real_process(tmp_path: Path) -> None:
    run = cli_subprocess("fuse", str(LLAMA), "-o", str(tmp_path / "f.onnx"), "-q")
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    assert (tmp_path / "f.onnx").is_file()


@pytest.mark.parametrize(
    "where",
    [
        ["-q", "fuse", "{m}", "-o", "{o}"],
        ["fuse", "{m}", "-o", "{o}", "-q"],
        ["fuse", "-q", "{m}", "-o", "{o}"],
    ],
    ids=["before", "after", "between"],
)
def test_logging_options_work_before_or_after_the_verb(tmp_path: Path, capsys, where: list[str]) -> None:
    argv = [a.format(m=LLAMA, o=tmp_path / "f.onnx") for a in where]
    assert main(argv) == 0
    assert capsys.readouterr() == ("", "")
    assert main([a for a in argv if a != "-q"]) == 0
    assert "fused 4 RoPE site(s)" in capsys.readouterr().out  # without -q: the table


def test_counts_add_up_across_both_places_and_map_to_levels(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "f.onnx")
    assert main(["-v", "fuse", str(LLAMA), "-o", out, "-v"]) == 0  # -vv: everything
    err = capsys.readouterr().err
    assert "rope-onnx fuse: debug: loaded" in err and "debug: wrote" in err
    assert [console_level(v) for v in (2, 1, 0, -1, -2, -3)] == [1, 10, 20, 30, 40, 51]
    assert main(["-q", "fuse", "missing.onnx", "-o", out, "-q"]) == 2  # -qq still shows the error
    assert capsys.readouterr().err.startswith("rope-onnx fuse: error: ")
    assert main(["-qqq", "fuse", "missing.onnx", "-o", out]) == 2
    assert capsys.readouterr() == ("", "")


def test_debug_after_the_verb_shows_the_traceback(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    assert main(["fuse", str(bad), "-o", str(tmp_path / "o.onnx"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("rope-onnx fuse: error: ")


def test_verify_shows_progress_for_each_onnx_runtime_load_and_run(fused: Path, capsys) -> None:
    assert main(["verify", str(LLAMA), str(fused)]) == 0
    out, err = capsys.readouterr()
    progress = err.splitlines()
    assert [line.split(":")[1].strip() for line in progress] == ["ONNX Runtime CPU"] * 4
    assert [" ".join(line.split()[5:8]) for line in progress] == [
        "loading the original",
        "running the original",
        "loading the fused",
        "running the fused",
    ]
    assert "PASSED" in out and "PASSED" not in err
    assert main(["verify", str(LLAMA), str(fused), "-q"]) == 0
    assert capsys.readouterr() == ("", "")


def test_log_file_gets_debug_records_and_the_summary_whatever_the_console(tmp_path: Path, capsys) -> None:
    log = tmp_path / "run.log"
    assert main(["fuse", str(LLAMA), "-o", str(tmp_path / "f.onnx"), "-q", "--log-file", str(log)]) == 0
    assert capsys.readouterr() == ("", "")
    text = log.read_text()
    assert " DEBUG rope_onnx.fusion.pipeline: loaded " in text and "fused 4 RoPE site(s)" in text
    size = len(text)
    assert main(["verify", str(LLAMA), str(tmp_path / "f.onnx"), "--log-file", str(log), "-qq"]) == 0
    assert len(log.read_text()) > size  # appended, not replaced
    assert main(["fuse", str(LLAMA), "-o", str(tmp_path / "g.onnx"), "--log-file", str(LLAMA)]) == 2
    assert "is an input of the command" in capsys.readouterr().err
    assert main(["fuse", str(LLAMA), "-o", str(tmp_path / "g.onnx"), "--log-file", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_verify_mismatch_ends_with_one_error_line_also_under_quiet(tmp_path: Path, capsys) -> None:
    fused_model = onnx.load(str(LLAMA), load_external_data=False)
    fuse_model(fused_model)
    node = next(n for n in fused_model.graph.node if n.op_type == "RoPECustomer")
    node.input[1], node.input[2] = node.input[2], node.input[1]  # cos and sin swapped: a wrong site
    bad = tmp_path / "bad.onnx"
    onnx.save(fused_model, bad)
    assert main(["verify", str(LLAMA), str(bad), "-q"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "error: FAILED: " in err


def test_the_library_logs_through_logging_and_prints_nothing(fused: Path, capsys, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="rope_onnx"):
        assert verify_models(LLAMA, fused).passed
    assert capsys.readouterr() == ("", "")
    assert any(r.name == "rope_onnx.verify.runner" and "loading" in r.getMessage() for r in caplog.records)
    assert logging.getLogger("rope_onnx").handlers  # the NullHandler rope_onnx/__init__ adds
