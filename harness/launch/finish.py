"""Merge a launch's shard run dirs into one run dir (``results.merge``), naming the shards that did not end.

Used by the waiting launcher and by ``python -m harness merge LAUNCH_DIR`` (after ``--no-wait``). Reads files
only: no submitit needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ResultsError
from harness.launch.shard import DONE_FILE, shard_run_dir
from harness.results.merge import merge_runs
from harness.results.store import RunLock

LAUNCH_FILE = "launch.json"
LOG_TAIL_LINES = 15


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


def read_launch(launch_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(launch_dir) / LAUNCH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{launch_dir}/{LAUNCH_FILE}: not readable ({exc})") from None


def _tail(path: str | None, lines: int = LOG_TAIL_LINES) -> list[str]:
    if not path or not Path(path).is_file():
        return []
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _problem(entry: dict[str, Any]) -> ShardProblem:
    last = (entry.get("attempts") or [{}])[-1]
    log_path = last.get("stderr")
    tail = _tail(log_path) or _tail(last.get("stdout"))
    reason = entry.get("reason") or f"not finished (state: {entry.get('state', 'unknown')})"
    if entry.get("state") == "failed":
        reason = f"failed {len(entry.get('attempts') or [])} times; last: {reason}"
    return ShardProblem(name=entry["name"], reason=reason, log=log_path, tail=tail)


def finish(launch_dir: Path, *, out_root: Path) -> tuple[Path, list[ShardProblem]]:
    """Merge the launch's shard run dirs (records of an unfinished shard included) into ``<out>/<suite>/<id>``.

    Refuses while a shard still writes; a shard without its done marker is listed in the merged manifest's
    ``incomplete`` with its log's last lines.
    """
    launch_dir = Path(launch_dir)
    state = read_launch(launch_dir)
    run_dirs: list[Path] = []
    problems: list[ShardProblem] = []
    for entry in state.get("shards", []):
        folder = launch_dir / entry["folder"]
        run_dir = shard_run_dir(folder)
        if run_dir is not None:
            with RunLock(run_dir, argv=["merge", str(launch_dir)]):  # refuses while the shard still writes
                pass
            run_dirs.append(run_dir)
        if not (folder / DONE_FILE).is_file():
            problems.append(_problem(entry))
    if not run_dirs:
        where = "; ".join(f"shard {p.name}: {p.log}" for p in problems)
        raise ResultsError(f"{launch_dir}: no shard wrote a run dir yet; see the shard logs ({where})")
    launch_info = {"dir": str(launch_dir), "executor": state.get("executor"),
                   "shards": [{"name": e["name"], "job_ids": [a["job_id"] for a in e.get("attempts", [])]}
                              for e in state.get("shards", [])]}
    run_id = state.get("run_id")
    if run_id and (Path(out_root) / str(state.get("suite_name")) / run_id).exists():
        run_id = None  # merged before: this merge gets a run id of its own
    merged = merge_runs(run_dirs, out_root=out_root, run_id=run_id,
                        extra={"launch": launch_info, "incomplete": [p.to_json() for p in problems]})
    return merged, problems
