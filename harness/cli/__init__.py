"""Command line: the only place that prints or exits.

``build_parser`` knows every command: one module per group registers its subcommands (``run``: run, report,
merge; ``gate``: baseline, check; ``models``: list; ``data``: make-fake-cifar; ``results``: export, compare,
history). Command modules import
nothing heavy at module level, so ``--help`` and argument errors never import torch.

stdout carries results (run dir and report paths, model lists, check verdicts); progress and log messages go
to stderr. Exit codes: 0 success; 1 the command's one meaning of failure (a task failed under --fail-fast, a
latency regression); 2 the command could not do its job: bad input (``HarnessError``, an unreadable or
unwritable path: one line on stderr, no traceback) or an internal error (one line; ``-v`` shows the traceback);
130 interrupted; 141, quietly, when the reader of stdout went away (``| head -1``). A run that stops early says
where its records are and the exact command that resumes it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from harness.cli import data, gate, models, results, run
from harness.errors import HarnessError, Interrupted, RunStopped, printable

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool its pipe's reader left
EXIT_TERMINATED = 143  # 128 + SIGTERM: SLURM's time limit, `kill`
COMMAND_GROUPS = (run, gate, models, data, results)


class HarnessArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line usage on errors (as git and pip do): ``usage: PROG ARGS [options]`` and the error,
    not every option of the command. ``--help`` still lists them all."""

    def format_usage(self) -> str:
        words: list[str] = []
        for action in self._actions:
            if action.option_strings or action.help == argparse.SUPPRESS:
                continue
            metavar = action.metavar
            name = " ".join(metavar) if isinstance(metavar, tuple) else metavar or action.dest.upper()
            if action.nargs == "?":
                name = f"[{name}]"
            elif action.nargs in ("+", "*"):
                name = f"{name}..."
            words.append(name)
        return f"usage: {' '.join([self.prog, *words])} [options]  (--help for all)\n"

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.format_usage()}{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = HarnessArgumentParser(
        prog="python -m harness",
        description="Reproduce Selective Kernel Networks (CVPR 2019) against SENet and ResNeXt: complexity, "
        "latency, short CIFAR training, and a latency regression gate.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")
    # -v is also accepted after the subcommand; SUPPRESS keeps an absent flag from resetting the count
    common = HarnessArgumentParser(add_help=False)
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


def resume_command(argv: Sequence[str], run_dir: Path) -> str:
    """The command that continues a stopped run: the same arguments, with ``--resume RUN_DIR``."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--resume", "--out"):
            skip = True  # --out is implied by the run dir
            continue
        if arg.startswith(("--resume=", "--out=")):
            continue
        args.append(arg)
    return shlex.join(["python", "-m", "harness", *args, "--resume", str(run_dir)])


def _stopped(exc: RunStopped | KeyboardInterrupt, argv: Sequence[str]) -> None:
    run_dir = exc.run_dir if isinstance(exc, (RunStopped, Interrupted)) else None
    if run_dir is not None:
        print(f"records so far are kept in {run_dir}; resume with: {resume_command(argv, run_dir)}",
              file=sys.stderr)


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of it cannot fail a second time."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


# Commands that read runs and end. Python's cycle collector is paused while they run: a large run's records are a
# million live containers (lists of samples, typed records), nothing read holds a cycle, and every full pass of the
# collector walks them all (2.4 of 22 s of a 25,000-record report). Pausing it only while reading would move that
# cost to the first pass after. `run` and `gate ab` build and free models: their collector stays on.
READING_COMMANDS = frozenset({"report", "export", "compare", "history", "merge"})


@contextlib.contextmanager
def _collector_paused(command: str, *, process_ends: bool) -> Iterator[None]:
    """The collector off for a command of ``READING_COMMANDS``, and back on after. When the process ends with the
    command (``python -m harness``, the ``harness`` script), what it allocated is frozen first (``gc.freeze``): turning
    the collector on would walk all of it once more on the way out (1.1 s for 25,000 records)."""
    if command not in READING_COMMANDS:
        yield
        return
    from harness.measure.sampling import gc_paused

    with gc_paused():  # gives the collector back as it was, after the freeze below
        try:
            yield
        finally:
            if process_ends:
                gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line ``argv`` (None: this process's own, which ends with the command); its exit code."""
    process_ends = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        with _collector_paused(args.command, process_ends=process_ends):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a pipe's reader that went away shows here, not in the interpreter's last flush
        return code
    except RunStopped as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        _stopped(exc, argv)
        return exc.exit_code
    except HarnessError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        from harness.cli.signals import terminated

        print("terminated (SIGTERM)" if terminated() else "interrupted", file=sys.stderr)
        _stopped(exc, argv)
        return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout went away (`| head -1`): close quietly, as Unix tools do
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a path the user gave that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {printable(where)}{printable(exc.strerror or exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - a bug must not pass for a verdict: exit 1 has one meaning per command
        logging.getLogger(__name__).debug("internal error", exc_info=True)
        print(f"error: internal error in `{args.command}`: {type(exc).__name__}: {printable(exc)} "
              "(rerun with -v for the traceback; please report it)", file=sys.stderr)
        return EXIT_USAGE
