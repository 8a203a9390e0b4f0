"""Merge a launch's shard run dirs into one run dir (``results.merge``), naming the shards that did not end.

Used by the waiting launcher and by ``python -m harness merge LAUNCH_DIR`` (after ``--no-wait``). Reads files
only: no submitit needed.

A launch dir is untrusted input, like a run dir (copied between machines, edited): ``launch.json`` is typed on read
(``LaunchState``), every folder it names must resolve under the launch dir, a shard's log is looked up by its file
name in the launch dir's ``logs/`` only, and the text it carries is printable. Anything else is one
``ResultsError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ResultsError, printable
from harness.fileio import JSONInputError, parse_json, read_input
from harness.launch.shard import DONE_FILE, shard_run_dir
from harness.results.merge import merge_runs
from harness.results.store import RunLock

LAUNCH_FILE = "launch.json"
LOGS = "logs"  # submitit's folder: every shard's stdout and stderr
LOG_TAIL_LINES = 15
LOG_TAIL_BYTES = 64 * 1024  # the end of a log, enough for its last lines


class _Typed(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Attempt(_Typed):
    job_id: str
    stdout: str | None = None
    stderr: str | None = None


class ShardEntry(_Typed):
    name: str = Field(pattern=r"^[0-9]+/[0-9]+$")
    folder: str
    state: str = "unknown"
    reason: str | None = None
    attempts: list[Attempt] = []


class LaunchState(_Typed):
    """What ``merge`` reads of ``launch.json`` (the launcher writes more: ``created_utc``, ``argv``, ``out_root``)."""

    run_id: str | None = None
    suite_name: str | None = None
    executor: str | None = None
    shards: list[ShardEntry]


@dataclass(frozen=True)
class ShardProblem:
    """A shard that did not end: its name, why, its log and the log's last lines."""

    name: str
    reason: str
    log: str | None
    tail: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"shard": self.name, "reason": self.reason, "log": self.log, "log_tail": self.tail}


def is_launch_dir(path: Path) -> bool:
    """A folder ``run --launcher`` made (it holds ``launch.json``)."""
    return (Path(path) / LAUNCH_FILE).is_file()


def read_launch(launch_dir: Path) -> LaunchState:
    where = Path(launch_dir) / LAUNCH_FILE
    try:
        state = LaunchState.model_validate(parse_json(read_input(where)))
    except (OSError, JSONInputError) as exc:
        raise ResultsError(f"{where}: not readable ({printable(getattr(exc, 'strerror', None) or exc)})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"]) or "(top level)"
        raise ResultsError(f"{where}: bad field '{field}': {printable(err['msg']).lower()}; the launch dir was edited "
                           "by hand or written by another tool") from None
    return state


def _inside(launch_dir: Path, path: Path, *, what: str) -> Path:
    """``path`` if it resolves under the launch dir, else a one-line ``ResultsError`` (nothing read or locked)."""
    if not path.resolve().is_relative_to(launch_dir.resolve()):
        raise ResultsError(f"{launch_dir / LAUNCH_FILE}: {what} {printable(path)} lies outside the launch dir; "
                           "refusing to read or lock it")
    return path


def _log(launch_dir: Path, recorded: str | None) -> Path | None:
    """A shard's log: the file of that name in the launch dir's ``logs/`` (where submitit writes every shard's
    logs), whatever folder ``launch.json`` names, so an edited path reads nothing outside the launch dir and a
    moved launch dir still finds its logs."""
    if not recorded or Path(recorded).name in ("", ".", ".."):
        return None
    path = launch_dir / LOGS / Path(recorded).name
    return path if path.resolve().is_relative_to(launch_dir.resolve()) and path.is_file() else None


def _tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> list[str]:
    if path is None:
        return []
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        text = handle.read(LOG_TAIL_BYTES).decode("utf-8", errors="replace")
    return [printable(line) for line in text.splitlines() if line.strip()][-lines:]  # no escape bytes to the terminal


def _problem(launch_dir: Path, entry: ShardEntry) -> ShardProblem:
    last = entry.attempts[-1] if entry.attempts else Attempt(job_id="")
    stderr, stdout = _log(launch_dir, last.stderr), _log(launch_dir, last.stdout)
    tail = _tail(stderr) or _tail(stdout)
    reason = entry.reason or f"not finished (state: {entry.state})"
    if entry.state == "failed":
        reason = f"failed {len(entry.attempts)} times; last: {reason}"
    log = stderr or (launch_dir / LOGS / Path(last.stderr).name if last.stderr else None)
    return ShardProblem(name=entry.name, reason=printable(reason), log=None if log is None else printable(log),
                        tail=tail)


def finish(launch_dir: Path, *, out_root: Path) -> tuple[Path, list[ShardProblem]]:
    """Merge the launch's shard run dirs (records of an unfinished shard included) into ``<out>/<suite>/<id>``.

    Refuses while a shard still writes; a shard without its done marker is listed in the merged manifest's
    ``incomplete`` with its log's last lines.
    """
    launch_dir = Path(launch_dir)
    state = read_launch(launch_dir)
    run_dirs: list[Path] = []
    problems: list[ShardProblem] = []
    for entry in state.shards:
        folder = _inside(launch_dir, launch_dir / entry.folder, what="shard folder")
        run_dir = shard_run_dir(folder)
        if run_dir is not None:
            _inside(launch_dir, run_dir, what="shard run dir")
            with RunLock(run_dir, argv=["merge", str(launch_dir)]):  # refuses while the shard still writes
                pass
            run_dirs.append(run_dir)
        if not (folder / DONE_FILE).is_file():
            problems.append(_problem(launch_dir, entry))
    if not run_dirs:
        where = "; ".join(f"shard {p.name}: {p.log}" for p in problems)
        raise ResultsError(f"{launch_dir}: no shard wrote a run dir yet; see the shard logs ({where})")
    launch_info = {"dir": str(launch_dir), "executor": state.executor,
                   "shards": [{"name": e.name, "job_ids": [a.job_id for a in e.attempts]} for e in state.shards]}
    run_id = state.run_id
    if run_id and (Path(out_root) / str(state.suite_name) / run_id).exists():
        run_id = None  # merged before: this merge gets a run id of its own
    merged = merge_runs(run_dirs, out_root=out_root, run_id=run_id,
                        extra={"launch": launch_info, "incomplete": [p.to_json() for p in problems]})
    return merged, problems
