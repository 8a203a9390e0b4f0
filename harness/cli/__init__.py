"""Command line: the only place that prints or exits.

``build_parser`` knows every command: one module per group registers its subcommands (``run``: run, report,
merge; ``gate``: baseline, check; ``models``: list; ``data``: make-fake-cifar; ``results``: export, compare,
history). Command modules import
nothing heavy at module level, so ``--help`` and argument errors never import torch.

stdout carries results (run dir and report paths, model lists, check verdicts); progress and log messages go
to stderr. Exit codes: 0 success; 1 the command's one meaning of failure (a task failed under --fail-fast, a
latency regression); 2 bad input (``HarnessError``: one line on stderr, no traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from harness.cli import data, gate, models, results, run
from harness.errors import HarnessError, TaskFailed

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
COMMAND_GROUPS = (run, gate, models, data, results)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Reproduce Selective Kernel Networks (CVPR 2019) against SENet and ResNeXt: complexity, "
        "latency, short CIFAR training, and a latency regression gate.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")
    # -v is also accepted after the subcommand; SUPPRESS keeps an absent flag from resetting the count
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub, parents=[common])
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbosity else "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except TaskFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"records so far are kept in {exc.run_dir}; resume with --resume {exc.run_dir}", file=sys.stderr)
        return EXIT_FAILED
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; records written so far are kept (resume with --resume RUN_DIR)", file=sys.stderr)
        return EXIT_INTERRUPTED
