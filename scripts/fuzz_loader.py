#!/usr/bin/env python3
"""Long fuzzing run of the model loader and the fusion pass (CI runs tests/io/test_fuzz_loader.py).

Every input goes through what ``rope-onnx fuse`` does with a file: ``load_model`` (graph only,
validated) then ``fuse_model``.  Only ``RopeOnnxError`` (the clean exit-2/exit-1 errors) may
escape; anything else is a crash, printed with its input saved to ``--crashes``.

Two engines:
* ``--engine atheris`` (default when ``pip install atheris`` worked): coverage-guided libFuzzer,
  seeded with small valid models; extra arguments go to libFuzzer, e.g. ``-runs=200000``;
* ``--engine hypothesis``: random bytes and mutated valid models, ``--examples`` of each, seeded.

    python scripts/fuzz_loader.py --engine hypothesis --examples 20000 --seed 7
    python scripts/fuzz_loader.py --engine atheris -- -runs=100000 -max_len=4096
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


class Harness:
    """Runs one input, counts outcomes and keeps every crashing input."""

    def __init__(self, crashes: Path) -> None:
        from strategies import exercise_loader

        self.exercise = exercise_loader
        self.crashes = crashes
        self.path = Path(tempfile.mkdtemp(prefix="rope_onnx_fuzz_")) / "model.onnx"
        self.runs = self.crashed = 0

    def __call__(self, data: bytes) -> None:
        self.runs += 1
        try:
            self.exercise(data, self.path)
        except Exception:
            self.crashed += 1
            self.crashes.mkdir(parents=True, exist_ok=True)
            name = self.crashes / f"crash-{hashlib.sha1(data).hexdigest()[:12]}.onnx"
            name.write_bytes(data)
            print(f"CRASH ({name}):\n{traceback.format_exc()}", file=sys.stderr)
            raise


def run_hypothesis(harness: Harness, examples: int, seed: int) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
    from strategies import mutated_models

    config = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    for strategy in (st.binary(max_size=4096), mutated_models()):

        @hypothesis_seed(seed)
        @config
        @given(strategy)
        def fuzz(data: bytes) -> None:
            harness(data)

        fuzz()


def run_atheris(harness: Harness, libfuzzer_args: list[str]) -> None:
    import atheris  # optional: pip install atheris (wheels for CPython 3.11 on Linux x86-64)
    from strategies import seed_models

    corpus = Path(tempfile.mkdtemp(prefix="rope_onnx_corpus_"))
    for number, data in enumerate(seed_models()):
        (corpus / f"seed{number}.onnx").write_bytes(data)
    with atheris.instrument_imports():
        import rope_onnx.fusion
        import rope_onnx.io.load  # noqa: F401
    if not any(a.startswith("-artifact_prefix=") for a in libfuzzer_args):
        harness.crashes.mkdir(parents=True, exist_ok=True)
        libfuzzer_args = [*libfuzzer_args, f"-artifact_prefix={harness.crashes}/"]
    atheris.Setup([sys.argv[0], *libfuzzer_args, str(corpus)], harness)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    try:
        import atheris  # noqa: F401

        default = "atheris"
    except ImportError:
        default = "hypothesis"
    parser.add_argument("--engine", choices=("atheris", "hypothesis"), default=default)
    parser.add_argument("--examples", type=int, default=10_000, help="hypothesis: inputs per generator")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--crashes",
        type=Path,
        default=Path(tempfile.gettempdir()) / "rope_onnx_fuzz_crashes",
        help="folder for crashing inputs (default: in the temporary folder)",
    )
    parser.add_argument("libfuzzer", nargs="*", help="atheris: arguments for libFuzzer (after --)")
    args = parser.parse_args(argv)
    harness = Harness(args.crashes)
    start = time.monotonic()
    try:
        if args.engine == "atheris":
            run_atheris(harness, args.libfuzzer)
        else:
            run_hypothesis(harness, args.examples, args.seed)
    except Exception:
        print(f"FAILED: {harness.runs} inputs, a crash was found (see above)")
        return 1
    print(f"PASSED: {harness.runs} inputs, 0 crashes, {time.monotonic() - start:.0f} s ({args.engine})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
