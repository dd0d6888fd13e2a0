#!/usr/bin/env python3
"""Fusing RoPE in 7B/70B-shaped LLaMA graphs: rope-onnx against the tools users know.

For each size (``--sizes 2,7b,70b``; exports made by ``models/export_scale.py`` into ``--cache``
when absent) this runs, one after the other and each in its own process under a memory cap
(``RLIMIT_AS``) and a timeout:

* ``rope-onnx``  — ``python -m rope_onnx fuse IN -o OUT --report R`` (the real CLI; sites from R);
* ``ort``        — onnxruntime's transformers optimizer, ``optimize_model(IN, model_type="gpt2",
  opt_level=0, use_gpu=False)`` + ``save_model_to_file(OUT, use_external_data_format=True)``,
  sites = com.microsoft RotaryEmbedding nodes (attention nodes with ``do_rotary=1`` count 2);
* ``onnxscript`` — ``onnx_ir.load(IN)`` (lazy weights) + ``ort_fusions.optimize_for_ort`` +
  ``onnx_ir.save(OUT)`` keeping the external references, sites counted the same way.

Wall time is the whole process (start-up and imports included: what a user waits for), peak RSS
is the child's ``ru_maxrss`` from ``wait4``.  "work s" is the same job timed inside the process,
without interpreter start-up and imports (load + fuse/optimise + save); µs/node divides it by
the graph's node count, which is what must stay flat from 2 to 80 layers.  A tool that exceeds
the cap or the timeout fails cleanly and that failure is its result.  Every output goes next to
its input (so no data file is copied or linked, and the input's data keeps one link: onnx
refuses hard-linked data) and is deleted after the run.  rope-onnx runs ``--repeat`` times
(median reported; it is cheap), the others once.  Prints a Markdown table (``--json`` writes the
raw figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("rope-onnx", "ort", "onnxscript")
ROTARY_OPS = ("RotaryEmbedding",)
ATTENTION_OPS = ("MultiHeadAttention", "GroupQueryAttention", "Attention")


# ----------------------------------------------------------------------------- child side
def _count_rotary(nodes) -> int:
    """RoPE sites a competitor fused: its RotaryEmbedding nodes, or 2 per rotary attention node."""
    count = 0
    for op_type, do_rotary in nodes:
        if op_type in ROTARY_OPS:
            count += 1
        elif op_type in ATTENTION_OPS and do_rotary:
            count += 2
    return count


def _child_ort(src: str, dst: str) -> dict:
    started = time.perf_counter()
    from onnxruntime.transformers.optimizer import optimize_model

    imported = time.perf_counter()
    optimized = optimize_model(src, model_type="gpt2", opt_level=0, use_gpu=False)  # loads every weight
    fused = time.perf_counter()
    sites = _count_rotary(
        (n.op_type, any(a.name == "do_rotary" and a.i for a in n.attribute))
        for n in optimized.model.graph.node
    )
    optimized.save_model_to_file(dst, use_external_data_format=True, all_tensors_to_one_file=True)
    return {
        "sites": sites,
        "import_s": imported - started,
        "optimize_s": fused - imported,
        "save_s": time.perf_counter() - fused,
    }


def _child_onnxscript(src: str, dst: str) -> dict:
    started = time.perf_counter()
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    imported = time.perf_counter()
    model = ir.load(src)
    loaded = time.perf_counter()
    model, counts = optimize_for_ort(model)
    fused = time.perf_counter()

    def do_rotary(node) -> bool:
        attr = node.attributes.get("do_rotary")
        return bool(attr is not None and attr.value)

    sites = _count_rotary((n.op_type, do_rotary(n)) for n in model.graph.all_nodes())
    ir.save(model, dst)  # external tensors keep their references (same folder: same data file)
    return {
        "sites": sites,
        "counts": {k: v for k, v in counts.items() if v},
        "import_s": imported - started,
        "load_s": loaded - imported,
        "optimize_s": fused - loaded,
        "save_s": time.perf_counter() - fused,
    }


def rope_onnx_steps(src: str, dst: str) -> dict:
    """``rope_onnx.fusion.pipeline.fuse_file``, the CLI's own path (the collector paused for the whole
    command, the loader's names handed to the index), timed after the imports as one step: wall
    (``optimize_s``, load and save included, as the ort child counts them) and CPU (``work_cpu_s``:
    what bench/scale_all.py divides by nodes).  Timing load_model + fuse_model instead measured
    another path, the collector running during the load and the names read twice: 0.68 against 0.58
    CPU s at 70B, 3.8 against 2.5 on the 200k chain (min of 5 processes each, 2026-12-03)."""
    started = time.perf_counter()
    from rope_onnx.fusion.pipeline import fuse_file

    imported, cpu = time.perf_counter(), time.process_time()
    result = fuse_file(src, dst)
    return {
        "sites": result.fused,
        "import_s": imported - started,
        "optimize_s": time.perf_counter() - imported,
        "work_cpu_s": time.process_time() - cpu,
    }


def work_wall(result: dict) -> float:
    """Wall seconds of the steps after the imports (load, optimise, save; the CPU figure apart)."""
    return sum(v for k, v in result.items() if k in ("load_s", "optimize_s", "save_s"))


def child(tool: str, src: str, dst: str) -> int:
    import warnings

    warnings.simplefilter("ignore")
    run = {"rope-onnx": rope_onnx_steps, "ort": _child_ort, "onnxscript": _child_onnxscript}[tool]
    result = run(src, dst)
    result["work_s"] = work_wall(result)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# ----------------------------------------------------------------------------- parent side
def _limit(cap_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
        os.setsid()  # its own process group: a timeout kills it and everything it started

    return apply


def run_capped(cmd: list[str], cap_bytes: int, timeout: float, env: dict | None = None) -> dict:
    """Run ``cmd`` under the memory cap; wall time, peak RSS (MiB), exit status, output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, preexec_fn=_limit(cap_bytes), env=env, cwd=ROOT)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,  # less noisy than wall on a shared machine
            "rss_mib": usage.ru_maxrss / 1024,
            "code": proc.returncode,
            "timed_out": timed_out,
            "stdout": out.read(),
            "stderr": err.read(),
        }


