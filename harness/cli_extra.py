"""Subcommands beyond run / report / list: baseline, check, merge, make-fake-cifar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli import _EXTRA_COMMANDS
from harness.errors import ConfigError


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.baseline import freeze_baseline

    print(freeze_baseline(Path(args.run_dir), Path(args.output)))
    return 0


def _render(report, fmt: str) -> str:
    return {"md": report.to_markdown, "text": report.to_text, "json": report.to_json}[fmt]()


def _calibrate(args: argparse.Namespace) -> int:
    from harness.baseline import freeze_baseline, load_benchmarks
    from harness.check import calibrate_thresholds, write_thresholds
    from harness.runner import RunOptions, run_suite
    from harness.suite import load_suite

    if args.repeats < 2:
        raise ConfigError("--calibrate needs --repeats K with K ≥ 2 (A/A runs of the same suite)")
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


def cmd_check(args: argparse.Namespace) -> int:
    from harness.baseline import load_benchmarks
    from harness.check import compare

    if args.calibrate:
        return _calibrate(args)
    if args.candidate is None or args.baseline is None:
        raise ConfigError("check needs CANDIDATE and --baseline FILE (or --calibrate SUITE --repeats K)")
    report = compare(load_benchmarks(Path(args.baseline)), load_benchmarks(Path(args.candidate)),
                     threshold_pct=args.threshold, alpha=args.alpha, force=args.force)
    text = _render(report, args.format)
    if args.output:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    print(text)
    return report.exit_code


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.report import render
    from harness.results import merge_runs

    run_dir = merge_runs([Path(p) for p in args.run_dirs], out_root=Path(args.out))
    print(run_dir)
    print(render(run_dir, reports_root=Path(args.reports)))
    return 0


def cmd_fake_cifar(args: argparse.Namespace) -> int:
    from harness.train.fake_cifar import write_fake_cifar

    print(write_fake_cifar(Path(args.dir), args.dataset, n_train=args.n_train, n_test=args.n_test, seed=args.seed))
    return 0


def _add_baseline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="freeze a run's raw latency samples into a baseline file")
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", required=True, help="baseline JSON to write")
    p.set_defaults(func=cmd_baseline)


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="latency regression gate: exit 1 on a significant, large slowdown")
    p.add_argument("candidate", nargs="?", help="run dir, baseline file or pytest-benchmark JSON")
    p.add_argument("--baseline", help="baseline file (or run dir / pytest-benchmark JSON)")
    p.add_argument("--threshold", type=float, default=5.0, metavar="PCT",
                   help="minimum slowdown that counts, percent (default 5; calibrated thresholds override)")
    p.add_argument("--alpha", type=float, default=0.002, help="significance level (default 0.002, as asv)")
    p.add_argument("--format", choices=["md", "text", "json"], default="text")
    p.add_argument("--output", help="also write the rendered report to this file")
    p.add_argument("--force", action="store_true", help="compare even across different environments")
    p.add_argument("--calibrate", metavar="SUITE", help="run SUITE --repeats times and calibrate thresholds")
    p.add_argument("--repeats", type=int, default=5, metavar="K")
    p.add_argument("--out", default="results", help="results root for calibration runs")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_check)


def _add_merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="join shard run dirs (--shard I/N) into one run dir and report")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", default="results")
    p.add_argument("--reports", default="reports")
    p.set_defaults(func=cmd_merge)


def _add_fake_cifar(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-fake-cifar", help="write a small synthetic dataset in torchvision's CIFAR format")
    p.add_argument("dir")
    p.add_argument("--dataset", choices=["cifar10", "cifar100"], default="cifar10")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_fake_cifar)


_EXTRA_COMMANDS.extend([_add_baseline, _add_check, _add_merge, _add_fake_cifar])
