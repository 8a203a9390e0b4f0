"""What one shard runs where it lands: ``python -m harness run SUITE --shard I/N --out <launch dir>/shard-IofN``,
in-process, continuing its own run dir with ``--resume`` when one is there (a resubmission after a failure,
a requeue after preemption or the time limit).

Preemption: SLURM sends the job's signal (USR2, ``signal_delay_s`` before the kill). The handler installed
here stops the shard where it is (the interrupted task wrote no record, so it runs again on resume and is
never recorded twice; a training task continues from its last epoch checkpoint), then hands over to
submitit, which calls ``ShardJob.checkpoint`` and requeues the same job.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.fileio import write_json_atomic
from harness.results.store import MANIFEST, utc_now

DONE_FILE = "done.json"  # written by a shard whose `run` ended with exit code 0
# For the launcher's own tests: "I/N:kill:K" (SIGKILL) or "I/N:preempt:K" (the preemption signal) makes
# shard I of N stop itself right after its K-th record, the first time it starts ("I/N:kill:K:always": every
# time; comma-separated: several).
FAULT_ENV = "HARNESS_LAUNCH_TEST_FAULT"


class ShardFailed(HarnessError):
    """A shard's ``run`` ended with a non-zero exit code (its log says why)."""


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
    argv: tuple[str, ...]  # `run SUITE --shard I/N ...`, without --out and --resume
    folder: str  # this shard's --out
    attempt: int = 1  # 2: resubmitted after a failure

    @property
    def name(self) -> str:
        return f"{self.index + 1}/{self.count}"

    def command(self) -> list[str]:
        """The ``python -m harness`` arguments this shard runs now."""
        run_dir = shard_run_dir(Path(self.folder))
        return [*self.argv, "--out", self.folder, *(["--resume", str(run_dir)] if run_dir is not None else [])]

    def resubmitted(self) -> ShardJob:
        return replace(self, attempt=self.attempt + 1)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this on preemption / time-out: requeue the same shard; it resumes its run dir."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)

    def __call__(self) -> str | None:
        rank = _export_distributed()
        first_start = shard_run_dir(Path(self.folder)) is None
        argv = self.command()
        with _preemption_stops_the_run() as preempted:
            _install_test_fault(self.name, first_start=first_start)
            code = _harness(argv)
        if preempted:
            return None  # a non-zero rank: rank 0 checkpoints and requeues the job
        if code != 0:
            raise ShardFailed(f"shard {self.name}: `python -m harness {' '.join(argv)}` exited with code {code}")
        if rank != 0:
            return None
        run_dir = shard_run_dir(Path(self.folder))
        write_json_atomic(Path(self.folder) / DONE_FILE, {"run_dir": str(run_dir), "attempt": self.attempt,
                                                          "utc": utc_now(), "argv": argv})
        return str(run_dir)


def _harness(argv: list[str]) -> int:
    """``python -m harness ARGV`` in this process (its manifest records these arguments, not submitit's)."""
    from harness.cli import main

    saved = sys.argv
    sys.argv = [str(Path(__file__).resolve().parents[1] / "__main__.py"), *argv]
    try:
        return main(argv)
    finally:
        sys.argv = saved


def _in_submitit_job() -> bool:
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def _export_distributed() -> int:
    """A shard of several tasks (``train.gpus``): export torchrun's variables for this task; returns its rank.

    One task per GPU under SLURM, processes on this machine under the local executor; the runner then joins
    the process group as under torchrun (NCCL on GPUs, gloo on the CPU). The GPUs stay all visible: the runner
    picks ``cuda:LOCAL_RANK``.
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


def _install_test_fault(name: str, *, first_start: bool) -> None:
    mine = [spec.split(":") for spec in os.environ.get(FAULT_ENV, "").split(",") if spec.startswith(f"{name}:")]
    if not mine or not (first_start or mine[0][3:] == ["always"]):
        return
    how, after = mine[0][1:3]
    from submitit import JobEnvironment

    from harness.results.store import RecordWriter

    signum = signal.SIGKILL if how == "kill" else JobEnvironment._usr_sig()
    write = RecordWriter.write
    written = [0]

    def write_then_fault(self: RecordWriter, record: dict[str, Any]) -> dict[str, Any]:
        out = write(self, record)
        written[0] += 1
        if written[0] == int(after):
            os.kill(os.getpid(), signum)
        return out

    RecordWriter.write = write_then_fault  # type: ignore[method-assign]
