"""``gate``: the latency regression gate, as three subcommands.

``gate ab BASE HEAD --suite S`` (the same-job gate CI runs: both checkouts' models timed in one process),
``gate baseline RUN -o FILE`` (freeze a run's samples) and ``gate check CANDIDATE --baseline FILE`` (judge a run
against a frozen baseline, for runs that cannot have both checkouts). The spellings of earlier versions
(``check …``, ``baseline …``) still work with a one-line deprecation notice; ``check --calibrate`` was removed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import ConfigError


def _show(report, args: argparse.Namespace) -> int:  # noqa: ANN001 (the report type is imported lazily)
    from harness.errors import printable
    from harness.fileio import write_text_atomic
    from harness.gate.render import render

    text = render(report, args.format)
    if args.output:
        write_text_atomic(Path(args.output), text if text.endswith("\n") else text + "\n")
    print("\n".join(printable(line) for line in text.split("\n")))  # labels come from untrusted run dirs
    return report.exit_code


def _check_output(args: argparse.Namespace) -> None:
    """``--output`` before anything is measured: a file, never a folder or one of a run dir's own files."""
    from harness.results.store import refuse_run_file

    if args.output is None:
        return
    if Path(args.output).is_dir():
        raise ConfigError(f"--output {args.output}: a folder; give the file to write the report to, e.g. gate.md")
    refuse_run_file(Path(args.output), what="--output")


