"""Runs a suite's tasks, writing each record as soon as its task ends; resumes a killed run.

The manifest is written before the first task. A failing task becomes an ``error`` record and the suite
goes on (unless ``fail_fast``); ``TaskSkipped`` becomes ``skipped``. ``--resume`` skips tasks that already
have an ``ok`` (or ``skipped``) record and never writes a record twice.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.config.schema import Suite
from harness.environment import capture_environment, fingerprint, git_state, resolve_device
from harness.errors import (
    ConfigError,
    HarnessError,
    Interrupted,
    RecordWriteError,
    ResultsError,
    RunStopped,
    TaskFailed,
    TaskSkipped,
    one_line,
)
from harness.measure.load import ThreadChoice, choose_threads, wait_for_quiet
from harness.models.plugins import import_plugins
from harness.plan import Task, TimingSpec, expand, shard_tasks, shard_units
from harness.results import MANIFEST, RecordWriter, create_run_dir, load_run, read_records, utc_now, write_manifest
from harness.results.records import FailedRecord, RecordBase
from harness.results.store import RunLock, as_written
from harness.tasks import Executor, TaskContext, executors, model_fields
from harness.train.rng import seed_everything

log = logging.getLogger(__name__)
# task kinds that time something outside a timing group (the terminal says the thread choice when a run times)
TIMED_ALONE = ("peak", "op_time")


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
    threads: int | None = None  # torch intra-op threads; None: the cores other processes leave free
    wait_quiet_s: float | None = None  # wait this long for a quiet machine before starting, else refuse
    notify: Any = None  # called with one line for the terminal (the thread choice)


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """One run, frozen and picklable: what ``harness run`` assembles from its flags, and what a shard job of the
    launcher holds and runs where it lands (no argv list goes between modules, no CLI is re-entered)."""

    suite: Suite
    options: RunOptions
    imports: tuple[str, ...] = ()  # plugins besides the suite's own (``--import``)


def execute(request: RunRequest) -> Path | None:
    """Run ``request``: import its plugins, then ``run_suite``; the run dir (None on a non-writing rank)."""
    import_plugins(request.imports)
    return run_suite(request.suite, options=request.options)


def _run_options(options: RunOptions, device: str) -> dict[str, Any]:
    """The command-line choices that change what a run measures: a resume must make the same ones."""
    return {
        "device": device,
        "shard": None if options.shard is None else {"index": options.shard[0], "count": options.shard[1]},
        "data dir": str(Path(options.data_dir).expanduser().resolve()) if options.data_dir else None,
    }


def _manifest(suite: Suite, options: RunOptions, device: str, run_id: str,
              threads: ThreadChoice | None = None) -> dict[str, Any]:
    chosen = _run_options(options, device)
    return {
        "threads": threads.to_record() if threads is not None else None,
        "run_id": run_id,
        "suite_name": suite.name,
        "created_utc": utc_now(),
        "argv": options.argv or sys.argv,
        "git": git_state(Path(__file__).resolve().parent),
        "environment": capture_environment(device),
        "device": device,
        "suite": suite.to_dict(),
        "shard": chosen["shard"],
        "run_options": chosen,
    }


def _new_run(suite: Suite, options: RunOptions, device: str, threads: ThreadChoice | None) -> Path:
    run_dir = create_run_dir(options.out_root, suite.name)
    try:
        write_manifest(run_dir, _manifest(suite, options, device, run_dir.name, threads))
    except OSError as exc:
        raise ResultsError(f"{run_dir}: cannot write the manifest ({exc.strerror or exc})") from None
    return run_dir


def _set_threads(options: RunOptions, *, wait: bool = True) -> ThreadChoice:
    """Wait for a quiet machine if asked, then set torch's intra-op threads (a resume keeps the run's count)."""
    import torch

    if wait and options.wait_quiet_s is not None:
        wait_for_quiet(options.wait_quiet_s)
    requested = options.threads
    if requested is None and options.resume is not None:
        recorded = (_manifest_of(options.resume).get("threads") or {}).get("threads")
        requested = recorded if isinstance(recorded, int) and recorded > 0 else None
    choice = choose_threads(requested)
    torch.set_num_threads(choice.threads)
    return choice


def _manifest_of(run_dir: Path) -> dict[str, Any]:
    try:
        return load_run(run_dir).manifest
    except HarnessError:
        return {}  # the resume check below says what is wrong with it


def _check_resumable(manifest: dict[str, Any], suite: Suite, options: RunOptions, device: str) -> None:
    """A resume continues the same measurement: same suite, same options, same machine and software."""
    where = f"--resume {options.resume}"
    if manifest.get("suite") != suite.to_dict():
        raise ConfigError(f"{where}: the suite differs from the one this run was started with; "
                          "resume with the same suite file and flags, or start a new run")
    recorded = manifest.get("run_options") or {"device": manifest.get("device"), "shard": manifest.get("shard")}
    for name, value in _run_options(options, device).items():
        if name in recorded and recorded[name] != value:
            raise ConfigError(f"{where}: the {name} differs from the one this run was started with "
                              f"({recorded[name]!r}, now {value!r}); resume with the same flags, or start a new run")
    then = fingerprint(manifest.get("environment") or {})
    now = fingerprint(capture_environment(device))
    for name, value in now.items():
        if then.get(name) not in (None, [], value):
            raise ConfigError(f"{where}: the {name} differs from the one this run was started with "
                              f"({then[name]!r}, now {value!r}); its results would not compare, start a new run")


def _finished(records: list[RecordBase]) -> set[str]:
    return {r.task_id for r in records if r.status in ("ok", "skipped") and r.kind != "train_epoch"}


def run_suite(suite: Suite, *, options: RunOptions) -> Path | None:
    """Run every task of ``suite`` (or of one shard of it) and return the run dir.

    Under torchrun (``WORLD_SIZE`` > 1) the run has two phases. First every rank trains each ``train`` task on
    its shard of the data, all in the same order, while the process group exists; then the group is destroyed
    (whatever ends the run: a normal end, an error, Ctrl-C, SIGTERM), the other ranks return None and rank 0
    alone runs the other tasks (timing, complexity, op-time, eval, attention), so no rank ever waits in a
    collective while rank 0 does single-process work. Rank 0 writes the run dir and gets the path back.
    The writing process holds the run dir's lock (``RunLock``) from start to end.
    """
    if options.resume is not None and not (Path(options.resume) / MANIFEST).is_file():
        # before the lock: a mistyped path must not become folders and a .lock
        raise ResultsError(f"--resume {options.resume}: no run dir there (no {MANIFEST}); pass a run dir like "
                           "results/<suite>/<run_id>, as the stopped run printed it")
    import_plugins(suite.imports)
    device = resolve_device(options.device if options.device != "auto" else suite.device)
    every = expand(suite, device=device)
    tasks = shard_tasks(every, options.shard)
    if options.shard is not None and not tasks and options.notify is not None:
        index, count = options.shard
        # said, not refused: a CI matrix of N shards runs every shard, and merge takes the empty one too
        options.notify(f"--shard {index + 1}/{count}: this shard gets no task (the suite splits into "
                       f"{shard_units(every)} shard(s) on {device}); its run dir stays empty")
    dist = _join_process_group(device)
    try:
        return _run_joined(tasks, suite=suite, options=options, device=device, dist=dist)
    finally:
        _leave_process_group(dist)  # on every exit path; a no-op after the training phase left it


def _run_joined(tasks: list[Task], *, suite: Suite, options: RunOptions, device: str, dist: Any) -> Path | None:
    is_writer = dist is None or dist.is_writer
    with ExitStack() as held:
        threads = run_dir = None
        if is_writer:
            try:
                threads, run_dir = _open_run(suite, options, device, dist=dist, held=held)
            except BaseException:
                _broadcast_path(None, dist)  # the other ranks stop too, none waits for a training that never comes
                raise
        run_dir = _broadcast_path(run_dir, dist)
        if run_dir is None:
            raise HarnessError("rank 0 did not start the run (its error says why); this rank stops")
        if threads is not None:
            log.info("threads: %s", threads.describe())
            if options.notify is not None and any(t.members or t.kind in TIMED_ALONE for t in tasks):
                options.notify(f"threads: {threads.describe()}")  # what a timing's reader must know
        try:
            if dist is not None:
                _run_tasks([t for t in tasks if t.kind == "train"], suite=suite, options=options, run_dir=run_dir,
                           dist=dist, is_writer=is_writer)
                _leave_process_group(dist)
                if not is_writer:
                    return None
                if options.wait_quiet_s is not None:
                    wait_for_quiet(options.wait_quiet_s)
                tasks = [t for t in tasks if t.kind != "train"]
            _run_tasks(tasks, suite=suite, options=options, run_dir=run_dir, dist=None, is_writer=True)
        except RecordWriteError as exc:
            raise RunStopped(str(exc), run_dir=run_dir) from exc
        except KeyboardInterrupt as exc:
            raise Interrupted(run_dir=run_dir) from exc  # the CLI says where the records are and how to resume
    return run_dir


def _open_run(suite: Suite, options: RunOptions, device: str, *, dist: Any,
              held: ExitStack) -> tuple[ThreadChoice, Path]:
    """The writing process: choose the threads, create (or check and continue) the run dir and hold its lock."""
    # a distributed run waits for a quiet machine after its training, when the other ranks have gone
    threads = _set_threads(options, wait=dist is None)
    run_dir = Path(options.resume) if options.resume is not None else _new_run(suite, options, device, threads)
    held.enter_context(RunLock(run_dir, argv=options.argv or sys.argv, utc=utc_now()))
    if options.resume is not None:
        _check_resumable(load_run(run_dir).manifest, suite, options, device)
    return threads, run_dir


def _run_tasks(tasks: list[Task], *, suite: Suite, options: RunOptions, run_dir: Path, dist: Any,
               is_writer: bool) -> None:
    # read once: what is done, and the earlier records of each task (a resumed training's epochs)
    earlier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    records = read_records(run_dir / "records.jsonl")
    for record in records:  # the tasks (the writing side) read their earlier records as the lines held them
        earlier[record.task_id].append(record.to_json())
    done = _finished(records)
    todo = [_unfinished(t, done) for t in tasks if not set(t.ids) <= done]
    log.info("%s: %d tasks (%d already done)", run_dir, len(tasks), len(tasks) - len(todo))
    reported_skips: set[str] = set()
    groups = [t for t in todo if t.members]
    timed: dict[str, list[Any]] | None = None
    with RecordWriter(run_dir) if is_writer else _NullWriter() as writer:
        for task in _progress(todo, enabled=options.progress and is_writer):
            if task.members:
                if timed is None:  # every timing group of the run: one session of worker processes
                    timed = _time_groups(groups, suite=suite, options=options)
                record = _group_records(task, timed[task.task_id], writer=writer, shard=options.shard)
            else:
                record = run_task(task, suite=suite, run_dir=run_dir, writer=writer, data_dir=options.data_dir,
                                  dist=dist, earlier=earlier[task.task_id], reported_skips=reported_skips,
                                  shard=options.shard)
            if isinstance(record, FailedRecord) and options.fail_fast:
                raise TaskFailed(run_dir, task.task_id, record.error.message)


def _unfinished(task: Task, done: set[str]) -> Task:
    """``task``, or the group of its members that have no record yet (a group is timed anew, without the rest)."""
    if not task.members:
        return task
    return replace(task, members=tuple(m for m in task.members if m.task_id not in done))


def _join_process_group(device: str):
    from harness.train import distributed

    if not distributed.wanted():
        return None
    if ":" in device:
        raise ConfigError(f"--device {device} under torchrun: each rank takes the GPU of its LOCAL_RANK (or the one "
                          "GPU it sees); pass --device cuda")
    return distributed.init_from_env(device_type=device)


def _leave_process_group(dist: Any) -> None:
    if dist is not None:
        from harness.train import distributed

        distributed.leave(dist)


def _broadcast_path(run_dir: Path | None, dist) -> Path | None:
    """Rank 0's run dir to every rank (None: rank 0 could not start the run)."""
    if dist is None:
        return run_dir
    import torch.distributed as torch_dist

    holder = [str(run_dir) if run_dir is not None else None]
    torch_dist.broadcast_object_list(holder, src=0)
    return None if holder[0] is None else Path(holder[0])


