"""Command line: the only place that prints or exits.

stdout carries results (run dir and report paths, model lists, check verdicts); progress and log messages go
to stderr. User errors (``HarnessError``) are one line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import ConfigError, HarnessError

log = logging.getLogger("harness")

EXIT_USAGE = 2


def _shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {value!r}: write I/N, e.g. 1/4 (1-based)") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {value!r}: I must be between 1 and N")
    return index - 1, count


def cmd_run(args: argparse.Namespace) -> int:
    from harness.registry import import_plugin
    from harness.report import render
    from harness.runner import RunOptions, run_suite
    from harness.suite import check_models, load_suite, replace_models

    for spec in args.imports:
        import_plugin(spec)
    suite = load_suite(args.suite, overrides=args.overrides)
    for spec in suite.imports:
        import_plugin(spec)
    if args.models:
        suite = replace_models(suite, [m.strip() for m in args.models.split(",") if m.strip()])
    check_models(suite, source=args.suite)
    options = RunOptions(out_root=Path(args.out), device=args.device, resume=args.resume, fail_fast=args.fail_fast,
                         data_dir=args.data_dir, shard=args.shard, argv=sys.argv, progress=not args.no_progress)
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


def cmd_list(args: argparse.Namespace) -> int:
    from harness.registry import get_entry, list_models

    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no model matches {args.pattern!r}; try `python -m harness list` for all")
    for name in names:
        if name.startswith("timm:"):
            print(name)
            continue
        entry = get_entry(name)
        table = f" [{entry.paper_table}]" if entry.paper_table else ""
        print(f"{name:<20} {entry.family:<8} {entry.description}{table}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Reproduce Selective Kernel Networks (CVPR 2019) against SENet and ResNeXt: complexity, "
        "latency, short CIFAR training, and a latency regression gate.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    # -v is also accepted after the subcommand; SUPPRESS keeps an absent flag from resetting the count
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
    add_parser = sub.add_parser
    sub.add_parser = lambda *a, **k: add_parser(*a, parents=[common], **k)  # type: ignore[method-assign]

    run = sub.add_parser("run", help="measure a suite → results/<suite>/<run_id>/ and reports/<suite>/<run_id>.md")
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
    run.add_argument("--fail-fast", action="store_true", help="stop at the first failing task")
    run.add_argument("--data-dir", help="dataset folder (overrides the suite's train.data_dir)")
    run.add_argument("--shard", type=_shard, metavar="I/N", help="run the I-th of N deterministic task shards")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="re-render the report of a run dir (never re-measures)")
    rep.add_argument("run_dir")
    rep.add_argument("--reports", default="reports")
    rep.add_argument("-o", "--output", type=Path, help="write the markdown here instead")
    rep.set_defaults(func=cmd_report)

    lst = sub.add_parser("list", help="registered models matching a pattern ('timm:*' lists timm's)")
    lst.add_argument("pattern", nargs="?", default="*")
    lst.set_defaults(func=cmd_list)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# other modules add subcommands here (check, baseline, merge, make-fake-cifar)
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbosity else "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    from harness import cli_extra  # noqa: F401  (registers the check / baseline / merge / data commands)

    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; records written so far are kept (resume with --resume RUN_DIR)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
