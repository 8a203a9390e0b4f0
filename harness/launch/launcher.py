"""Submit a suite's shards as submitit jobs, wait for them, resubmit a failed shard once, merge the shard run dirs.

``slurm``: one job array (``submit_array``) with the ``launcher`` section's resources; ``local``: processes on
this machine through submitit's local executor (how CI tests the whole path). Everything a launch writes is in
its launch dir ``<out>/<suite>/launch-<id>/``: ``suite.yaml`` (the resolved suite every shard runs, so a
requeue runs the same one), ``launch.json`` (shards, job ids, log paths, outcomes), ``logs/`` (submitit's),
``shard-IofN/`` (each shard's ``--out``). ``finish`` merges the shard run dirs into ``<out>/<suite>/<id>``
exactly as ``merge`` does; a shard that failed twice is named in the merged manifest (``incomplete``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.schema import LauncherSection, Suite
from harness.errors import ConfigError, Interrupted
from harness.fileio import write_json_atomic, write_text_atomic
from harness.launch.finish import LAUNCH_FILE
from harness.launch.shard import ShardJob, shard_run_dir
from harness.measure.load import usable_cores
from harness.results.store import create_run_dir, new_run_id, utc_now

if TYPE_CHECKING:
    from harness.runner import RunRequest

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install -e ".[slurm]"'
MAX_ATTEMPTS = 2  # a failed shard is resubmitted once
Notify = Callable[[str], None]
NO_SRUN = ("--launcher slurm: no `srun` on PATH; submit from a SLURM login node, or run the shards on this machine "
           "with --launcher local")


def require_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError(f"--launcher needs submitit, which is not installed; install it with {INSTALL_HINT}") \
            from None
    return submitit


@dataclass(frozen=True, kw_only=True)
class LaunchOptions:
    executor: str  # "slurm" | "local"
    shards: int
    out_root: Path
    device: str = "auto"
    request: RunRequest | None = None  # what every shard runs (its shard, --out and --resume added per shard)
    wait: bool = True
    progress: bool = True
    argv: list[str] = field(default_factory=list)
    poll_s: float | None = None  # None: 0.5 s locally, 30 s on SLURM


@dataclass(frozen=True)
class Launched:
    launch_dir: Path
    job_ids: list[str]
    merge_command: str


def merge_command(launch_dir: Path, out_root: Path, reports_root: Path | None = None) -> str:
    words = ["python", "-m", "harness", "merge", str(launch_dir), "--out", str(out_root)]
    return shlex.join(words + (["--reports", str(reports_root)] if reports_root is not None else []))


# ------------------------------------------------------------------------------------------- resources


def shard_resources(suite: Suite, *, device: str) -> dict[str, int]:
    """Tasks and GPUs per shard: one task per GPU when ``train.gpus`` > 1 (gloo processes on the CPU)."""
    section = suite.launcher or LauncherSection()
    tasks = suite.train.gpus if suite.train is not None else 1
    gpus = section.gpus_per_node if section.gpus_per_node is not None else (0 if device == "cpu" else tasks)
    if device != "cpu" and gpus < tasks:
        raise ConfigError(f"train.gpus: {tasks} trains each shard on {tasks} GPUs, but launcher.gpus_per_node is "
                          f"{gpus}; raise it (or --slurm gpus_per_node={tasks})")
    return {"tasks": tasks, "gpus": gpus}


def slurm_parameters(suite: Suite, *, device: str) -> dict[str, Any]:
    """The ``SlurmExecutor.update_parameters`` of a suite's shards (sbatch flags of the job array)."""
    section = suite.launcher or LauncherSection()
    res = shard_resources(suite, device=device)
    params: dict[str, Any] = {
        "job_name": f"harness-{suite.name}", "time": section.time, "ntasks_per_node": res["tasks"],
        "gpus_per_node": res["gpus"] or None, "partition": section.partition, "account": section.account,
        "qos": section.qos, "constraint": section.constraint, "cpus_per_task": section.cpus_per_task,
        "mem": section.mem, "exclusive": True if section.exclusive else None, "signal_delay_s": section.signal_delay_s,
        "setup": list(section.setup) or None, "array_parallelism": section.array_parallelism,
    }
    return {k: v for k, v in params.items() if v is not None}


def local_parallelism(suite: Suite, shards: int) -> int:
    """At most this many local shards at once: one when the suite times models (they must not share the CPU), and
    never more than the cores this process may use (each shard is a process that computes)."""
    section = suite.launcher or LauncherSection()
    if section.array_parallelism is not None:
        wanted = section.array_parallelism
    else:
        wanted = 1 if suite.latency is not None or suite.throughput is not None else shards
    return max(1, min(wanted, shards, usable_cores()))


