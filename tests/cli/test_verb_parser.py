"""The command line built for one verb parses exactly as the full one (cli/app.py ``build_parser``)."""

from __future__ import annotations

import pytest

from rope_onnx.cli.app import VERBS, build_parser, verb_of


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["fuse", "m.onnx", "-o", "o.onnx"], "fuse"),
        (["-v", "-q", "--debug", "verify", "a", "b"], "verify"),
        (["-vvq", "--verbose", "--quiet", "atc", "--list-profiles"], "atc"),
        (["--log-file", "fuse", "kernel-sim"], "kernel-sim"),  # a log file named like a verb
        (["--log-file=fuse", "atc"], "atc"),
        (["--log", "fuse", "atc"], None),  # an abbreviation: the full parser decides what it means
        (["--help"], None),
        (["--version"], None),
        (["-h", "fuse"], None),
        (["m.onnx"], None),
        (["kernel_sim"], None),  # the module's name is not a verb
        ([], None),
    ],
)
def test_the_verb_is_found_only_where_it_is_certain(argv: list[str], verb: str | None) -> None:
    assert verb_of(argv) == verb


@pytest.mark.parametrize(
    "argv",
    [
        ["fuse", "m.onnx", "-o", "o.onnx", "--target", "ort", "--expect", "4", "-v"],
        ["-q", "fuse", "m.onnx", "--explain", "t"],
        ["verify", "a.onnx", "b.onnx", "--atol", "1e-3", "--sites", "--dim", "batch=2"],
        ["--log-file", "x.log", "atc", "f.onnx", "--profile", "p", "--dry-run"],
        ["kernel-sim", "--inputs", "i.npz", "--output", "o.npz", "--json"],
    ],
)
def test_one_verb_parses_as_the_full_parser(argv: list[str]) -> None:
    verb = verb_of(argv)
    assert verb is not None
    assert vars(build_parser(verb).parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [["fuse"], ["verify", "a.onnx"], ["atc", "f.onnx", "--variant", "nope"], ["kernel-sim", "--bogus", "1"]],
)
def test_usage_errors_read_the_same(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    said = []
    for parser in (build_parser(verb_of(argv)), build_parser()):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args(argv)
        said.append((stop.value.code, capsys.readouterr().err))
    assert said[0] == said[1]
    assert said[0][0] == 2 and "error:" in said[0][1]


def test_every_verb_is_registered_by_its_module() -> None:
    full = build_parser()
    subparsers = next(a for a in full._actions if a.dest == "command")
    assert sorted(subparsers.choices) == sorted(VERBS)