def _failure(run: dict, timeout: float, cap_gib: float) -> str:
    if run["timed_out"]:
        return f"timeout after {timeout:.0f} s"
    text = run["stderr"]
    if "MemoryError" in text or "bad_alloc" in text or "Cannot allocate memory" in text:
        return f"out of memory at the {cap_gib:g} GiB cap"
    if run["code"] < 0:
        name = signal.Signals(-run["code"]).name
        if run["rss_mib"] >= 0.9 * cap_gib * 1024:  # native code dies, not raises, when malloc fails
            return f"out of memory at the {cap_gib:g} GiB cap ({name})"
        return f"killed by {name}"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return f"exit {run['code']}: {lines[-1][:120] if lines else 'no message'}"


def ensure_export(size: str, cache: Path, cap_bytes: int, timeout: float) -> dict:
    folder = cache / f"llama_{size}"
    info = folder / "export.json"
    if info.is_file() and (folder / "model.onnx").is_file():
        return json.loads(info.read_text())
    print(f"[export] {size}: exporting into {folder} (first run only) ...", file=sys.stderr, flush=True)
    run = run_capped(
        [sys.executable, str(ROOT / "models" / "export_scale.py"), "--size", size, "--out", str(folder)],
        cap_bytes,
        timeout,
    )
    if run["code"] != 0:
        raise SystemExit(f"export of {size} failed: {_failure(run, timeout, cap_bytes / 2**30)}")
    exported = json.loads(info.read_text())
    print(
        f"[export] {size}: {exported['nodes']} nodes, {exported['data_bytes'] / 2**30:.1f} GiB of data, "
        f"{run['wall_s']:.0f} s, peak RSS {run['rss_mib'] / 1024:.1f} GiB",
        file=sys.stderr,
        flush=True,
    )
    return exported


def _tool_command(tool: str, src: Path, dst: Path, report: Path) -> list[str]:
    if tool == "rope-onnx":
        return [sys.executable, "-m", "rope_onnx", "fuse", str(src), "-o", str(dst), "--report", str(report)]
    return [sys.executable, str(Path(__file__).resolve()), "--child", tool, str(src), str(dst)]


def _clean(folder: Path, stem: str) -> None:
    for path in folder.glob(f"{stem}*"):
        path.unlink(missing_ok=True)


