"""``run`` (measure a suite), ``report`` (re-render a run dir) and ``merge`` (join shard run dirs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import ConfigError

_MAX_WAIT_S = 24 * 3600


def _shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {value!r}: write I/N, e.g. 1/4 (1-based)") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {value!r}: I must be between 1 and N")
    return index - 1, count


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config import load_suite
    from harness.measure.load import parse_threads
    from harness.models.plugins import import_plugins
    from harness.plan import check_models, replace_models
    from harness.report import render
    from harness.runner import RunOptions, run_suite

    import_plugins(args.imports)
    suite = load_suite(args.suite, overrides=args.overrides)
    import_plugins(suite.imports)
    if args.models is not None:
        patterns = [m.strip() for m in args.models.split(",") if m.strip()]
        if not patterns:
            raise ConfigError(f"--models {args.models!r} names no model; write names or patterns, "
                              "e.g. --models 'sknet5*,resnext50'")
        suite = replace_models(suite, patterns)
    check_models(suite, source=args.suite)
    threads = parse_threads(args.threads)
    if args.wait_quiet is not None and not (0 <= args.wait_quiet <= _MAX_WAIT_S):
        raise ConfigError(f"--wait-quiet {args.wait_quiet:g}: give seconds between 0 and {_MAX_WAIT_S}")
    options = RunOptions(out_root=Path(args.out), device=args.device, resume=args.resume, fail_fast=args.fail_fast,
                         data_dir=args.data_dir, shard=args.shard, argv=sys.argv, progress=not args.no_progress,
                         threads=threads, wait_quiet_s=args.wait_quiet,
                         notify=lambda line: print(line, file=sys.stderr))
    run_dir = run_suite(suite, options=options)
    if run_dir is None:  # a non-zero rank of a distributed run: rank 0 reports
        return 0
    print(run_dir)
    print(render(run_dir, reports_root=Path(args.reports)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import render

    print(render(Path(args.run_dir), reports_root=Path(args.reports), out=args.output))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.report import render
    from harness.results import merge_runs

    run_dir = merge_runs([Path(p) for p in args.run_dirs], out_root=Path(args.out))
    print(run_dir)
    print(render(run_dir, reports_root=Path(args.reports)))
    return 0


def register(sub: argparse._SubParsersAction, *, parents: list[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", parents=parents,
                         help="measure a suite → results/<suite>/<run_id>/ and reports/<suite>/<run_id>.md")
    run.add_argument("suite", help="suite YAML file, e.g. suites/sknet_vs_senet.yaml")
    run.add_argument("--out", default="results", help="results root (default: results)")
    run.add_argument("--reports", default="reports", help="reports root (default: reports)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    run.add_argument("--models", help="comma-separated names or patterns replacing the suite's models")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a suite value, e.g. --set train.epochs=2 (repeatable; values are YAML)")
    run.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE_OR_FILE.py",
                     help="import user code that registers models (repeatable)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a killed run")
    run.add_argument("--fail-fast", action="store_true", help="stop at the first failing task (exit code 1)")
    run.add_argument("--data-dir", help="dataset folder (overrides the data_dir of the suite's train, eval and "
                     "attention sections; ImageNet-val for eval/attention on imagenet)")
    run.add_argument("--shard", type=_shard, metavar="I/N", help="run the I-th of N deterministic task shards")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    run.add_argument("--threads", default="auto", metavar="N|auto",
                     help="torch intra-op threads (default auto: the cores other processes leave free, or "
                          "OMP_NUM_THREADS when set; a resume keeps the run's count)")
    run.add_argument("--wait-quiet", type=float, metavar="SECONDS",
                     help="wait up to SECONDS for other processes to leave the CPU before starting; "
                          "refuse (exit 2) if they do not")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", parents=parents, help="re-render the report of a run dir (never re-measures)")
    rep.add_argument("run_dir")
    rep.add_argument("--reports", default="reports")
    rep.add_argument("-o", "--output", type=Path, help="write the markdown here instead")
    rep.set_defaults(func=cmd_report)

    merge = sub.add_parser("merge", parents=parents,
                           help="join shard run dirs (--shard I/N) into one run dir and report")
    merge.add_argument("run_dirs", nargs="+")
    merge.add_argument("--out", default="results")
    merge.add_argument("--reports", default="reports")
    merge.set_defaults(func=cmd_merge)
