#!/usr/bin/env python3
"""The large seeded sweep of the fusion property tests (CI runs a small derandomized sample).

Every generated graph — RoPE sites as exporters vary them with their mutants
(``strategies.rope_cases``), random look-alike graphs (``strategies.lookalike_graphs``), hostile
facts (``strategies.trust_cases``) and sites with lying value_info (``lying_graphs.lying_cases``:
the counts say, per kind of lie, how often it was told, what fused, and which skip reasons it
added over the same graph without the lie) — is held to the oracle of ``tests/property_oracle.py``.
Unlike a pytest run, the sweep does not stop at the first failure: it counts every outcome and
prints each failing case (with its seed) so that one run gives the whole picture.  Exit 0 when no
wrong fusion and no crash was found, 1 otherwise.

    python scripts/property_sweep.py --examples 10000 --workers 2 --seed 20261126
    python scripts/property_sweep.py --examples 10000 --workers 2 --kinds lies --seed 20261202
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _run_share(kind: str, examples: int, seed: int) -> dict:
    """Run ``examples`` draws of one generator under hypothesis seed ``seed``; count outcomes."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from lying_graphs import lying_cases
    from property_oracle import WrongFusion, check, check_lies, check_trust
    from rope_graphs import build, feeds
    from strategies import lookalike_feeds, lookalike_graphs, rope_cases, trust_cases

    counts: Counter[str] = Counter()
    failures: list[dict] = []

    def judge(describe: str, run) -> None:
        counts["examples"] += 1
        try:
            outcome = run()
        except WrongFusion as why:
            counts["wrong_fusions"] += 1
            failures.append({"kind": "wrong fusion", "reason": str(why), "case": describe})
            return
        except Exception as error:  # a crash of the pass or of the harness: reported, never hidden
            counts["crashes"] += 1
            failures.append({"kind": type(error).__name__, "reason": str(error)[:500], "case": describe})
            return
        if kind == "lies":
            lie = outcome.lie
            counts[f"{lie}: told"] += 1
            counts[f"{lie}: fused"] += outcome.fused
            counts[f"{lie}: fused without the lie"] += outcome.clean_fused
            if outcome.ort_refused:
                counts[f"{lie}: ORT refused {outcome.ort_refused} as written (ran without the lie)"] += 1
            for reason in outcome.new_reasons:
                counts[f"{lie}: skipped: {reason}"] += 1
            counts["fused_sites"] += outcome.fused
            return
        counts["fused_sites"] += outcome.fused
        counts["skipped_candidates"] += outcome.skipped
        counts["mutants_fused_exactly"] += outcome.mutants_fused
        counts["graphs_with_fusion"] += bool(outcome.fused)

    config = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    if kind == "sites":

        @hypothesis_seed(seed)
        @config
        @given(rope_cases())
        def sweep(case) -> None:
            counts["true_sites"] += case.true_sites
            counts["mutant_sites"] += case.mutant_sites
            data = [feeds(case.spec, length=1, seed=1), feeds(case.spec, batch=2, length=4, seed=2)]
            judge(repr(case), lambda: check(build(case.spec), data, case.true_sites, case.mutant_sites))

    elif kind == "trust":

        @hypothesis_seed(seed)
        @config
        @given(trust_cases())
        def sweep(case) -> None:
            judge(
                f"Trust({case.describe}, domain={case.domain!r}, user_node={case.user_node!r})",
                lambda: check_trust(case),
            )

    elif kind == "lies":

        @hypothesis_seed(seed)
        @config
        @given(lying_cases())
        def sweep(case) -> None:
            judge(f"Lie({case.describe})", lambda: check_lies(case))

    else:

        @hypothesis_seed(seed)
        @config
        @given(lookalike_graphs())
        def sweep(case) -> None:
            text = f"Lookalike(dtype={case.dtype}, nodes={[n.op_type for n in case.model.graph.node]})"
            judge(text, lambda: check(case.model, [lookalike_feeds(case, 1)], 0, 1))

    sweep()
    return {"kind": kind, "seed": seed, "counts": dict(counts), "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples per generator")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--json", metavar="FILE", help="also write the summary and failures as JSON")
    parser.add_argument(
        "--kinds",
        default="sites,lookalikes,trust,lies",
        help="generators to run, comma-separated: sites, lookalikes, trust (hostile facts, issue 11), "
        "lies (lying value_info)",
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    shares = []
    kinds = [k for k in args.kinds.split(",") if k]
    for kind in kinds:
        for worker in range(args.workers):
            n = args.examples // args.workers + (worker < args.examples % args.workers)
            shares.append((kind, n, args.seed + worker))
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_run_share, *zip(*shares, strict=True)))
    elapsed = time.monotonic() - start
    failures = [f for r in results for f in r["failures"]]
    summary = {}
    for kind in kinds:
        total: Counter[str] = Counter()
        for r in results:
            if r["kind"] == kind:
                total.update(r["counts"])
        summary[kind] = dict(sorted(total.items()))
    print(f"property sweep: seed {args.seed}, {args.workers} worker(s), {elapsed:.0f} s")
    for kind, counts in summary.items():
        plain = {k: v for k, v in counts.items() if ": " not in k}
        print(f"  {kind}: " + ", ".join(f"{k}={v}" for k, v in plain.items()))
        for key in (k for k in counts if ": " in k):  # per kind of lie: one line each
            print(f"    {key} = {counts[key]}")
    for failure in failures:
        print(f"FAIL [{failure['kind']}] {failure['reason']}\n  {failure['case']}")
    wrong = sum(c.get("wrong_fusions", 0) for c in summary.values())
    crashes = sum(c.get("crashes", 0) for c in summary.values())
    print(f"{'PASSED' if not failures else 'FAILED'}: wrong fusions {wrong}, crashes {crashes}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"seed": args.seed, "seconds": round(elapsed), "summary": summary, "failures": failures}
            )
        )
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
