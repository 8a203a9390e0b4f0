"""What one shard runs where it lands: its ``RunRequest`` (the suite, ``--shard I/N``, ``--out <launch
dir>/shard-IofN``) through the runner, continuing its own run dir (``resume``) when one is there (a resubmission
after a failure, a requeue after preemption or the time limit). A shard that raises carries its exception (type
and message, the task it was on for a ``--fail-fast`` stop) back through submitit to the launcher and the merged
report.

Preemption: SLURM sends the job's signal (USR2, ``signal_delay_s`` before the kill). The handler installed
here stops the shard where it is (the interrupted task wrote no record, so it runs again on resume and is
never recorded twice; a training task continues from its last epoch checkpoint), then hands over to
submitit, which calls ``ShardJob.checkpoint`` and requeues the same job.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.fileio import write_json_atomic
from harness.results.store import MANIFEST, utc_now

if TYPE_CHECKING:
    from harness.runner import RunRequest

DONE_FILE = "done.json"  # written by a shard whose `run` ended with exit code 0


class Preempted(BaseException):
    """Raised by the preemption signal's handler: a BaseException, so no task turns it into an error record."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def shard_run_dir(folder: Path) -> Path | None:
    """The run dir a shard wrote under its ``--out`` folder (``<folder>/<suite>/<run_id>``), if any."""
    found = sorted(p.parent for p in Path(folder).glob(f"*/*/{MANIFEST}"))
    return found[-1] if found else None


@dataclass(frozen=True, kw_only=True)
class ShardJob:
    """The callable submitit pickles for one shard (``index`` 0-based, as ``--shard`` stores it)."""

    index: int
    count: int
    folder: str  # this shard's --out
    request: RunRequest  # the shard's run, without resume
    attempt: int = 1  # 2: resubmitted after a failure

    @property
    def name(self) -> str:
        return f"{self.index + 1}/{self.count}"

    def current(self) -> RunRequest:
        """The request this shard runs now: its own run dir resumed when it has one."""
        run_dir = shard_run_dir(Path(self.folder))
        if run_dir is None:
            return self.request
        options = self.request.options
        return replace(self.request, options=replace(options, resume=run_dir,
                                                     argv=[*options.argv, "--resume", str(run_dir)]))

    def resubmitted(self) -> ShardJob:
        return replace(self, attempt=self.attempt + 1)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this on preemption / time-out: requeue the same shard; it resumes its run dir."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)

    def __call__(self) -> str | None:
        from harness.runner import execute

        rank = _export_distributed()
        request = self.current()
        with _preemption_stops_the_run() as preempted:
            execute(request)  # what it raises is the shard's failure, with its type and message
        if preempted:
            return None  # a non-zero rank: rank 0 checkpoints and requeues the job
        if rank != 0:
            return None
        run_dir = shard_run_dir(Path(self.folder))
        write_json_atomic(Path(self.folder) / DONE_FILE, {"run_dir": str(run_dir), "attempt": self.attempt,
                                                          "utc": utc_now(), "argv": request.options.argv})
        return str(run_dir)


def _in_submitit_job() -> bool:
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def _export_distributed() -> int:
    """A shard of several tasks (``train.gpus``): export torchrun's variables for this task; returns its rank.

    One task per GPU under SLURM, processes on this machine under the local executor; the runner then joins
    the process group as under torchrun (NCCL on GPUs, gloo on the CPU). ``CUDA_VISIBLE_DEVICES`` is left as
    SLURM set it: with the node's GPUs all visible a rank trains on ``cuda:LOCAL_RANK``, with one GPU bound to
    each task (``--gpus-per-task=1``) on the one it sees (``harness.train.distributed.cuda_index``).
    """
    if not _in_submitit_job():
        return 0
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    job = JobEnvironment()
    if job.num_tasks <= 1:
        return 0
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    return job.global_rank


@contextmanager
def _preemption_stops_the_run() -> Iterator[list[bool]]:
    """Turn the preemption signal into ``Preempted`` while the run goes on, then let submitit requeue."""
    stopped: list[bool] = []
    if not _in_submitit_job():
        yield stopped
        return
    from submitit import JobEnvironment

    signum = JobEnvironment._usr_sig()
    submitit_handler = signal.getsignal(signum)

    def stop(number: int, frame: Any) -> None:
        raise Preempted(number)

    signal.signal(signum, stop)
    try:
        yield stopped
    except Preempted as exc:
        signal.signal(signum, submitit_handler)
        stopped.append(True)
        if callable(submitit_handler):
            submitit_handler(exc.signum, None)  # rank 0: checkpoint() → requeue → exit; other ranks return
    finally:
        if signal.getsignal(signum) is stop:
            signal.signal(signum, submitit_handler)
