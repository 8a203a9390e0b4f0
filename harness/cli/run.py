"""``run`` (measure a suite), ``report`` (re-render a run dir) and ``merge`` (join shard run dirs)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, Interrupted

_MAX_WAIT_S = 24 * 3600


def _shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {value!r}: write I/N, e.g. 1/4 (1-based)") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {value!r}: I must be between 1 and N")
    return index - 1, count


def _device(value: str, *, auto: bool = True) -> str:
    """``--device``: auto (where allowed), cpu, cuda or cuda:N (whether GPU N exists is checked where it starts)."""
    kind, sep, index = value.partition(":")
    if value in (("auto",) * auto + ("cpu", "cuda")) or (kind == "cuda" and sep and index.isascii()
                                                         and index.isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"--device {value!r}: write {'auto, ' * auto}cpu, cuda or cuda:N (N the index "
                                     "of a visible GPU, e.g. cuda:1)")


def device_arg(value: str) -> str:
    """``--device`` of a command that times on one named device: cpu, cuda or cuda:N."""
    return _device(value, auto=False)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.cli.signals import stop_on_sigterm
    from harness.config import load_suite
    from harness.config.edit import with_processes
    from harness.measure.load import parse_threads
    from harness.measure.processes import parse_processes
    from harness.models.plugins import import_plugins
    from harness.plan import check_models, replace_models
    from harness.runner import RunOptions, RunRequest, execute

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
    stop_on_sigterm()
    if args.processes is not None:
        suite = with_processes(suite, parse_processes(args.processes), source=f"--processes {args.processes}")
    threads = parse_threads(args.threads)
    if args.wait_quiet is not None and not (0 <= args.wait_quiet <= _MAX_WAIT_S):
        raise ConfigError(f"--wait-quiet {args.wait_quiet:g}: give seconds between 0 and {_MAX_WAIT_S}")
    if args.launcher is not None:
        return _launch(args, suite, threads)
    _no_launcher_flags(args)
    options = RunOptions(out_root=Path(args.out), device=args.device, resume=args.resume, fail_fast=args.fail_fast,
                         data_dir=args.data_dir, shard=args.shard, argv=sys.argv, progress=not args.no_progress,
                         threads=threads, wait_quiet_s=args.wait_quiet,
                         notify=lambda line: print(line, file=sys.stderr))
    run_dir = execute(RunRequest(suite=suite, options=options))
    if run_dir is None:  # a non-zero rank of a distributed run: rank 0 reports
        return 0
    print(run_dir)
    if not args.no_report:
        from harness.report import render

        print(render(run_dir, reports_root=Path(args.reports)))
    return 0


def _no_launcher_flags(args: argparse.Namespace) -> None:
    given = [flag for flag, value in (("--shards", args.shards), ("--slurm", args.slurm), ("--no-wait", args.no_wait))
             if value]
    if given:
        raise ConfigError(f"{', '.join(given)} needs --launcher slurm|local")


def _launcher_value(text: str) -> Any:
    """A ``--slurm`` value: whole numbers and true/false as such (the schema's integers are strict), the rest text
    (not YAML: ``4:00:00`` is a SLURM time, which YAML would read as a base-60 number)."""
    if text.isdigit():
        return int(text)
    return {"true": True, "false": False}.get(text.lower(), text)


def _launcher_options(suite, items: list[str]):
    """``--slurm KEY=VALUE``: a launcher key of the suite, validated as the suite file's own."""
    from harness.config import parse_suite

    if not items:
        return suite
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm {item!r}: write KEY=VALUE, e.g. --slurm partition=gpu --slurm time=4:00:00")
        values[key.strip()] = _launcher_value(value.strip())
    data = suite.to_dict()
    data["launcher"] = {**(data.get("launcher") or {}), **values}
    return parse_suite(data, source=f"--slurm {' '.join(items)}")


def _launch(args: argparse.Namespace, suite, threads: int | None) -> int:
    from harness.launch import LaunchOptions, finish, launch, require_submitit
    from harness.report import render
    from harness.runner import RunOptions, RunRequest

    if ":" in args.device:
        raise ConfigError(f"--device {args.device} does not go with --launcher: the scheduler gives each shard its "
                          "GPUs; pass --device cuda")
    for flag, value in (("--shard", args.shard), ("--resume", args.resume)):
        if value:
            raise ConfigError(f"{flag} does not go with --launcher: the launcher gives each shard its own --shard "
                              "and resumes it itself; to merge a launch later: python -m harness merge LAUNCH_DIR")
    require_submitit()
    suite = _launcher_options(suite, args.slurm)
    if args.shards is not None and args.shards < 1:  # 0 fell back to the suite's count
        raise ConfigError(f"--shards {args.shards}: give at least 1")
    shards = args.shards or (suite.launcher.shards if suite.launcher is not None else None)
    if not shards:
        raise ConfigError("--launcher needs the number of shards: --shards N (or launcher.shards in the suite)")
    device = args.device if args.device != "auto" else suite.device  # what the shards ask the scheduler for
    # what every shard runs (the launcher adds its shard, --out and --resume): each picks the threads its own
    # machine leaves free, unless the user fixed the count
    shard_run = RunRequest(suite=suite, imports=tuple(args.imports), options=RunOptions(
        device=device, fail_fast=args.fail_fast, threads=threads, wait_quiet_s=args.wait_quiet, progress=False,
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None))
    options = LaunchOptions(executor=args.launcher, shards=shards, out_root=Path(args.out), device=device,
                            request=shard_run, wait=not args.no_wait, progress=not args.no_progress,
                            argv=sys.argv)
    try:
        launched = launch(suite, options=options, notify=lambda line: print(line, file=sys.stderr))
    except Interrupted as exc:
        if exc.merge_command:
            print(f"stopped waiting; jobs already submitted to SLURM keep running. Merge what the shards wrote with: "
                  f"{exc.merge_command} --reports {shlex.quote(args.reports)}", file=sys.stderr)
        raise
    command = f"{launched.merge_command} --reports {shlex.quote(args.reports)}"
    if args.no_wait:
        print(launched.launch_dir)
        print("jobs: " + " ".join(launched.job_ids))
        print(f"merge and report when they end: {command}")
        return 0
    run_dir, problems = finish(launched.launch_dir, out_root=Path(args.out))
    print(run_dir)
    print(render(run_dir, reports_root=Path(args.reports)))
    return _incomplete(problems, shards=shards)


def _incomplete(problems: list, *, shards: int) -> int:
    """Each shard that did not end, by name, with its log's last lines (stderr); exit code 1 if any."""
    for problem in problems:  # printable already: read from the launch dir (harness.launch.finish)
        print(f"error: shard {problem.name} {problem.reason}; log {problem.log}", file=sys.stderr)
        for line in problem.tail:
            print(f"  | {line}", file=sys.stderr)
    if problems:
        print(f"the merged run is incomplete ({len(problems)} of {shards} shards); docs/cluster.md says how to "
              "finish a shard by hand", file=sys.stderr)
    return 1 if problems else 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import render
    from harness.results.store import refuse_run_file

    out = None if args.output is None else refuse_run_file(args.output, what="-o")
    print(render(Path(args.run_dir), reports_root=Path(args.reports), out=out))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.launch.finish import ShardProblem, finish, is_launch_dir, read_launch
    from harness.report import render
    from harness.results import merge_runs

    paths = [Path(p) for p in args.run_dirs]
    launches = [p for p in paths if is_launch_dir(p)]
    problems: list[ShardProblem] = []
    if launches:
        if len(paths) != 1:
            raise ConfigError("merge: give one launch dir alone (it names its shard run dirs), or run dirs only")
        run_dir, problems = finish(launches[0], out_root=Path(args.out))
    else:
        run_dir = merge_runs(paths, out_root=Path(args.out))
    print(run_dir)
    print(render(run_dir, reports_root=Path(args.reports)))
    return _incomplete(problems, shards=len(read_launch(launches[0]).shards) if launches else 0)


def register(sub: argparse._SubParsersAction, *, parents: list[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", parents=parents,
                         help="measure a suite → results/<suite>/<run_id>/ and reports/<suite>/<run_id>.md")
    run.add_argument("suite", help="suite YAML file, e.g. suites/sknet_vs_senet.yaml")
    run.add_argument("--out", default="results", help="results root (default: results)")
    run.add_argument("--reports", default="reports", help="reports root (default: reports)")
    run.add_argument("--device", type=_device, default="auto", metavar="auto|cpu|cuda|cuda:N",
                     help="where to run (default auto: the suite's device, which by default is cuda when available, "
                          "else cpu); cuda:N picks the N-th visible GPU")
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
    run.add_argument("--processes", metavar="K",
                     help="fresh worker processes each timing section is timed in, one after another (default: the "
                          "section's `processes`, else 6); ratios' intervals take their degrees of freedom from them "
                          "(1: within-process noise only)")
    run.add_argument("--wait-quiet", type=float, metavar="SECONDS",
                     help="wait up to SECONDS for other processes to leave the CPU before starting; "
                          "refuse (exit 2) if they do not")
    run.add_argument("--no-report", action="store_true",
                     help="measure only (a shard merged later); render with `report RUN_DIR` or `merge`")
    launch = run.add_argument_group("cluster (docs/cluster.md; needs pip install -e \".[slurm]\")")
    launch.add_argument("--launcher", choices=["slurm", "local"],
                        help="run the shards as a SLURM job array, or as processes here; then merge and report")
    launch.add_argument("--shards", type=int, metavar="N", help="number of shards (default: launcher.shards)")
    launch.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                        help="a launcher setting, e.g. --slurm partition=gpu --slurm time=4:00:00 (repeatable)")
    launch.add_argument("--no-wait", action="store_true",
                        help="submit, print the job ids and the command that merges and reports later, and exit")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", parents=parents, help="re-render the report of a run dir (never re-measures)")
    rep.add_argument("run_dir")
    rep.add_argument("--reports", default="reports")
    rep.add_argument("-o", "--output", type=Path, help="write the markdown here instead")
    rep.set_defaults(func=cmd_report)

    merge = sub.add_parser("merge", parents=parents,
                           help="join shard run dirs (--shard I/N), or a launch dir (--launcher), into one run dir "
                           "and report")
    merge.add_argument("run_dirs", nargs="+")
    merge.add_argument("--out", default="results")
    merge.add_argument("--reports", default="reports")
    merge.set_defaults(func=cmd_merge)