class _NullWriter:
    """Non-zero ranks of a distributed run compute but never write."""

    def write(self, record: dict[str, Any]) -> RecordBase:
        return as_written(record)[1]

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
    shard: tuple[int, int] | None = None,
) -> RecordBase:
    """Execute one task and append its record; never raises for a task failure.

    ``earlier`` holds this task's records from before a resume; a skip reason already in ``reported_skips``
    is not logged again (one line for a missing dataset, however many tasks need it).
    """
    reported_skips = set() if reported_skips is None else reported_skips
    if task.members:
        timed = _time_groups([task], suite=suite, options=RunOptions())
        return _group_records(task, timed[task.task_id], writer=writer, shard=shard)
    base = _base_fields(task, shard)
    ctx = TaskContext(
        run_dir=run_dir,
        emit=lambda rec: writer.write(_derived_record(base, rec)),
        done_records=earlier or [],
        data_dir=data_dir,
        distributed=dist,
    )
    seed_everything(task.seed if task.seed is not None else suite.seed)
    start = time.perf_counter()
    try:
        record = _ok_record(base, _executor(task)(task, ctx))
    except TaskSkipped as exc:
        if str(exc) not in reported_skips:
            reported_skips.add(str(exc))
            log.warning("%s", exc)
        record = {**base, "status": "skipped", "reason": str(exc)}
    except RecordWriteError:
        raise  # the run cannot go on (a full disk): not this task's failure
    except KeyboardInterrupt as exc:
        if type(exc) is KeyboardInterrupt:
            raise  # Ctrl-C: stop the run (the CLI says how to resume)
        record = _error_record(base, task, exc)  # a subclass raised by model code is that code's failure
    except SystemExit as exc:  # a builder calling sys.exit() must not end the whole run
        record = _error_record(base, task, exc, message=f"the task called sys.exit({exc.code!r})")
    except Exception as exc:  # noqa: BLE001 - any task failure becomes an error record; the suite goes on
        record = _error_record(base, task, exc)
    record["wall_s"] = time.perf_counter() - start
    return writer.write(record)


