"""One exception hierarchy for the whole harness.

User errors (``HarnessError`` subclasses) carry a one-line message that says what went wrong, where, and
how to fix it. The CLI maps them to exit code 2 without a traceback. ``TaskSkipped`` is not a failure: a
task that cannot run here (its dataset is absent, its device is not the suite's) is recorded as ``skipped``.
"""

from __future__ import annotations

from pathlib import Path


def printable(text: object) -> str:
    """``text`` with control and other non-printing characters escaped (``\\n``, ``\\x1b``, ``\\u202e``), so
    text read from a run dir (a label, a lock holder's command, an error message) prints as one line and cannot
    drive the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def one_line(message: str) -> str:
    """An error message as one printable line: a traceback carried in a message (DataLoader workers re-raise with
    the worker's) keeps its first line and its last (the error itself); other line breaks become spaces."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if "Traceback (most recent call last)" in str(message) and len(lines) > 1:
        lines = [lines[0], lines[-1]]
    return printable(" ".join(lines))


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A suite file, a CLI flag or a model option is invalid."""


class UnknownModelError(ConfigError):
    """A model name is not in the registry."""


class DuplicateModelError(HarnessError):
    """Two builders were registered under the same name."""


class DatasetUnavailable(HarnessError):
    """A dataset is neither on disk nor downloadable."""


class DatasetError(HarnessError):
    """A dataset is on disk but cannot be used: bad layout, no ground truth, class count ≠ the model's outputs."""


class WeightsError(HarnessError):
    """A weights file or source cannot be loaded into the model it was given for (format, keys, shapes)."""


class ResultsError(HarnessError):
    """A run directory, record file or baseline is missing, malformed or of an unsupported schema."""


class MeasurementError(HarnessError):
    """A measurement could not be taken (OOM, unsupported mode, compile failure...)."""


class IncomparableError(HarnessError):
    """Two runs were taken in environments that cannot be compared (device, dtype, torch version)."""


class TaskSkipped(HarnessError):
    """The task cannot run in this environment (e.g. its dataset is absent); recorded as ``skipped``."""


class RecordWriteError(ResultsError):
    """A record could not be written (a full disk, a vanished folder): the run cannot go on."""


class RunStopped(HarnessError):
    """A run stopped before its end. What was recorded is kept; ``--resume RUN_DIR`` continues it.

    ``exit_code`` is 2 (the run could not go on: a full disk) unless a subclass says otherwise.
    """

    exit_code = 2

    def __init__(self, message: str, *, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = Path(run_dir)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run (``run_dir``: where its records are) or during a launch's wait
    (``merge_command``: how to merge what the shards wrote), for the CLI to say so. Raised from the plain
    ``KeyboardInterrupt`` outside every task, so no task reads it as a model's own exception."""

    def __init__(self, *, run_dir: Path | None = None, merge_command: str | None = None) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.merge_command = merge_command


class TaskFailed(RunStopped):
    """A task failed under ``--fail-fast``: the run stops there. Exit code 1 (a failed task), not 2."""

    exit_code = 1

    def __init__(self, run_dir: Path, task_id: str, message: str) -> None:
        super().__init__(f"task {task_id} failed: {message} (--fail-fast)", run_dir=run_dir)
