"""Runs a suite's tasks, writing each record as soon as its task ends; resumes a killed run.

The manifest is written before the first task. A failing task becomes an ``error`` record and the suite
goes on (unless ``fail_fast``); ``TaskSkipped`` becomes ``skipped``. ``--resume`` skips tasks that already
have an ``ok`` (or ``skipped``) record and never writes a record twice.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.schema import Suite
from harness.environment import capture_environment, git_state, resolve_device
from harness.errors import ConfigError, HarnessError, TaskFailed, TaskSkipped
from harness.models.registry import import_plugins
from harness.plan import Task, expand, shard_tasks
from harness.results import RecordWriter, create_run_dir, load_run, read_records, utc_now, write_manifest
from harness.tasks import Executor, TaskContext, executors, model_fields
from harness.train.rng import seed_everything

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    out_root: Path = Path("results")
    device: str = "auto"
    resume: Path | None = None
    fail_fast: bool = False
    data_dir: str | None = None
    shard: tuple[int, int] | None = None  # (index, count), 0-based index
    argv: list[str] = field(default_factory=list)
    progress: bool = True


def _manifest(suite: Suite, options: RunOptions, device: str, run_id: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "suite_name": suite.name,
        "created_utc": utc_now(),
        "argv": options.argv or sys.argv,
        "git": git_state(Path(__file__).resolve().parent),
        "environment": capture_environment(device),
        "device": device,
        "suite": suite.to_dict(),
        "shard": None if options.shard is None else {"index": options.shard[0], "count": options.shard[1]},
    }


def _open_run(suite: Suite, options: RunOptions, device: str) -> Path:
    if options.resume is None:
        run_dir = create_run_dir(options.out_root, suite.name)
        write_manifest(run_dir, _manifest(suite, options, device, run_dir.name))
        return run_dir
    run = load_run(options.resume)
    if run.manifest.get("suite") != suite.to_dict():
        raise ConfigError(
            f"--resume {options.resume}: the suite differs from the one this run was started with; "
            "resume with the same suite file and flags, or start a new run"
        )
    return Path(options.resume)


def _finished(records: list[dict[str, Any]]) -> set[str]:
    return {r["task_id"] for r in records if r.get("status") in ("ok", "skipped") and r.get("kind") != "train_epoch"}


def run_suite(suite: Suite, *, options: RunOptions) -> Path | None:
    """Run every task of ``suite`` (or of one shard of it) and return the run dir.

    Under torchrun (``WORLD_SIZE`` > 1) every rank trains each ``train`` task on its shard of the data;
    rank 0 alone runs the other tasks, writes the run dir, and gets the path back (other ranks get None).
    """
    import_plugins(suite.imports)
    device = resolve_device(options.device if options.device != "auto" else suite.device)
    tasks = shard_tasks(expand(suite, device=device), options.shard)
    dist = _join_process_group(device)
    is_writer = dist is None or dist.is_writer
    run_dir = _open_run(suite, options, device) if is_writer else None
    run_dir = _broadcast_path(run_dir, dist)
    # read once: what is done, and the earlier records of each task (a resumed training's epochs)
    earlier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_records(run_dir / "records.jsonl"):
        earlier[record.get("task_id")].append(record)
    done = _finished([r for recs in earlier.values() for r in recs])
    todo = [t for t in tasks if t.task_id not in done and (is_writer or t.kind == "train")]
    log.info("%s: %d tasks (%d already done)", run_dir, len(tasks), len(tasks) - len(todo))
    reported_skips: set[str] = set()
    with RecordWriter(run_dir) if is_writer else _NullWriter() as writer:
        for task in _progress(todo, enabled=options.progress and is_writer):
            record = run_task(
                task,
                suite=suite,
                run_dir=run_dir,
                writer=writer,
                data_dir=options.data_dir,
                dist=dist,
                earlier=earlier[task.task_id],
                reported_skips=reported_skips,
            )
            if record["status"] == "error" and options.fail_fast:
                raise TaskFailed(run_dir, task.task_id, record["error"]["message"])
    return run_dir if is_writer else None


def _join_process_group(device: str):
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from harness.train.distributed import init_from_env

    return init_from_env(device_type=device)


def _broadcast_path(run_dir: Path | None, dist) -> Path:
    if dist is None:
        return run_dir
    import torch.distributed as torch_dist

    holder = [str(run_dir) if run_dir is not None else None]
    torch_dist.broadcast_object_list(holder, src=0)
    return Path(holder[0])


class _NullWriter:
    """Non-zero ranks of a distributed run compute but never write."""

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        return record

    def __enter__(self) -> _NullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(tasks: list[Task], *, enabled: bool):
    if not enabled:
        return tasks
    from tqdm.auto import tqdm

    return tqdm(tasks, desc="tasks", unit="task", file=sys.stderr, dynamic_ncols=True, leave=False)


def run_task(
    task: Task,
    *,
    suite: Suite,
    run_dir: Path,
    writer: RecordWriter,
    data_dir: str | None,
    dist: Any = None,
    earlier: list[dict[str, Any]] | None = None,
    reported_skips: set[str] | None = None,
) -> dict[str, Any]:
    """Execute one task and append its record; never raises for a task failure.

    ``earlier`` holds this task's records from before a resume; a skip reason already in ``reported_skips``
    is not logged again (one line for a missing dataset, however many tasks need it).
    """
    reported_skips = set() if reported_skips is None else reported_skips
    base = {
        "task_id": task.task_id,
        "kind": task.kind,
        **model_fields(task.model, label=task.label),
        "device": task.device,
        "batch_size": task.batch_size,
        "round": task.round,
        "started_utc": utc_now(),
    }
    if task.seed is not None:
        base["seed"] = task.seed
    ctx = TaskContext(
        run_dir=run_dir,
        emit=lambda rec: writer.write({**base, **rec}),
        done_records=earlier or [],
        data_dir=data_dir,
        distributed=dist,
    )
    seed_everything(task.seed if task.seed is not None else suite.seed)
    start = time.perf_counter()
    try:
        payload = _executor(task)(task, ctx)
        record = {**base, **payload, "status": "ok"}
    except TaskSkipped as exc:
        if str(exc) not in reported_skips:
            reported_skips.add(str(exc))
            log.warning("%s", exc)
        record = {**base, "status": "skipped", "reason": str(exc)}
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - any task failure becomes an error record; the suite goes on
        log.error("task %s failed: %s: %s", task.task_id, type(exc).__name__, exc)
        log.debug("%s", traceback.format_exc())
        record = {**base, "status": "error", "error": {"type": type(exc).__name__, "message": str(exc)}}
    record["wall_s"] = time.perf_counter() - start
    return writer.write(record)


def _executor(task: Task) -> Executor:
    table = executors()
    if task.kind not in table:
        raise HarnessError(f"task kind {task.kind!r} has no executor in this harness version")
    return table[task.kind]
