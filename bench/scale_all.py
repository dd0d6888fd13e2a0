#!/usr/bin/env python3
"""One run, side by side: the chain family, the 2/7B/70B exports, the floor, and the peers.

Models: synthetic chains of head-sized Add/Neg nodes (``--chains``) and chains whose every candidate
has a product in reach (``--mul-chains``, ``bench/chain.py --variant mul``), made into
``--cache/chain``, and the LLaMA exports (``--sizes``, made by ``models/export_scale.py``; its deep
family ``200layers,400layers,800layers`` stacks a narrow 70B-shaped layer up to 1,600 sites, and
``70b-onnxsim``, ``70b-onnxslim`` are the 70B-shaped export post-processed, every tensor declared).
Tools, each in its own process under a memory cap (``RLIMIT_AS``) and a timeout, as
``bench/fuse_scale.py`` runs them:

* ``floor``      — ``bench/floor.py``: ``onnx.load`` (graph only) + ``onnx.save``, imports included;
  the least any graph-editing tool does, and the baseline of the ``× floor`` columns;
* ``rope-onnx``  — the CLI, ``python -m rope_onnx fuse IN -o OUT --report R``;
* ``onnxscript`` / ``ort`` — the peers, exactly as in ``bench/fuse_scale.py``.

``floor`` and ``rope-onnx`` run under ``--python`` (default: this interpreter), ``--repeat`` times
each, in turn (median of wall and CPU; their ratio is the median of the pair-by-pair ratios), the
peers once.  The package is byte-compiled first, as an install leaves it.
CPU s is the child's user + system time (``wait4``): on a shared machine it is the steadier figure.
µs/node is the in-process CPU work (load + fuse + save, no start-up or imports) per node; it is what
must stay flat from 1k to 200k chain nodes, from 2 to 80 layers and from 200 to 800 layers.  Prints
three Markdown tables: every run, rope-onnx's marginal µs/node between consecutive sizes of each
family (start-up cancels), and the spread of the pair-by-pair ratios to the floor.

The floor is mostly start-up: ``import onnx`` is a fixed cost both pay, and it depends on the
environment (onnx imports ``ml_dtypes``, whose 0.7 release takes ~0.5 s more to import than 0.5.4
and 0.6).  The header names the interpreter, its ``ml_dtypes`` and the CPU its ``import onnx`` costs;
``--python`` runs the floor and rope-onnx in another environment (one with ``onnx`` and ``numpy``:
rope-onnx comes from this checkout), so the ratio can be read where that import is cheap too.
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chain
import fuse_scale

ROOT = fuse_scale.ROOT
TOOLS = ("floor", "rope-onnx", "onnxscript", "ort")


def _child_floor(src: str, dst: str) -> dict:
    started = time.perf_counter()
    import onnx

    imported, cpu = time.perf_counter(), time.process_time()
    model = onnx.load(src, load_external_data=False)
    loaded = time.perf_counter()
    onnx.save(model, dst)
    return {
        "sites": 0,
        "import_s": imported - started,
        "load_s": loaded - imported,
        "save_s": time.perf_counter() - loaded,
        "work_cpu_s": time.process_time() - cpu,
    }


def child(tool: str, src: str, dst: str) -> int:
    if tool not in ("floor", "rope-onnx"):
        return fuse_scale.child(tool, src, dst)
    result = (_child_floor if tool == "floor" else fuse_scale.rope_onnx_steps)(src, dst)
    result["work_s"] = fuse_scale.work_wall(result)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _python(tool: str, python: str) -> str:
    """``python`` (``--python``) runs the floor and rope-onnx; the peers run under this interpreter."""
    return python if tool in ("floor", "rope-onnx") else sys.executable


def _command(tool: str, src: Path, dst: Path, report: Path, python: str) -> list[str]:
    if tool == "rope-onnx":
        return [python, "-m", "rope_onnx", "fuse", str(src), "-o", str(dst), "--report", str(report)]
    if tool == "floor":
        return [python, str(ROOT / "bench" / "floor.py"), str(src), str(dst)]
    return [sys.executable, str(Path(__file__).resolve()), "--child", tool, str(src), str(dst)]


def import_cost(python: str, repeat: int = 3) -> tuple[str, float]:
    """``python``'s ml_dtypes version and the CPU of its ``import onnx`` (min of ``repeat`` fresh
    processes): the fixed cost inside every floor and rope-onnx figure."""
    probe = (
        "import time; t = time.process_time(); import onnx, ml_dtypes; "
        "print(ml_dtypes.__version__, time.process_time() - t)"
    )
    runs = [
        subprocess.run([python, "-P", "-c", probe], capture_output=True, text=True, check=True).stdout.split()
        for _ in range(repeat)
    ]
    return runs[0][0], min(float(cpu) for _, cpu in runs)


def _phases(tool: str, model: Path, dst: Path, cap: int, timeout: float, env: dict, python: str) -> dict:
    """The same job in one process that times its own steps (for work s and µs/node)."""
    run = fuse_scale.run_capped(
        [_python(tool, python), str(Path(__file__).resolve()), "--child", tool, str(model), str(dst)],
        cap,
        timeout,
        env,
    )
    line = next((x for x in run["stdout"].splitlines() if x.startswith("RESULT ")), None)
    return json.loads(line[len("RESULT ") :]) if line else {}


def _one_run(tool: str, model: Path, cap: int, timeout: float, env: dict, python: str) -> dict:
    """One timed process of ``tool`` on ``model`` (its outputs removed again)."""
    stem = f"scale_{tool.replace('-', '_')}"
    dst, report = model.parent / f"{stem}.onnx", model.parent / f"{stem}.report.json"
    fuse_scale._clean(model.parent, stem)
    run = fuse_scale.run_capped(_command(tool, model, dst, report, python), cap, timeout, env)
    if run["code"] == 0:
        if tool == "rope-onnx":
            run["sites"] = json.loads(report.read_text())["fused"]
        elif tool != "floor":
            line = next(x for x in run["stdout"].splitlines() if x.startswith("RESULT "))
            run.update(json.loads(line[len("RESULT ") :]))
    fuse_scale._clean(model.parent, stem)
    return run


def bench(
    tools: list[str],
    model: Path,
    cap: int,
    timeout: float,
    repeat: int,
    label: str = "",
    python: str = sys.executable,
) -> dict[str, dict]:
    """Every tool on ``model``; floor and rope-onnx ``repeat`` times each, *in turn* (floor, rope-onnx,
    floor, …), so a drift of the machine's speed hits both alike: their ratio is the median of the
    ratios pair by pair (``pair_cpu``/``pair_wall``), the figure the 1.5× target is read from; every
    pair's ratios and added CPU are kept too (``pairs``), for the spread (:func:`spread`)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs: dict[str, list[dict]] = {t: [] for t in tools}
    failed: dict[str, dict] = {}
    for i in range(repeat):
        for tool in tools:
            if tool in failed or (i and tool not in ("floor", "rope-onnx")):
                continue
            print(f"[bench] {label or model.name}: {tool} ({i + 1}) ...", file=sys.stderr, flush=True)
            run = _one_run(tool, model, cap, timeout, env, python)
            if run["code"] != 0:
                failed[tool] = {"ok": False, "status": fuse_scale._failure(run, timeout, cap / 2**30), **run}
            else:
                runs[tool].append(run)
    results = {}
    for tool in tools:
        if tool in failed:
            results[tool] = {"tool": tool, **failed[tool]}
            continue
        done = runs[tool]
        phases = _phases(tool, model, model.parent / "scale_phases.onnx", cap, timeout, env, python)
        fuse_scale._clean(model.parent, "scale_phases")
        best = {k: v for k, v in done[len(done) // 2].items() if k not in ("stdout", "stderr")}
        best.update({k: v for k, v in phases.items() if k != "sites"})
        best["wall_s"] = statistics.median(r["wall_s"] for r in done)
        best["cpu_s"] = statistics.median(r["cpu_s"] for r in done)
        best["rss_mib"] = max(r["rss_mib"] for r in done)
        results[tool] = {"tool": tool, "ok": True, "status": "ok", "runs": len(done), **best}
    if "floor" in tools and "rope-onnx" in tools and not failed.keys() & {"floor", "rope-onnx"}:
        pairs = list(zip(runs["rope-onnx"], runs["floor"], strict=True))
        for key in ("cpu", "wall"):
            ratio = statistics.median(a[f"{key}_s"] / b[f"{key}_s"] for a, b in pairs)
            results["rope-onnx"][f"pair_{key}"] = ratio
        results["rope-onnx"]["pairs"] = [
            {
                "cpu": a["cpu_s"] / b["cpu_s"],
                "wall": a["wall_s"] / b["wall_s"],
                "added_cpu_s": a["cpu_s"] - b["cpu_s"],
            }
            for a, b in pairs
        ]
    return results


def models(args: argparse.Namespace, cap: int) -> list[tuple[str, Path, int, int]]:
    """(label, path, nodes, expected sites) of every model of this run, chains first."""
    found = []
    for variant, label, sizes in (("input", "chain", args.chains), ("mul", "mul chain", args.mul_chains)):
        for n in [int(c) for c in sizes.split(",") if c]:
            stem = "chain" if variant == "input" else f"chain{variant}"
            path = args.cache / "chain" / f"{stem}_{n}.onnx"
            if not path.is_file():
                chain.write_chain(n, path, variant=variant)
            found.append((f"{label} {n // 1000}k", path, n + (variant == "mul"), 0))
    for size in [s for s in args.sizes.split(",") if s]:
        info = fuse_scale.ensure_export(size, args.cache, cap, args.export_timeout)
        found.append(
            (size, args.cache / f"llama_{size}" / "model.onnx", info["nodes"], info["expected_sites"])
        )
    return found


def table(rows: list[dict]) -> str:
    lines = [
        "| model | nodes | tool | result | sites | wall s | CPU s | × floor wall | × floor CPU "
        "| peak RSS MiB | work s | work CPU s | µs/node |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        floor = r.get("floor")
        ok = r["ok"]
        # rope-onnx: the median of the pair-by-pair ratios; the peers (one run): against the floor's median
        ratio_wall = f"{r.get('pair_wall', r['wall_s'] / floor['wall_s']):.2f}×" if ok and floor else "-"
        ratio_cpu = f"{r.get('pair_cpu', r['cpu_s'] / floor['cpu_s']):.2f}×" if ok and floor else "-"
        sites = (
            "-" if r["tool"] == "floor" else (f"{r['sites']}/{r['expected']}" if ok else f"-/{r['expected']}")
        )
        work = f"{r['work_s']:.2f}" if ok and "work_s" in r else "-"
        work_cpu = f"{r['work_cpu_s']:.2f}" if ok and "work_cpu_s" in r else "-"
        per_node = f"{_per_node(r):.1f}" if ok and _per_node(r) is not None else "-"
        lines.append(
            f"| {r['model']} | {r['nodes']} | {r['tool']} | {r['status']} | {sites} | {r['wall_s']:.2f} | "
            f"{r['cpu_s']:.2f} | {ratio_wall} | {ratio_cpu} | {r['rss_mib']:.0f} | {work} | {work_cpu} "
            f"| {per_node} |"
        )
    return "\n".join(lines)


def _per_node(row: dict) -> float | None:
    """µs of in-process work per node: CPU where the child measured it, else wall."""
    work = row.get("work_cpu_s", row.get("work_s"))
    return None if work is None else work / row["nodes"] * 1e6


def marginal(rows: list[dict]) -> str:
    """rope-onnx's cost per node between consecutive sizes of one family: flat means linear.

    The difference of two runs cancels start-up, imports and fixed costs, which dominate the
    small sizes' µs/node; what is left is what one more node costs.
    """
    lines = [
        "| family | from → to | Δ nodes | Δ work CPU s | marginal µs/node (work CPU) "
        "| marginal µs/node (process CPU) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    families: dict[str, list[dict]] = {}
    for r in rows:
        if r["tool"] == "rope-onnx" and r["ok"]:
            families.setdefault(family(r["model"]), []).append(r)
    for name, members in families.items():
        members.sort(key=lambda r: r["nodes"])
        for a, b in itertools.pairwise(members):
            nodes = b["nodes"] - a["nodes"]
            if nodes <= 0:
                continue
            work = b.get("work_cpu_s", 0.0) - a.get("work_cpu_s", 0.0)
            lines.append(
                f"| {name} | {a['model']} → {b['model']} | {nodes} | {work:.2f} | {work / nodes * 1e6:.1f} "
                f"| {(b['cpu_s'] - a['cpu_s']) / nodes * 1e6:.1f} |"
            )
    return "\n".join(lines)


def family(label: str) -> str:
    """The family a model's row belongs to: ``chain``, ``mul chain``, ``deep exports`` (the narrow layer
    stacked hundreds deep, ``export_scale.py --size 800layers``), ``LLaMA exports`` (2, 7b, 70b) or
    ``LLaMA exports, <tool>`` (``70b-onnxslim``: the export post-processed)."""
    if "chain" in label:
        return label.rsplit(" ", 1)[0]
    if label.endswith("layers"):
        return "deep exports"
    tool = label.partition("-")[2]
    return f"LLaMA exports, {tool}" if tool else "LLaMA exports"


def spread(rows: list[dict], bound: float) -> str:
    """rope-onnx against the floor pair by pair: the spread behind each median, and the bound checked
    on every pair of the exports — one median under the bound says little where the machine's speed
    moves by a quarter.  The chains are bounded by time and memory (bench/README.md), the deep exports
    by their cost per node; only the LLaMA exports (post-processed or not) by the floor."""
    lines = [
        f"| model | pairs | × floor CPU min / median / max | × floor wall min / median / max "
        f"| added CPU s min / median / max | every pair ≤ {bound:g}× (CPU and wall) |",
        "|---|---:|---|---|---|---|",
    ]
    for r in rows:
        pairs = r.get("pairs") if r["tool"] == "rope-onnx" and r["ok"] else None
        if not pairs:
            continue
        figures = []
        for key, unit in (("cpu", "×"), ("wall", "×"), ("added_cpu_s", "")):
            values = sorted(p[key] for p in pairs)
            figures.append(
                " / ".join(f"{v:.2f}{unit}" for v in (values[0], statistics.median(values), values[-1]))
            )
        worst = max(max(p["cpu"], p["wall"]) for p in pairs)
        if not family(r["model"]).startswith("LLaMA exports"):  # issue 17 bounds the exports by the floor
            verdict = "-"
        else:
            verdict = "PASSED" if worst <= bound else f"FAILED (worst pair {worst:.2f}×)"
        lines.append(f"| {r['model']} | {len(pairs)} | {' | '.join(figures)} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", default="1000,10000,100000,200000", help="Add/Neg chain node counts")
    parser.add_argument(
        "--mul-chains", default="1000,10000", help="node counts of chains with a product in every cone"
    )
    parser.add_argument(
        "--sizes",
        default="2,7b,70b",
        help="LLaMA exports: 2, 7b, 70b; post-processed 70b-onnxsim, 70b-onnxslim; deep 200layers…800layers",
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help="subset of " + ",".join(TOOLS))
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--mem-cap-gb", type=float, default=16.0, help="RLIMIT_AS of every child (GiB)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per tool run")
    parser.add_argument("--export-timeout", type=float, default=3600.0)
    parser.add_argument("--repeat", type=int, default=3, help="floor and rope-onnx runs (median)")
    parser.add_argument(
        "--peer-max-nodes",
        type=int,
        default=0,
        help="run the peers only on models up to this many nodes (0: all)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for the floor and rope-onnx (needs onnx and numpy; default: this one)",
    )
    parser.add_argument(
        "--bound",
        type=float,
        default=1.5,
        help="the × floor target every pair is checked against",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    cap = int(args.mem_cap_gb * 2**30)
    ml_dtypes, import_cpu = import_cost(args.python)
    # Byte-compiled first, as ``pip install`` leaves a package (onnx's modules are): an editable
    # checkout under PYTHONDONTWRITEBYTECODE would otherwise compile ~110 modules in every run.
    compileall.compile_dir(str(ROOT / "rope_onnx"), quiet=1)
    tools = [t for t in args.tools.split(",") if t]
    if set(tools) - set(TOOLS):
        parser.error(f"unknown tool(s) {sorted(set(tools) - set(TOOLS))}; choose from {', '.join(TOOLS)}")
    rows = []
    for label, path, nodes, expected in models(args, cap):
        here = [t for t in tools if t in ("floor", "rope-onnx") or not 0 < args.peer_max_nodes < nodes]
        results = bench(here, path, cap, args.timeout, args.repeat, label, args.python)
        floor = results.get("floor")
        ok_floor = floor is not None and floor["ok"]
        floor_figures = {"wall_s": floor["wall_s"], "cpu_s": floor["cpu_s"]} if floor and ok_floor else None
        for tool, result in results.items():
            print(
                f"[bench] {label}: {tool}: {result['status']}, {result['wall_s']:.2f} s wall, "
                f"{result['cpu_s']:.2f} s CPU, {result['rss_mib']:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
            row = {"model": label, "nodes": nodes, "expected": expected, **result}
            row["floor"] = floor_figures
            rows.append(row)
    print(
        f"Machine: {fuse_scale.machine()}; memory cap {args.mem_cap_gb:g} GiB per tool, "
        f"timeout {args.timeout:.0f} s, load average {os.getloadavg()[0]:.1f} at the end."
    )
    print(
        f"Floor and rope-onnx under {args.python}: ml_dtypes {ml_dtypes}, "
        f"`import onnx` {import_cpu:.2f} CPU s (in both figures)."
    )
    print()
    print(table(rows))
    print()
    print(marginal(rows))
    print()
    print(spread(rows, args.bound))
    if args.json:
        figures = {"machine": fuse_scale.machine(), "python": args.python, "ml_dtypes": ml_dtypes}
        figures["import_onnx_cpu_s"] = import_cpu
        args.json.write_text(json.dumps({**figures, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
