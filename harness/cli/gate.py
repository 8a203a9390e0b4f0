"""``baseline`` (freeze a run's samples) and ``check`` (the latency regression gate, and its calibration)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from harness.errors import ConfigError

DEFAULT_THRESHOLD_PCT = 5.0


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.gate.baseline import freeze_baseline

    print(freeze_baseline(Path(args.run_dir), Path(args.output)))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from harness.config import load_suite
    from harness.gate.baseline import freeze_baseline, write_thresholds
    from harness.gate.calibrate import calibrate_thresholds
    from harness.gate.sources import load_benchmarks
    from harness.runner import RunOptions, run_suite

    if not 2 <= args.repeats <= 100:
        raise ConfigError(f"--calibrate needs --repeats K with 2 ≤ K ≤ 100 (A/A runs of the same suite), got "
                          f"{args.repeats}")
    if args.baseline is None:
        raise ConfigError("--calibrate needs --baseline FILE: the baseline that receives the thresholds")
    suite = load_suite(args.calibrate)
    runs = []
    for k in range(args.repeats):
        print(f"calibration run {k + 1}/{args.repeats}", file=sys.stderr)
        run_dir = run_suite(suite, options=RunOptions(out_root=Path(args.out), argv=sys.argv,
                                                      progress=not args.no_progress))
        print(run_dir)
        runs.append(load_benchmarks(run_dir))
        if k == 0 and not Path(args.baseline).exists():
            freeze_baseline(run_dir, Path(args.baseline))
    thresholds = calibrate_thresholds(runs)
    write_thresholds(Path(args.baseline), thresholds)
    for key, value in sorted(thresholds.items(), key=lambda kv: kv[0].sort_key()):
        print(f"{key.label} bs{key.batch_size} {key.dtype}: threshold {value:.1f}%", file=sys.stderr)
    print(args.baseline)
    return 0


def _same_job(args: argparse.Namespace):
    """``--ab BASE HEAD --suite S``: both checkouts measured here, alternating; head judged against base."""
    from harness.gate.ab import load_sides, noise_note, run_ab
    from harness.gate.compare import compare
    from harness.results.store import new_run_id

    if args.suite is None:
        raise ConfigError("--ab needs --suite SUITE: the suite both checkouts run, e.g. suites/ci_latency.yaml")
    if args.candidate is not None or args.baseline is not None:
        raise ConfigError("--ab measures both sides itself; drop CANDIDATE and --baseline")
    out = Path(args.out).resolve() / "same_job" / new_run_id()  # absolute: each side runs in its own checkout

    def show(step: int, steps: int, side: str) -> None:
        print(f"same-job gate: run {step}/{steps} ({side})", file=sys.stderr)

    if args.in_process:
        from harness.gate.inprocess import load_pairs, run_inprocess

        files = run_inprocess(base=Path(args.ab[0]), head=Path(args.ab[1]), suite=Path(args.suite),
                              pairs=args.pairs, out=out, device=args.device,
                              on_step=None if args.no_progress else show)
        base, head, base_even, base_odd = load_pairs(files)
        report = compare(base, head, threshold_pct=args.threshold, alpha=args.alpha)
        noise = compare(base_even, base_odd, threshold_pct=args.threshold, alpha=args.alpha)
        notes = (f"same job, in one process: {len(files)} processes each timed base ({args.ab[0]}) and head "
                 f"({args.ab[1]}) alternately, iteration for iteration; samples under {out}", noise_note(noise))
        return replace(report, notes=notes)

    runs = run_ab(base=Path(args.ab[0]), head=Path(args.ab[1]), suite=Path(args.suite), pairs=args.pairs, out=out,
                  device=args.device, on_step=None if args.no_progress else show)
    base, head, base_even, base_odd = load_sides(runs)
    report = compare(base, head, threshold_pct=args.threshold, alpha=args.alpha)
    noise = compare(base_even, base_odd, threshold_pct=args.threshold, alpha=args.alpha)
    order = " ".join("B" if side == "base" else "H" for side in runs.order)
    notes = (f"same job: {len(runs.base)} runs of base ({args.ab[0]}) and {len(runs.head)} of head ({args.ab[1]}), "
             f"alternating {order}; run dirs under {out}", noise_note(noise))
    return replace(report, notes=notes)


def cmd_check(args: argparse.Namespace) -> int:
    from harness.gate.compare import compare
    from harness.gate.render import render
    from harness.gate.sources import load_benchmarks

    if args.calibrate:
        return _calibrate(args)
    if args.in_process and not args.ab:
        raise ConfigError("--in-process is a way of measuring --ab BASE HEAD; add --ab and --suite")
    if args.threshold is None:
        from harness.gate.inprocess import IN_PROCESS_THRESHOLD_PCT

        args.threshold = IN_PROCESS_THRESHOLD_PCT if args.in_process else DEFAULT_THRESHOLD_PCT
    if args.ab:
        report = _same_job(args)
    elif args.candidate is None or args.baseline is None:
        raise ConfigError("check needs CANDIDATE and --baseline FILE (or --ab BASE HEAD --suite SUITE, or "
                          "--calibrate SUITE --repeats K)")
    else:
        report = compare(load_benchmarks(Path(args.baseline)), load_benchmarks(Path(args.candidate)),
                         threshold_pct=args.threshold, alpha=args.alpha, force=args.force)
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    from harness.errors import printable

    print("\n".join(printable(line) for line in text.split("\n")))  # labels come from untrusted run dirs
    return report.exit_code


def register(sub: argparse._SubParsersAction, *, parents: list[argparse.ArgumentParser]) -> None:
    base = sub.add_parser("baseline", parents=parents, help="freeze a run's raw latency samples into a baseline file")
    base.add_argument("run_dir")
    base.add_argument("-o", "--output", required=True, help="baseline JSON to write")
    base.set_defaults(func=cmd_baseline)

    check = sub.add_parser("check", parents=parents,
                           help="latency regression gate: exit 1 on a significant, large slowdown")
    check.add_argument("candidate", nargs="?", help="run dir, baseline file or pytest-benchmark JSON")
    check.add_argument("--baseline", help="baseline file (or run dir / pytest-benchmark JSON)")
    check.add_argument("--threshold", type=float, default=None, metavar="PCT",
                       help="minimum slowdown that counts, percent (default 5; 2 with --in-process; calibrated "
                            "thresholds override)")
    check.add_argument("--alpha", type=float, default=0.002, help="significance level (default 0.002, as asv)")
    check.add_argument("--format", choices=["md", "text", "json"], default="text")
    check.add_argument("--output", help="also write the rendered report to this file")
    check.add_argument("--force", action="store_true", help="compare even across different environments")
    check.add_argument("--ab", nargs=2, metavar=("BASE", "HEAD"),
                       help="same-job gate: run --suite in both checkouts here, alternating, and judge HEAD "
                            "against BASE (no frozen baseline)")
    check.add_argument("--suite", help="with --ab: the suite both checkouts run")
    check.add_argument("--pairs", type=int, default=3, metavar="K", help="with --ab: runs per side (default 3)")
    check.add_argument("--in-process", action="store_true",
                       help="with --ab: build both sides' models in one process and time them alternately, "
                            "iteration for iteration (K processes)")
    check.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="with --ab: device (default cpu)")
    check.add_argument("--calibrate", metavar="SUITE", help="run SUITE --repeats times and calibrate thresholds")
    check.add_argument("--repeats", type=int, default=5, metavar="K")
    check.add_argument("--out", default="results", help="results root for --ab and --calibrate runs")
    check.add_argument("--no-progress", action="store_true")
    check.set_defaults(func=cmd_check)
