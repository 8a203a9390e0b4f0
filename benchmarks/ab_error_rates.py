"""Error rates of the same-job gate (``gate ab``) on this machine: false alarms on unchanged code (A/A),
and detection of real 5% and 20% slowdowns.

Every trial makes two "checkouts" — folders holding a copy of ``benchmarks/gate_plugin.py`` whose
``DEFAULT_COST`` differs, as a pull request's code would — and runs ``python -m harness gate ab base head
--suite <suite> --pairs K`` as CI would, one intra-op thread. The plugin model is ``gate_convnet`` with 20
equal 3×3 conv layers: a cost of 1.05 builds 21 (a real +5% of the body's multiply-adds), 1.2 builds 24.
Trial kinds alternate (A/A, 1.05, 1.2, A/A, …) so a change of the machine's load hits all alike.

    python benchmarks/ab_error_rates.py --trials 20 --out ab_error_rates.json          # ~30 min on 2 cores
    python benchmarks/ab_error_rates.py --rejudge ab_error_rates.json --threshold 3    # judge the same runs again
    python benchmarks/ab_error_rates.py --rejudge ab_error_rates.json --threshold 3 --from-trial 7   # held out
    python benchmarks/ab_error_rates.py --kinds aa,slow_5 --trials 100 --background half \
        --pairs 2 --rounds 4 --min-time 1.0 --max-time 2.5 --min-samples 40 --out ab.json      # docs/gate.md's table
    python benchmarks/ab_error_rates.py --table ab.json --readme docs/gate.md    # write the table into docs/gate.md

``--background half`` runs a CPU-bound process (``python -c "while True: pass"``) beside every other trial of
each kind, so half the trials see a busy machine; every trial records the load it saw (other processes' cores,
load average). Rates carry the exact (Clopper-Pearson) binomial 95% interval.

A false alarm is an A/A trial with exit code 1; a detection is a slowdown trial with exit code 1. The JSON
keeps every trial's run dirs, so ``--rejudge`` can apply other thresholds without measuring again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.errors import ConfigError
from harness.fileio import write_between_markers
from harness.measure.load import LoadMonitor

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "gate_plugin.py"
KINDS = (("aa", 1.0), ("slow_5", 1.05), ("slow_20", 1.2))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20, help="trials of each kind (A/A, +5%%, +20%%)")
    p.add_argument("--pairs", type=int, default=3, help="runs per side in each trial (check --pairs)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--min-time", type=float, default=1.5, help="min_time_s per benchmark (all rounds)")
    p.add_argument("--max-time", type=float, default=4.0)
    p.add_argument("--min-samples", type=int, default=60)
    p.add_argument("--threshold", type=float, default=None,
                   help="gate ab --threshold, percent (default: gate ab's own)")
    p.add_argument("--alpha", type=float, default=0.002)
    p.add_argument("--out", help="JSON summary to write")
    p.add_argument("--workdir", help="where checkouts and run dirs go (default: a temporary folder, kept)")
    p.add_argument("--rejudge", metavar="JSON", help="judge the runs of an earlier summary again (no measuring)")
    p.add_argument("--kinds", default="aa,slow_5,slow_20", help="trial kinds to run, of aa, slow_5, slow_20")
    p.add_argument("--background", choices=["none", "half", "all"], default="none",
                   help="a CPU-bound background process beside none, every other, or all trials")
    p.add_argument("--table", metavar="JSON", help="print the markdown table of a summary (no measuring)")
    p.add_argument("--readme", metavar="FILE", help="with --table: replace the table between the markers "
                   "'<!-- ab-error-rates:start -->' and '<!-- ab-error-rates:end -->' in this file "
                   "(docs/gate.md, Measured error rates)")
    p.add_argument("--from-trial", type=int, default=0,
                   help="--rejudge: count only trials with this index or later (a held-out part)")
    args = p.parse_args(argv)
    names = [k for k, _ in KINDS]
    if args.trials < 1:
        p.error(f"--trials {args.trials}: run at least one trial of each kind")
    if not args.kinds or any(k not in names for k in args.kinds.split(",")):
        p.error(f"--kinds {args.kinds!r}: a comma-separated list of {', '.join(names)}")
    return args


def _checkout(root: Path, name: str, cost: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    source = PLUGIN.read_text().replace("DEFAULT_COST = 1.0\n", f"DEFAULT_COST = {cost}\n")
    (folder / "gate_plugin.py").write_text(source)
    return folder


def _suite(root: Path, args: argparse.Namespace) -> Path:
    path = root / "ab_error_rates.yaml"
    path.write_text(json.dumps({
        "name": "ab_error_rates", "imports": ["gate_plugin.py"], "device": "cpu",
        "models": [{"name": "gate_convnet", "label": "gate", "options": {"channels": 16, "depth": 20}}],
        "latency": {"batch_sizes": [1], "warmup": 3, "min_time_s": args.min_time, "max_time_s": args.max_time,
                    "min_samples": args.min_samples, "rounds": args.rounds, "reference": True}}))
    return path


def _busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _trial(root: Path, suite: Path, kind: str, cost: float, index: int, args: argparse.Namespace, *,
           loaded: bool = False) -> dict:
    trial_dir = root / f"{kind}_{index:02d}"
    base, head = _checkout(trial_dir, "base", 1.0), _checkout(trial_dir, "head", cost)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "harness", "gate", "ab", str(base), str(head), "--suite", str(suite),
               "--pairs", str(args.pairs), "--alpha", str(args.alpha),
               *([] if args.threshold is None else ["--threshold", str(args.threshold)]),
               "--out", str(trial_dir / "results"), "--format", "json", "--no-progress"]
    background = _busy() if loaded else None
    try:
        with LoadMonitor() as monitor:
            done = subprocess.run(command, capture_output=True, text=True, env=env)
    finally:
        if background is not None:
            background.kill()
            background.wait()
    wall_s = monitor.load.wall_s
    if done.returncode not in (0, 1):
        raise SystemExit(f"{kind} trial {index}: check failed (exit {done.returncode}): {done.stderr[-500:]}")
    doc = json.loads(done.stdout)
    (row,) = doc["rows"]
    load = monitor.load.loadavg_1m
    print(f"{kind:8s} {index:3d}{' busy' if loaded else '     '}: exit {done.returncode}  norm. ratio "
          f"{row['normalised_ratio']:.3f}  p {row['p_value']:.2g}  {row['verdict']:26s} {wall_s:5.0f} s  "
          f"load {load:.1f}  other cores {monitor.load.other_cores:.2f}", flush=True)
    return {"kind": kind, "cost": cost, "index": index, "exit_code": done.returncode, "verdict": row["verdict"],
            "normalised_ratio": row["normalised_ratio"], "raw_ratio": row["raw_ratio"], "p_value": row["p_value"],
            "ci": [row["ci_low"], row["ci_high"]], "notes": doc["notes"], "wall_s": wall_s, "load": load,
            "background": loaded, "machine": monitor.load.to_record(), "trial_dir": str(trial_dir)}


def _others(trial: dict) -> float:
    return trial.get("machine", {}).get("other_cores", 0.0)


# Trials by the condition planned (background process or not) and by the load measured: other processes may
# load the machine beyond the planned background process (e.g. other work on a shared VM), which the
# measured split shows.
_PARTS = (("all", lambda t: True), ("quiet", lambda t: t.get("background") is False),
          ("busy", lambda t: t.get("background") is True),
          ("other cores < 0.25", lambda t: _others(t) < 0.25),
          ("other cores 0.25–1.25", lambda t: 0.25 <= _others(t) <= 1.25),
          ("other cores > 1.25", lambda t: _others(t) > 1.25))


def _rates(trials: list[dict]) -> dict:
    from scipy.stats import binomtest

    out = {}
    for kind, _ in KINDS:
        for part, keep in _PARTS:
            mine = [t for t in trials if t["kind"] == kind and keep(t)]
            if not mine:
                continue
            failed = sum(t["exit_code"] == 1 for t in mine)
            ci = binomtest(failed, len(mine)).proportion_ci(confidence_level=0.95, method="exact")
            ratios = [t["normalised_ratio"] for t in mine]
            out[kind if part == "all" else f"{kind}_{part}"] = {"part": part,
                "trials": len(mine), "failed": failed, "rate_ci95": [ci.low, ci.high],
                "ratio_min": min(ratios), "ratio_max": max(ratios),
                "other_cores_median": sorted(t.get("machine", {}).get("other_cores", 0.0)
                                             for t in mine)[len(mine) // 2]}
    return out


_NAMES = {"aa": "A/A (unchanged)", "slow_5": "+5% work", "slow_20": "+20% work"}
MARKERS = ("<!-- ab-error-rates:start -->", "<!-- ab-error-rates:end -->")


def table(doc: dict) -> list[str]:
    """The table in docs/gate.md (Measured error rates): false alarms (A/A) and detections per kind, quiet and
    busy, with 95% intervals."""
    s = doc["settings"]
    lines = ["| trials | machine | verdict 'slower' | rate (exact 95% CI) | ratio range | other cores (median) |",
             "|---|---|---|---|---|---|"]
    for key, rate in doc["rates"].items():
        part = rate.get("part") or ("quiet" if key.endswith("_quiet") else "busy" if key.endswith("_busy") else "all")
        kind = key.removesuffix("_" + part) if part != "all" else key
        low, high = rate["rate_ci95"]
        lines.append(f"| {_NAMES.get(kind, kind)} | {part} | {rate['failed']}/{rate['trials']} | "
                     f"{rate['failed'] / rate['trials']:.1%} ({low:.1%}–{high:.1%}) | "
                     f"{rate['ratio_min']:.3f}–{rate['ratio_max']:.3f} | {rate['other_cores_median']:.2f} |")
    lines += ["", f"Measured with `python benchmarks/ab_error_rates.py --kinds {s['kinds']} --trials "
              f"{s['trials']} --background {s['background']} --pairs {s['pairs']} --rounds {s['rounds']} --min-time "
              f"{s['min_time']} --max-time {s['max_time']} --min-samples {s['min_samples']}` (threshold: "
              f"{'gate ab' + chr(39) + 's default' if s['threshold'] is None else str(s['threshold']) + '%'}, "
              f"alpha {s['alpha']}); table written by `--table … --readme docs/gate.md`."]
    return lines


def _write_table(path: Path, readme: Path | None) -> None:
    lines = table(json.loads(path.read_text()))
    print("\n".join(lines))
    if readme is not None:
        write_between_markers(readme, MARKERS, "\n".join(lines))


def _rejudge(path: Path, args: argparse.Namespace) -> None:
    from harness.gate.ab import load_pairs
    from harness.gate.verdict import compare

    if args.threshold is None:
        print("error: --rejudge needs --threshold PCT: the threshold to judge the stored runs with", file=sys.stderr)
        raise SystemExit(2)
    doc = json.loads(path.read_text())
    doc["trials"] = [t for t in doc["trials"] if t["index"] >= args.from_trial]
    for trial in doc["trials"]:
        results = Path(trial["trial_dir"]) / "results" / "same_job"
        (job,) = list(results.iterdir())
        if not (job / "spec.json").exists():
            print(f"error: {job}: measured by the removed process-alternating form of the gate; only trials of "
                  "`gate ab` (a spec.json and pair*.json) can be rejudged", file=sys.stderr)
            raise SystemExit(2)
        base, head, _, _ = load_pairs(sorted(job.glob("pair*.json")))
        (row,) = compare(base, head, threshold_pct=args.threshold, alpha=args.alpha).rows
        trial.update(exit_code=int(row.verdict.value == "regression"), verdict=row.verdict.value,
                     normalised_ratio=row.normalised_ratio, p_value=row.p_value, ci=[row.ci_low, row.ci_high])
    doc["rates"] = _rates(doc["trials"])
    doc["settings"].update(threshold=args.threshold, alpha=args.alpha, rejudged=True)
    print(f"rejudged with threshold {args.threshold}%, alpha {args.alpha}, trials {args.from_trial}+: "
          f"{json.dumps(doc['rates'])}")
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2))


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.table:
        _write_table(Path(args.table), Path(args.readme) if args.readme else None)
        return
    if args.rejudge:
        _rejudge(Path(args.rejudge), args)
        return
    root = Path(args.workdir or tempfile.mkdtemp(prefix="ab_error_rates_"))
    root.mkdir(parents=True, exist_ok=True)
    suite = _suite(root, args)
    trials = []
    kinds = [(k, c) for k, c in KINDS if k in args.kinds.split(",")]
    for index in range(args.trials):
        loaded = args.background == "all" or (args.background == "half" and index % 2 == 1)
        for kind, cost in kinds:
            trials.append(_trial(root, suite, kind, cost, index, args, loaded=loaded))
            shutil.rmtree(Path(trials[-1]["trial_dir"]) / "results" / "same_job" / "reports", ignore_errors=True)
            summary = _summary(args, trials, root)  # after every trial: a stopped run keeps what it measured
    print(json.dumps(summary["rates"], indent=2))


def _summary(args: argparse.Namespace, trials: list[dict], root: Path) -> dict:
    summary = {"settings": vars(args), "rates": _rates(trials), "trials": trials, "workdir": str(root)}
    if args.out:
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(args.out)
    return summary


if __name__ == "__main__":
    try:
        main()
    except ConfigError as exc:  # bad input: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
