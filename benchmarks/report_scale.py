"""How ``report`` and ``export`` scale with a run's size: seconds and records per second at 10^3, 10^4, 10^5 records.

Each size is a synthetic run dir in exactly the format a run writes: the manifest through
``harness.results.write_manifest``, every record through ``harness.results.RecordWriter`` (which checks it against
its type, as a run's writer does). The mix is a large suite's: complexity records (with their per-module
breakdown) of 13 models — ResNeXt-50, SENet-50 and SKNet-50 at four widths, and timm's SK-ResNeXt-50 —, a peak
record, then per batch size one latency and one throughput group of all 13 models per round (6 rounds), the
models timed together as the timing driver writes them (``harness.tasks.timing``): most groups in 6 worker
processes (``processes``, ``process_runs``, per-process ``cycles`` and pairing tokens), some in one process, some
in the format of runs from before the process level (``cycles`` and ``pairing`` only), a few unpaired (no cycles),
and a few failed members (error records). The size grows with the number of batch sizes, so a run of 10× the
records has 10× the benchmarks.

Each command runs as a user runs it, in a fresh interpreter (``python -m harness report RUN --reports DIR`` and
``python -m harness export RUN --format csv -o FILE``); the table gives its wall seconds, records per second and
peak memory (the process's maximum RSS).

    python benchmarks/report_scale.py                                   # 10^3, 10^4, 10^5 records
    python benchmarks/report_scale.py --sizes 1000 25000 --out scale.json
    python benchmarks/report_scale.py --table scale.json --write docs/results.md    # between the markers
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.fileio import write_between_markers

ROOT = Path(__file__).resolve().parent.parent
MARKERS = ("<!-- report_scale:start -->", "<!-- report_scale:end -->")
WIDTHS = (1.0, 0.75, 0.5, 0.25)
FAMILY = {"resnext50": 1.0, "senet50": 1.06, "sknet50": 1.18}  # latency relative to ResNeXt-50
ROUNDS = 6
PROCESSES = 6
# where a group's records come from, by batch-size index modulo 20: the process level (most), one process, the
# format of runs before the process level, unpaired (before the paired engine)
LAYOUT = ["processes"] * 14 + ["one process"] * 3 + ["before processes"] * 2 + ["unpaired"]


def _models() -> list[dict[str, Any]]:
    """The suite's models: (model, label, options, canonical options, plain reference, relative cost)."""
    from harness.models.registry import canonical_options

    out = []
    for width in WIDTHS:
        opts = {} if width == 1.0 else {"width": width}
        plain = {"model": "resnext50", "canonical_options": canonical_options("resnext50", opts)}
        for name, cost in FAMILY.items():
            label = name if width == 1.0 else f"{name} w{width}"
            out.append({"model": name, "label": label, "options": opts,
                        "canonical_options": canonical_options(name, opts),
                        "plain": None if name == "resnext50" else plain, "cost": cost * (0.3 + 0.7 * width)})
    out.append({"model": "timm:skresnext50_32x4d", "label": "timm:skresnext50_32x4d", "options": {},
                "canonical_options": {}, "plain": None, "cost": 1.2})
    return out


def _fields(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("model", "label", "options", "canonical_options", "plain")}