def _base_fields(task: Task, shard: tuple[int, int] | None) -> dict[str, Any]:
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
    if isinstance(task.spec, TimingSpec) and task.model is not None:  # a timed model: the mode it ran in
        mode = task.spec.mode
        base.update(dtype=mode.dtype, channels_last=mode.channels_last, compile=mode.compile)
    if shard is not None:  # which process measured it: the gate normalises by that process's reference
        base["shard"] = {"index": shard[0], "count": shard[1]}
    return base


def _time_groups(groups: list[Task], *, suite: Suite, options: RunOptions) -> dict[str, list[Any]]:
    """Time every group in one session of worker processes (``harness.tasks.timing.execute_groups``); per task id,
    each member's payload or ``MemberFailed``. A session that cannot run fails every member with its error."""
    import functools

    import torch

    from harness.tasks.timing import MemberFailed, execute_groups

    start = time.perf_counter()

    def said(k: int, n: int) -> None:
        log.info("timing: process %d of %d (%.0f s)", k, n, time.perf_counter() - start)

    try:
        timed: dict[str, tuple[list[Any], float]] = execute_groups(
            groups, threads=torch.get_num_threads(), seed=suite.seed,
            setup=functools.partial(import_plugins, suite.imports) if suite.imports else None, on_process=said)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the session could not run: every member's error
        wall_s = time.perf_counter() - start
        timed = {t.task_id: ([MemberFailed(exc)] * len(t.members), wall_s) for t in groups}
    line = contention_line(timed)
    if line is not None and options.notify is not None:
        options.notify(line)
    return {k: [(p, wall_s) for p in payloads] for k, (payloads, wall_s) in timed.items()}


