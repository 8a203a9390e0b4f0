"""Error rates of the latency gate on this machine: false alarms on A/A runs, detection of a real slowdown.

The script runs a small suite — ``gate_convnet`` from ``benchmarks/gate_plugin.py`` plus the fixed
reference workload, interleaved in 12 rounds, one intra-op thread as the CI workflow sets — as separate
``python -m harness run`` processes, as CI would:

* ``--aa-runs`` runs (default 21) of the unchanged model (cost factor 1.0);
* ``--slow-runs`` runs (default 20) with the model's compute scaled by ``--slowdown`` (default 1.2: 12
  instead of 10 equal conv layers, a real 1.2× change of the body's multiply-adds, not a sleep).

The two kinds alternate (A0 S0 S1 A1 A2 S2 …), so a change of the machine's load over the script's minutes
hits both alike. Then, with :func:`harness.gate.verdict.compare` at its defaults (and at any ``--threshold`` /
``--alpha`` given):

* false-alarm rate = fraction of consecutive A/A pairs (A_i baseline, A_{i+1} candidate) flagged
  ``regression``;
* detection rate = fraction of pairs (A_i baseline, S_i candidate) flagged ``regression``.

For contrast the same pairs are also judged on raw latencies (reference samples dropped) and on medians instead
of the gate's low quantile.

    python benchmarks/gate_error_rates.py --out gate_error_rates.json
    python benchmarks/gate_error_rates.py --aa-runs 5 --slow-runs 4 --out /tmp/pilot.json   # quick pilot

Not collected by pytest (no ``test_`` prefix); it takes about 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from harness.gate import verdict as gate_statistic
from harness.gate.sets import BenchmarkSet, load_benchmarks
from harness.gate.verdict import CheckReport, Verdict, compare

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "gate_plugin.py"
COST_ENV = "HARNESS_GATE_PLUGIN_COST"


@dataclass(frozen=True)
class RunInfo:
    kind: str  # "aa" | "slow"
    index: int
    cost: float
    run_dir: str
    wall_s: float


@dataclass(frozen=True)
class PairResult:
    baseline: str
    candidate: str
    verdict: str
    normalised_ratio: float | None
    raw_ratio: float | None
    p_value: float | None
    ci_low: float | None
    threshold_pct: float
    n_baseline: int
    n_candidate: int


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON summary to write")
    p.add_argument("--aa-runs", type=int, default=21, help="unchanged runs (>= 2; pairs = runs - 1)")
    p.add_argument("--slow-runs", type=int, default=20, help="runs with the slowdown (<= --aa-runs)")
    p.add_argument("--slowdown", type=float, default=1.2, help="cost factor of the slow runs (default 1.2)")
    p.add_argument("--rounds", type=int, default=12, help="interleaved rounds per run")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--min-time", type=float, default=4.0, help="min_time_s per benchmark (all rounds)")
    p.add_argument("--max-time", type=float, default=8.0, help="max_time_s per benchmark (all rounds)")
    p.add_argument("--min-samples", type=int, default=60)
    p.add_argument("--threads", type=int, default=1,
                   help="OMP_NUM_THREADS for the runs, as the CI workflow sets (default 1; 0: torch's own choice)")
    p.add_argument("--threshold", type=float, help="also judge with this threshold, percent")
    p.add_argument("--alpha", type=float, help="also judge with this alpha")
    p.add_argument("--workdir", help="where run dirs go (default: a temporary directory, kept)")
    args = p.parse_args(argv)
    if args.aa_runs < 2 or not 0 <= args.slow_runs <= args.aa_runs:
        p.error("need --aa-runs >= 2 and 0 <= --slow-runs <= --aa-runs")
    return args


def _write_suite(workdir: Path, args: argparse.Namespace) -> Path:
    suite = {
        "schema": 1,
        "name": "gate_error_rates",
        "description": "gate_convnet + reference, interleaved rounds (benchmarks/gate_error_rates.py)",
        "imports": [str(PLUGIN)],
        "device": "cpu",
        "models": [{"name": "gate_convnet", "label": "gate_convnet"}],
        "latency": {
            "batch_sizes": [1],
            "warmup": args.warmup,
            "min_time_s": args.min_time,
            "max_time_s": args.max_time,
            "min_samples": args.min_samples,
            "rounds": args.rounds,
            "reference": True,
        },
    }
    path = workdir / "gate_error_rates.yaml"
    path.write_text(json.dumps(suite, indent=2))
    return path


def _run_once(suite: Path, workdir: Path, *, cost: float, threads: int | None) -> tuple[str, float]:
    env = dict(os.environ, **{COST_ENV: repr(cost)})
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "harness", "run", str(suite), "--out", str(workdir / "results"),
           "--reports", str(workdir / "reports"), "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return proc.stdout.splitlines()[0], time.perf_counter() - start


def _schedule(n_aa: int, n_slow: int) -> list[tuple[str, int]]:
    """A0 S0 S1 A1 A2 S2 …: alternate which kind goes first so neither sits in a systematically busier slot."""
    order: list[tuple[str, int]] = []
    for i in range(n_aa):
        pair = [("aa", i)] + ([("slow", i)] if i < n_slow else [])
        order += pair if i % 2 == 0 else pair[::-1]
    return order


def _raw_only(bset: BenchmarkSet) -> BenchmarkSet:
    benchmarks = {k: replace(v, reference_rounds=()) for k, v in bset.benchmarks.items()}
    return replace(bset, benchmarks=benchmarks)


def _pair(report: CheckReport, base: str, cand: str) -> PairResult:
    (row,) = report.rows  # one benchmark per run
    return PairResult(base, cand, row.verdict.value, row.normalised_ratio, row.raw_ratio, row.p_value, row.ci_low,
                      row.threshold_pct, row.n_baseline, row.n_candidate)


def _judge(aa: list[BenchmarkSet], slow: list[BenchmarkSet], variant: str, args: argparse.Namespace,
           **settings: Any) -> dict[str, Any]:
    """False alarms over (A_i, A_i+1) and detections over (A_i, S_i) for one way of judging."""
    if variant == "median":  # the same gate on medians instead of its low quantile, for contrast
        saved, gate_statistic.GATE_QUANTILE = gate_statistic.GATE_QUANTILE, 0.5
        try:
            return dict(_judge(aa, slow, "default", args, **settings), variant="median")
        finally:
            gate_statistic.GATE_QUANTILE = saved
    def prep(bset: BenchmarkSet) -> BenchmarkSet:
        return _raw_only(bset) if variant == "raw" else bset

    false_alarms = [
        _pair(compare(prep(aa[i]), prep(aa[i + 1]), **settings), aa[i].source, aa[i + 1].source)
        for i in range(len(aa) - 1)
    ]
    detections = [
        _pair(compare(prep(aa[i]), prep(slow[i]), **settings), aa[i].source, slow[i].source)
        for i in range(len(slow))
    ]
    n_fa = sum(p.verdict == Verdict.REGRESSION.value for p in false_alarms)
    n_det = sum(p.verdict == Verdict.REGRESSION.value for p in detections)
    return {
        "variant": variant,
        "settings": settings,
        "false_alarms": n_fa,
        "aa_pairs": len(false_alarms),
        "false_alarm_rate": n_fa / len(false_alarms),
        "detections": n_det,
        "slow_pairs": len(detections),
        "detection_rate": n_det / len(detections) if detections else None,
        "aa": [asdict(p) for p in false_alarms],
        "slow": [asdict(p) for p in detections],
    }


def _ratio_of(p: dict[str, Any]) -> float:
    return p["normalised_ratio"] if p["normalised_ratio"] is not None else p["raw_ratio"]


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _compare_defaults() -> str:
    params = inspect.signature(compare).parameters
    return f"defaults: threshold_pct={params['threshold_pct'].default}, alpha={params['alpha'].default}"


def _print_variant(res: dict[str, Any], args: argparse.Namespace) -> None:
    settings = ", ".join(f"{k}={v}" for k, v in res["settings"].items()) or _compare_defaults()
    aa_ratios = sorted(_ratio_of(p) for p in res["aa"])
    what = {"default": "normalised 5th percentiles (the gate as shipped)",
            "raw": "raw 5th percentiles, reference samples dropped",
            "median": "normalised medians instead of 5th percentiles",
            "custom": "normalised 5th percentiles"}
    print(f"[{res['variant']}: {what[res['variant']]}; {settings}]")
    print(f"  false alarms: {res['false_alarms']}/{res['aa_pairs']} A/A pairs = {res['false_alarm_rate']:.1%}"
          f"   (A/A ratios {aa_ratios[0]:.3f} … {aa_ratios[-1]:.3f})")
    if res["slow_pairs"]:
        slow_ratios = sorted(_ratio_of(p) for p in res["slow"])
        print(f"  detection:    {res['detections']}/{res['slow_pairs']} slow pairs = {res['detection_rate']:.1%}"
              f"   (slow ratios {slow_ratios[0]:.3f} … {slow_ratios[-1]:.3f})")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gate_error_rates_"))
    workdir.mkdir(parents=True, exist_ok=True)
    suite = _write_suite(workdir, args)
    machine_before = _machine()
    runs: list[RunInfo] = []
    start = time.perf_counter()
    schedule = _schedule(args.aa_runs, args.slow_runs)
    for n, (kind, i) in enumerate(schedule, 1):
        cost = 1.0 if kind == "aa" else args.slowdown
        run_dir, wall = _run_once(suite, workdir, cost=cost, threads=args.threads)
        runs.append(RunInfo(kind, i, cost, run_dir, wall))
        print(f"[{n}/{len(schedule)}] {kind} {i} cost {cost}: {wall:.1f} s  {run_dir}", file=sys.stderr, flush=True)
    aa = [load_benchmarks(Path(r.run_dir)) for r in sorted(runs, key=lambda r: r.index) if r.kind == "aa"]
    slow = [load_benchmarks(Path(r.run_dir)) for r in sorted(runs, key=lambda r: r.index) if r.kind == "slow"]
    variants = [_judge(aa, slow, v, args) for v in ("default", "raw", "median")]
    custom = {k: v for k, v in (("threshold_pct", args.threshold), ("alpha", args.alpha)) if v is not None}
    if custom:
        variants.append(_judge(aa, slow, "custom", args, **custom))
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]))] + (argv or sys.argv[1:]))
    summary = {
        "command": command,
        "suite": json.loads(suite.read_text()),
        "slowdown": args.slowdown,
        "threads_env": args.threads or None,
        "gate_quantile": gate_statistic.GATE_QUANTILE,
        "machine": machine_before,
        "loadavg_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "total_wall_s": time.perf_counter() - start,
        "runs": [asdict(r) for r in runs],
        "results": variants,
    }
    Path(args.out).write_text(json.dumps(summary, indent=2))
    m = machine_before
    print(f"command: {command}")
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} "
          f"({args.threads or m['torch_threads_default']} intra-op threads), load average before "
          f"{m['loadavg'][0]:.2f}, after {summary['loadavg_after'][0]:.2f}")
    print(f"{args.aa_runs} A/A runs, {args.slow_runs} runs at {args.slowdown}x cost, "
          f"{summary['total_wall_s'] / 60:.1f} min in all; run dirs under {workdir}")
    for res in variants:
        _print_variant(res, args)
    print(f"summary: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