def cmd_ab(args: argparse.Namespace) -> int:
    from harness.gate import AB_THRESHOLD_PCT
    from harness.gate.ab import same_job
    from harness.gate.verdict import check_options
    from harness.results.store import new_run_id

    _check_output(args)
    threshold = AB_THRESHOLD_PCT if args.threshold is None else args.threshold
    check_options(threshold, args.alpha)  # before the pairs are measured, not after
    if args.suite is None:
        raise ConfigError("gate ab needs --suite SUITE: the suite both checkouts run, e.g. suites/ci_latency.yaml")
    out = Path(args.out).resolve() / "same_job" / new_run_id()  # absolute: each side's code is its checkout's

    def show(step: int, steps: int, side: str) -> None:
        print(f"gate ab: process {step}/{steps} ({side})", file=sys.stderr)

    report = same_job(base=Path(args.base), head=Path(args.head), suite=Path(args.suite), pairs=args.pairs, out=out,
                      device=args.device, threshold_pct=threshold, alpha=args.alpha, force=args.force,
                      on_step=None if args.no_progress else show)
    return _show(report, args)


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.gate.sets import freeze_baseline

    print(freeze_baseline(Path(args.run_dir), Path(args.output)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.gate import THRESHOLD_PCT
    from harness.gate.sets import load_benchmarks
    from harness.gate.verdict import compare

    _check_output(args)
    report = compare(load_benchmarks(Path(args.baseline)), load_benchmarks(Path(args.candidate)),
                     threshold_pct=THRESHOLD_PCT if args.threshold is None else args.threshold, alpha=args.alpha,
                     force=args.force)
    return _show(report, args)


def _deprecated(old: str, new: str) -> None:
    print(f"note: `{old}` is deprecated; use `python -m harness {new}` (docs/gate.md)", file=sys.stderr)


def cmd_old_check(args: argparse.Namespace) -> int:
    """``check`` as earlier versions spelled it: ``--ab`` is ``gate ab``, ``CANDIDATE --baseline`` is ``gate check``."""
    if args.calibrate:
        raise ConfigError("check --calibrate was removed: the gate has one threshold per command (gate ab 2%, gate "
                          "check 5%; --threshold to change it), see docs/gate.md")
    if args.ab:
        if args.suite is None:
            raise ConfigError("--ab needs --suite SUITE: the suite both checkouts run, e.g. suites/ci_latency.yaml")
        if args.candidate is not None or args.baseline is not None:
            raise ConfigError("--ab measures both sides itself; drop CANDIDATE and --baseline")
        _deprecated("check --ab BASE HEAD", "gate ab BASE HEAD --suite SUITE (always in one process)")
        args.base, args.head = args.ab
        return cmd_ab(args)
    if args.in_process:
        raise ConfigError("--in-process is a way of measuring --ab BASE HEAD; use `gate ab BASE HEAD --suite SUITE`")
    if args.candidate is None or args.baseline is None:
        raise ConfigError("check needs CANDIDATE and --baseline FILE; see `python -m harness gate --help`")
    _deprecated("check CANDIDATE --baseline FILE", "gate check CANDIDATE --baseline FILE")
    return cmd_check(args)


def cmd_old_baseline(args: argparse.Namespace) -> int:
    _deprecated("baseline RUN_DIR -o FILE", "gate baseline RUN_DIR -o FILE")
    return cmd_baseline(args)


def _verdict_options(parser: argparse.ArgumentParser, *, threshold: str) -> None:
    from harness.gate import ALPHA

    parser.add_argument("--threshold", type=float, default=None, metavar="PCT",
                        help=f"smallest slowdown that fails, percent (default {threshold})")
    parser.add_argument("--alpha", type=float, default=ALPHA, help=f"significance level (default {ALPHA:g}, as asv)")
    parser.add_argument("--format", choices=["md", "text", "json"], default="text")
    parser.add_argument("--output", help="also write the rendered report to this file")


def _ab_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", help="the suite both checkouts run (its latency section)")
    parser.add_argument("--pairs", type=int, default=3, metavar="K",
                        help="worker processes, each timing base and head (default 3)")
    from harness.cli.run import device_arg

    parser.add_argument("--device", type=device_arg, default="cpu", metavar="cpu|cuda|cuda:N",
                        help="device (default cpu); cuda:N times on the N-th visible GPU")
    parser.add_argument("--out", default="results", help="results root: samples go under OUT/same_job/")
    parser.add_argument("--no-progress", action="store_true")


def register(sub: argparse._SubParsersAction, *, parents: list[argparse.ArgumentParser]) -> None:
    from harness.gate import AB_THRESHOLD_PCT, THRESHOLD_PCT

    gate = sub.add_parser("gate", parents=parents, help="latency regression gate: ab | baseline | check "
                                                        "(exit 1 on a significant, large slowdown)")
    commands = gate.add_subparsers(dest="gate_command", required=True, metavar="SUBCOMMAND")

    ab = commands.add_parser("ab", parents=parents,
                             help="same job: time BASE's and HEAD's models in one process, judge HEAD against BASE")
    ab.add_argument("base", metavar="BASE", help="checkout of the base (e.g. `git worktree add ../base origin/main`)")
    ab.add_argument("head", metavar="HEAD", help="checkout of the change (e.g. .)")
    _ab_options(ab)
    ab.add_argument("--force", action="store_true",
                    help="judge even timings made under contention (other processes took the cores)")
    _verdict_options(ab, threshold=f"{AB_THRESHOLD_PCT:g}")
    ab.set_defaults(func=cmd_ab)

    base = commands.add_parser("baseline", parents=parents, help="freeze a run's raw latency samples into a file")
    base.add_argument("run_dir")
    base.add_argument("-o", "--output", required=True, help="baseline JSON to write")
    base.set_defaults(func=cmd_baseline)

    check = commands.add_parser("check", parents=parents,
                                help="judge a run (or pytest-benchmark JSON) against a frozen baseline")
    check.add_argument("candidate", help="run dir, baseline file or pytest-benchmark JSON")
    check.add_argument("--baseline", required=True, help="baseline file (or run dir / pytest-benchmark JSON)")
    check.add_argument("--force", action="store_true", help="compare even across different environments")
    _verdict_options(check, threshold=f"{THRESHOLD_PCT:g}")
    check.set_defaults(func=cmd_check)

    # the spellings of earlier versions: one line of deprecation, then the same behaviour
    old_base = sub.add_parser("baseline", parents=parents, help="deprecated: gate baseline")
    old_base.add_argument("run_dir")
    old_base.add_argument("-o", "--output", required=True)
    old_base.set_defaults(func=cmd_old_baseline)
    old = sub.add_parser("check", parents=parents, help="deprecated: gate check / gate ab")
    old.add_argument("candidate", nargs="?")
    old.add_argument("--baseline")
    old.add_argument("--force", action="store_true")
    old.add_argument("--ab", nargs=2, metavar=("BASE", "HEAD"))
    old.add_argument("--in-process", action="store_true", help="(the only way gate ab measures)")
    # removed: still parsed, so that `check --calibrate` says what replaced it, but not listed by --help
    old.add_argument("--calibrate", metavar="SUITE", help=argparse.SUPPRESS)
    old.add_argument("--repeats", type=int, default=5, help=argparse.SUPPRESS)
    _ab_options(old)
    _verdict_options(old, threshold=f"{THRESHOLD_PCT:g}; {AB_THRESHOLD_PCT:g} with --ab")
    old.set_defaults(func=cmd_old_check)