def contention_line(timed: dict[str, tuple[list[Any], float]]) -> str | None:
    """One line for the terminal when processes were timed while others oversubscribed the cores."""
    runs: dict[int, list[dict[str, Any]]] = {}  # a process's runs: one per timing group it timed
    for payloads, _ in timed.values():
        for p in payloads:
            for run in (p.get("process_runs") or ()) if isinstance(p, dict) else ():
                runs.setdefault(run["index"], []).append(run)
    hit = sorted(i for i, group_runs in runs.items() if any(r.get("contended") for r in group_runs))
    if not hit:
        return None
    worst = max((r["load"]["other_cores"] for i in hit for r in runs[i] if r.get("contended") and r.get("load")),
                default=0.0)
    return (f"⚠ timed under contention: in {len(hit)} of {len(runs)} processes other processes kept up to "
            f"{worst:.2f} of the cores busy, fewer free than the timing's threads; the report marks these ratios. "
            "For numbers to trust, rerun on a quiet machine (stop the other work, or --wait-quiet 300)")


def _group_records(task: Task, payloads: list[Any], *, writer: RecordWriter,
                   shard: tuple[int, int] | None) -> RecordBase:
    """One record per member of a timed group (an error record for a member that failed)."""
    from harness.tasks.timing import MemberFailed, MemberSkipped

    records = []
    for member, (payload, wall_s) in zip(task.members, payloads, strict=True):
        base = _base_fields(member, shard)
        if isinstance(payload, MemberFailed):
            # an error a worker reported keeps the type it had there
            record = _error_record(base, member, payload.error, kind=getattr(payload.error, "kind", None))
        elif isinstance(payload, MemberSkipped):
            record = {**base, "status": "skipped", "reason": str(payload)}
        else:
            record = _ok_record(base, payload)
        record["wall_s"] = wall_s
        records.append(writer.write(record))
    errors = [r for r in records if isinstance(r, FailedRecord)]
    return errors[0] if errors else records[0]