def bench_tool(tool: str, model: Path, cap_bytes: int, timeout: float, repeat: int) -> dict:
    stem = f"bench_{tool.replace('-', '_')}"
    dst, report = model.parent / f"{stem}.onnx", model.parent / f"{stem}.report.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = []
    for _ in range(repeat if tool == "rope-onnx" else 1):
        _clean(model.parent, stem)
        run = run_capped(_tool_command(tool, model, dst, report), cap_bytes, timeout, env)
        if run["code"] != 0:
            _clean(model.parent, stem)
            return {"tool": tool, "ok": False, "status": _failure(run, timeout, cap_bytes / 2**30), **run}
        if tool == "rope-onnx":
            run["sites"] = json.loads(report.read_text())["fused"]
        else:
            line = next(x for x in run["stdout"].splitlines() if x.startswith("RESULT "))
            run.update(json.loads(line[len("RESULT ") :]))
        runs.append(run)
        _clean(model.parent, stem)
    if tool == "rope-onnx":  # the same steps in one timed process: where the time goes
        run = run_capped(
            [sys.executable, str(Path(__file__).resolve()), "--child", tool, str(model), str(dst)],
            cap_bytes,
            timeout,
            env,
        )
        _clean(model.parent, stem)
        line = next((x for x in run["stdout"].splitlines() if x.startswith("RESULT ")), None)
        phases = json.loads(line[len("RESULT ") :]) if line else {}
        for r in runs:
            r.update({k: v for k, v in phases.items() if k != "sites"})
    best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]  # the median run
    best = {**best, "wall_s": statistics.median(r["wall_s"] for r in runs), "runs": len(runs)}
    best["rss_mib"] = max(r["rss_mib"] for r in runs)
    return {"tool": tool, "ok": True, "status": "ok", **best}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for module in ("onnx", "onnxruntime", "onnxscript", "onnx_ir"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} absent")
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, Python {platform.python_version()}, "
        + ", ".join(versions)
    )


def table(rows: list[dict]) -> str:
    head = (
        "| model | nodes | tool | result | RoPE sites fused | wall s | × rope-onnx | peak RSS MiB "
        "| work s | µs/node |\n"
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for row in rows:
        base = row["baseline_s"]
        ratio = f"{row['wall_s'] / base:.1f}×" if row["ok"] and base else ("-" if row["ok"] else "n/a")
        sites = f"{row['sites']}/{row['expected']}" if row["ok"] else f"-/{row['expected']}"
        work = f"{row['work_s']:.2f}" if "work_s" in row else "-"
        per_node = f"{row['work_s'] / row['nodes'] * 1e6:.0f}" if "work_s" in row else "-"
        lines.append(
            f"| {row['size']} | {row['nodes']} | {row['tool']} | {row['status']} | {sites} | "
            f"{row['wall_s']:.2f} | {ratio} | {row['rss_mib']:.0f} | {work} | {per_node} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,7b,70b", help="comma-separated: 2, 7b, 70b")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS)
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "out", help="where exports are kept")
    parser.add_argument("--mem-cap-gb", type=float, default=16.0, help="RLIMIT_AS of every child (GiB)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per tool run")
    parser.add_argument("--export-timeout", type=float, default=3600.0)
    parser.add_argument("--repeat", type=int, default=3, help="rope-onnx runs per size (median)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    cap = int(args.mem_cap_gb * 2**30)
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tool(s) {sorted(unknown)}; choose from {', '.join(TOOLS)}")
    rows = []
    for size in [s for s in args.sizes.split(",") if s]:
        info = ensure_export(size, args.cache, cap, args.export_timeout)
        model = args.cache / f"llama_{size}" / "model.onnx"
        baseline = None
        for tool in tools:
            print(f"[bench] {size}: {tool} ...", file=sys.stderr, flush=True)
            result = bench_tool(tool, model, cap, args.timeout, args.repeat)
            if tool == "rope-onnx" and result["ok"]:
                baseline = result["wall_s"]
            print(
                f"[bench] {size}: {tool}: {result['status']}, {result['wall_s']:.2f} s, "
                f"{result['rss_mib']:.0f} MiB, sites {result.get('sites', '-')}",
                file=sys.stderr,
                flush=True,
            )
            rows.append(
                {
                    "size": size,
                    "nodes": info["nodes"],
                    "expected": info["expected_sites"],
                    "data_gib": info["data_bytes"] / 2**30,
                    **{k: v for k, v in result.items() if k not in ("stdout", "stderr")},
                }
            )
        for row in rows:
            if row["size"] == size:
                row["baseline_s"] = baseline
    print(f"Machine: {machine()}; memory cap {args.mem_cap_gb:g} GiB per tool, timeout {args.timeout:.0f} s.")
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