def fitting_shards(suite: Suite, shards: int, *, device: str) -> int:
    """``shards``, lowered to the number the suite can fill (a shard with no task would be an empty job)."""
    from harness.plan import expand, shard_units

    units = shard_units(expand(suite, device="cuda" if device.startswith("cuda") else "cpu"))
    return max(1, min(shards, units))


def make_executor(kind: str, suite: Suite, *, folder: Path, device: str) -> Any:
    submitit = require_submitit()
    if kind == "slurm":
        try:
            executor = submitit.SlurmExecutor(folder=folder)
        except RuntimeError:
            raise ConfigError(NO_SRUN) from None
        try:
            executor.update_parameters(**slurm_parameters(suite, device=device))
        except ValueError as exc:
            raise ConfigError(f"launcher: sbatch refuses these settings: {str(exc).splitlines()[0]}") from None
        return executor
    executor = submitit.LocalExecutor(folder=folder)
    res = shard_resources(suite, device=device)
    executor.update_parameters(timeout_min=(suite.launcher or LauncherSection()).time, tasks_per_node=res["tasks"],
                               gpus_per_node=res["gpus"])
    return executor


# ------------------------------------------------------------------------------------------- the launch


@dataclass
class _Shard:
    job: ShardJob
    handle: Any = None
    state: str = "pending"  # pending | running | done | failed
    reason: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    ended_without_result: float | None = None

    def to_json(self, launch_dir: Path) -> dict[str, Any]:
        return {"name": self.job.name, "folder": str(Path(self.job.folder).relative_to(launch_dir)),
                "state": self.state, "reason": self.reason, "attempts": self.attempts}


def _shard_jobs(suite: Suite, suite_file: Path, launch_dir: Path, options: LaunchOptions) -> list[ShardJob]:
    from harness.runner import RunOptions, RunRequest

    n = options.shards
    base = options.request or RunRequest(suite=suite, options=RunOptions(device=options.device, progress=False))
    jobs = []
    for i in range(n):
        folder = launch_dir / f"shard-{i + 1}of{n}"
        # the command this shard's run is equivalent to, for its manifest and done.json
        argv = ["run", str(suite_file), "--shard", f"{i + 1}/{n}", "--device", options.device, "--out", str(folder)]
        request = replace(base, suite=suite, options=replace(
            base.options, shard=(i, n), out_root=folder, device=options.device, progress=False, argv=argv,
            notify=None))
        jobs.append(ShardJob(index=i, count=n, folder=str(folder), request=request))
    return jobs


def launch(suite: Suite, *, options: LaunchOptions, notify: Notify = lambda line: None) -> Launched:
    """Submit the shards; with ``options.wait`` wait for them (resubmitting a failure once), else return at once."""
    require_submitit()
    if options.shards < 1:
        raise ConfigError(f"--shards {options.shards}: give at least 1")
    fitting = fitting_shards(suite, options.shards, device=options.device)
    if fitting < options.shards:
        notify(f"--shards {options.shards}: the suite splits into at most {fitting} shard(s) (its models and timing "
               f"groups); launching {fitting}")
        options = replace(options, shards=fitting)
    shard_resources(suite, device=options.device)  # a bad setting stops here, before anything is written
    if options.executor == "slurm" and shutil.which("srun") is None:
        raise ConfigError(NO_SRUN)
    if options.executor == "local" and not options.wait and local_parallelism(suite, options.shards) < options.shards:
        raise ConfigError("--no-wait with --launcher local starts every shard at once, but at most "
                          f"{local_parallelism(suite, options.shards)} may run together here (the suite times models, "
                          "or launcher.array_parallelism says so); wait for them instead")
    run_id = new_run_id()
    launch_dir = create_run_dir(options.out_root, suite.name, f"launch-{run_id}")
    suite_file = launch_dir / "suite.yaml"
    write_text_atomic(suite_file, json.dumps(suite.to_dict(), indent=1) + "\n")  # JSON is YAML
    executor = make_executor(options.executor, suite, folder=launch_dir / "logs", device=options.device)
    shards = [_Shard(job) for job in _shard_jobs(suite, suite_file, launch_dir, options)]
    parallel = options.shards if options.executor == "slurm" else local_parallelism(suite, options.shards)
    state = {"run_id": run_id, "suite_name": suite.name, "created_utc": utc_now(), "argv": options.argv,
             "executor": options.executor, "out_root": str(options.out_root)}
    _submit(executor, shards[:parallel], array=options.executor == "slurm", notify=notify)
    _save(launch_dir, state, shards)
    command = merge_command(launch_dir, options.out_root)
    if options.wait:
        try:
            _wait(executor, shards, launch_dir=launch_dir, state=state, parallel=parallel, options=options,
                  notify=notify)
        except KeyboardInterrupt as exc:
            raise Interrupted(merge_command=command) from exc  # the CLI says how to merge later
    return Launched(launch_dir=launch_dir, job_ids=[a["job_id"] for s in shards for a in s.attempts],
                    merge_command=command)