def _ok_record(base: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The task's fields and the executor's measured ones: each field has one writer."""
    both = sorted(set(base) & set(payload))
    if both:
        kind = base.get("kind", payload.get("kind"))
        raise HarnessError(f"the {kind} executor wrote the task's field(s) {', '.join(both)}, which the runner "
                           "writes (a harness bug)")
    return {**base, **payload, "status": "ok"}


def _derived_record(base: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A record a task writes besides its own (an epoch, an attention unit): it names its kind and status, and
    may name its own task id; every other field has one writer."""
    inherited = {k: v for k, v in base.items() if k not in ("task_id", "kind") or k not in record}
    return _ok_record(inherited,
                      {k: v for k, v in record.items() if k != "status"}) | {"status": record.get("status", "ok")}


def _error_record(base: dict[str, Any], task: Task, exc: BaseException, *,
                  message: str | None = None, kind: str | None = None) -> dict[str, Any]:
    if message is None:
        message = f"the task called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else str(exc)
    message = one_line(message or type(exc).__name__)  # one line, also in the report's problems table
    log.error("task %s failed: %s: %s", task.task_id, type(exc).__name__, message)
    log.debug("%s", traceback.format_exc())
    return {**base, "status": "error", "error": {"type": kind or type(exc).__name__, "message": message}}


def _executor(task: Task) -> Executor:
    table = executors()
    if task.kind not in table:
        raise HarnessError(f"task kind {task.kind!r} has no executor in this harness version")
    return table[task.kind]