def _complexity(m: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    from harness.paper import rows_built_by

    macs, acts = int(4.26e9 * m["cost"]), int(1.44e7 * m["cost"])
    stages = ["stem", *(f"stages.{s}" for s in range(4)), "pool", "fc"]
    modules = [["stem", 119619584, 802816]]
    for s in range(4):
        modules.append([f"stages.{s}", macs // 5, acts // 5])
        modules += [[f"stages.{s}.{b}.conv{c}", int(rng.integers(1e6, 1e8)), int(rng.integers(1e4, 1e6))]
                    for b in range(3) for c in (1, 2, 3)]
    return {"task_id": f"complexity:{m['label']}", "kind": "complexity", "status": "ok", **_fields(m),
            "device": "cpu", "batch_size": 1, "params": int(2.5e7 * m["cost"]),
            "params_trainable": int(2.5e7 * m["cost"]),
            "macs": macs, "activations": acts, "input_size": [3, 224, 224], "stages": stages, "modules": modules,
            "macs_counter": {"name": "fvcore", "version": "0.1.5", "convention": "1 multiply-add = 1 MAC"},
            "paper_rows": rows_built_by(m["model"], m["canonical_options"], [3, 224, 224]), "wall_s": 1.0}


def _load(rng: np.random.Generator, wall_s: float) -> dict[str, Any]:
    from harness.measure.load import Load

    return Load(wall_s=wall_s, other_cores=float(rng.uniform(0, 0.1)), own_cores=1.0,
                loadavg_1m=float(rng.uniform(0.5, 1.5)), involuntary_switches=int(rng.integers(0, 200)),
                cores=2).to_record()


def _group(kind: str, batch: int, rnd: int, layout: str, models: list[dict[str, Any]],
           rng: np.random.Generator) -> list[dict[str, Any]]:
    """One timing group's records: every model timed together, each sample with its process and cycle."""
    loops = kind == "throughput"
    k = PROCESSES if layout == "processes" else 1
    # cycles per process: each process times until its window is full, so the count varies a little
    low, high = ((2, 4) if loops else (8, 12)) if k > 1 else ((5, 9) if loops else (18, 24))
    cycles = [int(c) for c in rng.integers(low, high, size=k)]
    session = f"{rng.integers(1 << 48):012x}"
    runs = [{"index": p, "pairing": f"{rng.integers(1 << 48):012x}", "cycles": cycles[p], "wall_s": 3.0,
             "load": _load(rng, 3.0), "contended": False} for p in range(k)]
    # what a process and a cycle do to every model of the group alike
    shift = [np.exp(rng.normal(0, 0.02) + rng.normal(0, 0.01, c)) for c in cycles]
    out = []
    for m in models:
        task = f"{kind}:{m['label']}:bs{batch}:fp32:cpu:r{rnd}"
        record: dict[str, Any] = {"task_id": task, "kind": kind, **_fields(m), "device": "cpu", "batch_size": batch,
                                  "round": rnd, "started_utc": "2026-12-07T12:00:00Z", "wall_s": 18.0}
        if rng.random() < 0.005:
            out.append({**record, "status": "error",
                        "error": {"type": "WorkerError", "message": "the worker process was killed (signal 9)"}})
            continue
        base_ms = 60.0 * m["cost"] * (1 + 0.9 * (batch - 1)) * (1 if not loops else 8)
        samples = [float(x) for s in shift for x in base_ms * s * np.exp(rng.gamma(1.5, 0.02, s.size))]
        record.update(status="ok", samples_ms=samples, warmup_ms=[base_ms * 2, base_ms * 1.1], dtype="fp32",
                      channels_last=False, compile=None, threads=1, timer="perf_counter_ns",
                      peak_mem_bytes=int(1.5e9), iter_peak_mem_bytes=int(1.3e7 * m["cost"] * batch),
                      mem_method="torch_profiler+rss", cudnn_benchmark=True, tf32=False, input_size=[3, 224, 224],
                      group_size=len(models), load=_load(rng, 18.0),
                      window={"min_time_s": 1.0, "max_time_s": 1.7, "min_samples": 8, "rounds": ROUNDS,
                              "cycles": sum(cycles)})
        if layout != "unpaired":
            record.update(cycles=[c for n in cycles for c in range(n)], pairing=session)
        if layout in ("processes", "one process"):
            record.update(processes=[p for p, n in enumerate(cycles) for _ in range(n)], process_runs=runs,
                          processes_planned=k)
        if loops:
            iters = 3
            record.update(loop_samples_s=[x * iters / 1e3 for x in samples], images=len(samples) * iters * batch)
            record["samples_per_s"] = record["images"] / sum(record["loop_samples_s"])
        out.append(record)
    return out


def synthetic_run(root: Path, records: int, environment: dict[str, Any], *, seed: int = 0) -> Path:
    """A run dir of about ``records`` records (see the module docstring), written by the project's own writer;
    ``environment`` as ``harness.environment.capture_environment`` returns it."""
    from harness.results import RecordWriter, create_run_dir, write_manifest

    rng = np.random.default_rng(seed)
    models = _models()
    per_batch = 2 * ROUNDS * len(models)
    batches = max(1, round((records - len(models) - 1) / per_batch))
    run_dir = create_run_dir(root, "scale", f"records-{records}")
    write_manifest(run_dir, {
        "run_id": run_dir.name, "suite_name": "scale", "created_utc": "2026-12-07T12:00:00Z",
        "argv": ["run", "suites/scale.yaml"], "git": {"commit": "0" * 40, "dirty": False}, "device": "cpu",
        "environment": environment,
        "suite": {"name": "scale"}, "shard": None,
        "threads": {"threads": 1, "chosen_by": "--threads", "cores": 2, "other_cores": 0.0}})
    with RecordWriter(run_dir) as writer:
        for m in models:
            writer.write(_complexity(m, rng))
        writer.write({"task_id": "peak:fp32", "kind": "peak", "status": "ok", "device": "cpu", "dtype": "fp32",
                      "label": "peak fp32", "peak_gmacs_per_s": 100.0, "threads": 1, "wall_s": 0.7})
        for b in range(batches):
            for rnd in range(ROUNDS):
                for kind in ("latency", "throughput"):
                    for record in _group(kind, b + 1, rnd, LAYOUT[b % len(LAYOUT)], models, rng):
                        writer.write(record)
    return run_dir


# The command in a fresh interpreter; its peak memory is the high-water mark of its own address space (VmHWM;
# getrusage's ru_maxrss would also count the pages of this process it was forked from).
_MEASURE = """
import re, sys, time
from harness.cli import main
start = time.perf_counter()
code = main(sys.argv[2:])
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:
    peak_kib = re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)
with open(sys.argv[1], "w") as handle:
    handle.write(f"{code} {seconds} {peak_kib}")
"""


def measure(argv: list[str]) -> dict[str, float]:
    """``python -m harness ARGV`` in a fresh interpreter: wall seconds (imports included), seconds in the command,
    peak RSS (MiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as note:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _MEASURE, note.name, *argv], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        code, seconds, rss_kib = note.read().split()
    if int(code) != 0:
        raise SystemExit(f"harness {' '.join(argv)} exited {code}")
    return {"wall_s": wall, "command_s": float(seconds), "peak_mib": int(rss_kib) / 1024}


def run_size(workdir: Path, records: int, environment: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    run_dir = synthetic_run(workdir / "results", records, environment)
    written = time.perf_counter() - start
    count = sum(1 for _ in (run_dir / "records.jsonl").open("rb"))
    size_mb = (run_dir / "records.jsonl").stat().st_size / 1e6
    print(f"{count} records ({size_mb:.0f} MB) written in {written:.0f} s: {run_dir}", file=sys.stderr)
    report = measure(["report", str(run_dir), "--reports", str(workdir / "reports")])
    print(f"  report {report['wall_s']:.1f} s", file=sys.stderr)
    export = measure(["export", str(run_dir), "--format", "csv", "-o", str(workdir / f"{run_dir.name}.csv")])
    rows = sum(1 for _ in (workdir / f"{run_dir.name}.csv").open()) - 1
    print(f"  export {export['wall_s']:.1f} s ({rows} rows)", file=sys.stderr)
    return {"records": count, "mb": size_mb, "latency_rows": rows, "report": report, "export": export}


def table(doc: dict[str, Any]) -> str:
    # the load the machine had (1-minute load average after each size; these commands use about one core)
    load = f", load average up to {doc['loadavg_1m']:.1f}" if "loadavg_1m" in doc else ""
    lines = [f"Measured {doc['created_utc'][:10]} on {doc['machine']} ({doc['cores']} cores{load}), "
             f"git {doc['commit'][:12]}; `python benchmarks/report_scale.py`. Seconds are the command's wall time in "
             "a fresh interpreter, imports included; peak is its maximum RSS.", "",
             "| records | records.jsonl MB | latency rows | report s | report records/s | report peak MiB | "
             "export (csv) s | export records/s | export peak MiB |",
             "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for s in doc["sizes"]:
        r, e = s["report"], s["export"]
        lines.append(f"| {s['records']:,} | {s['mb']:.0f} | {s['latency_rows']:,} | {r['wall_s']:.1f} | "
                     f"{s['records'] / r['wall_s']:,.0f} | {r['peak_mib']:.0f} | {e['wall_s']:.1f} | "
                     f"{s['records'] / e['wall_s']:,.0f} | {e['peak_mib']:.0f} |")
    return "\n".join(lines) + "\n"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="records per run")
    p.add_argument("--workdir", type=Path, help="run dirs and outputs go here (default: a temporary folder)")
    p.add_argument("--out", type=Path, help="the measurements as JSON")
    p.add_argument("--table", type=Path, help="print the table of a JSON written by --out (no measuring)")
    p.add_argument("--write", type=Path, nargs="*", default=[], help="write the table between the report_scale "
                   "markers of these files")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.table:
        doc = json.loads(args.table.read_text())
    else:
        from harness.environment import capture_environment, git_state

        environment = capture_environment("cpu")
        doc = {"created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "commit": git_state(ROOT).get("commit") or "unknown",
               "machine": environment["cpu"].get("model") or platform.machine(), "cores": os.cpu_count(),
               "sizes": []}
        with tempfile.TemporaryDirectory() as tmp:
            workdir = args.workdir or Path(tmp)
            for size in args.sizes:
                doc["sizes"].append(run_size(workdir, size, environment))
                doc["loadavg_1m"] = max(doc.get("loadavg_1m", 0.0), os.getloadavg()[0])  # the busiest it was
                if args.out:
                    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    text = table(doc)
    print(text)
    for path in args.write:
        write_between_markers(path, MARKERS, text)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ConfigError as exc:  # bad input: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