def _submit(executor: Any, shards: list[_Shard], *, array: bool, notify: Notify) -> None:
    if not shards:
        return
    jobs = [s.job for s in shards]
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes a refusal, which the error below says
            handles = executor.submit_array(jobs) if array else [executor.submit(job) for job in jobs]
    except RuntimeError as exc:  # sbatch said no (a partition or account that does not exist, a limit)
        lines = [line for line in str(exc).splitlines() if line.strip()]
        said = next((line.strip() for line in lines if "error" in line.lower()), lines[-1] if lines else "")
        raise ConfigError(f"submitting shard(s) {', '.join(j.name for j in jobs)} failed: {said}") from None
    for shard, handle in zip(shards, handles, strict=True):
        shard.handle, shard.state, shard.ended_without_result = handle, "running", None
        shard.attempts.append({"job_id": str(handle.job_id), "attempt": shard.job.attempt,
                               "stdout": str(handle.paths.stdout), "stderr": str(handle.paths.stderr)})
        notify(f"shard {shard.job.name}: job {handle.job_id}, log {handle.paths.stderr}")


def _save(launch_dir: Path, state: dict[str, Any], shards: list[_Shard]) -> None:
    write_json_atomic(launch_dir / LAUNCH_FILE, {**state, "shards": [s.to_json(launch_dir) for s in shards]})


def _outcome(shard: _Shard, *, grace_s: float) -> tuple[str, str | None] | None:
    """None while the shard runs (or waits in the queue, or was requeued); else ("done" | "failed", why)."""
    handle = shard.handle
    if not handle.done():
        return None
    result = handle.paths.result_pickle
    if result.exists():
        from submitit.core.utils import pickle_load

        outcome, value = pickle_load(result)
        if outcome == "success":
            return "done", None
        lines = [line for line in str(value).strip().splitlines() if line.strip()]
        return "failed", lines[-1] if lines else "the job raised an exception"
    # ended without a result: killed (out of memory, a node failure, scancel); a shared filesystem may show the
    # result a little after the scheduler says the job ended
    now = time.monotonic()
    shard.ended_without_result = shard.ended_without_result or now
    if now - shard.ended_without_result < grace_s:
        return None
    return "failed", f"the shard's process ended without a result (killed?; state {handle.state})"


def _wait(executor: Any, shards: list[_Shard], *, launch_dir: Path, state: dict[str, Any], parallel: int,
          options: LaunchOptions, notify: Notify) -> None:
    poll_s = options.poll_s if options.poll_s is not None else (30.0 if options.executor == "slurm" else 0.5)
    grace_s = 0.0 if options.executor == "local" else 60.0
    bar = _progress_bar(len(shards), enabled=options.progress)
    if bar is not None:
        outer = notify

        def notify(line: str) -> None:  # a line above the bar, not through it
            bar.clear()
            outer(line)
            bar.refresh()

    while True:
        for shard in [s for s in shards if s.state == "running"]:
            ended = _outcome(shard, grace_s=grace_s)
            if ended is None:
                continue
            shard.state, shard.reason = ended
            if shard.state == "failed" and shard.job.attempt < MAX_ATTEMPTS:
                notify(f"shard {shard.job.name} failed ({shard.reason}); resubmitting it once with --resume "
                       f"{shard_run_dir(Path(shard.job.folder)) or '(no run dir yet: from the start)'}")
                shard.job = shard.job.resubmitted()
                _submit(executor, [shard], array=False, notify=notify)
        running = sum(s.state == "running" for s in shards)
        _submit(executor, [s for s in shards if s.state == "pending"][:max(0, parallel - running)], array=False,
                notify=notify)
        _save(launch_dir, state, shards)
        counts = {k: sum(s.state == k for s in shards) for k in ("done", "running", "failed", "pending")}
        if bar is not None:
            bar.n = counts["done"] + counts["failed"]
            bar.set_postfix_str(", ".join(f"{v} {k}" for k, v in counts.items() if v), refresh=True)
        if counts["running"] + counts["pending"] == 0:
            break
        time.sleep(poll_s)
    if bar is not None:
        bar.close()


def _progress_bar(total: int, *, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="shards", unit="shard", file=sys.stderr, dynamic_ncols=True, leave=False)
