"""A test plugin (``--import``) that makes a launched shard end the ways cluster jobs end: killed (SIGKILL) or
preempted (submitit's preemption signal) right after its K-th record.

``HARNESS_TEST_SHARD_FAULT`` lists the faults: ``I/N:kill:K`` or ``I/N:preempt:K``, comma-separated, for shard I of N;
a fault strikes the shard's first start only, unless it ends in ``:always``. ``HARNESS_TEST_SHARD_FAULT_DIR`` keeps a
marker per shard that has faulted, which is how a restarted shard knows it is not on its first start. Only a process
that submitit runs as a job is touched: the launcher and the merge import this plugin too.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from harness.results.store import RecordWriter

SPEC_ENV = "HARNESS_TEST_SHARD_FAULT"
DIR_ENV = "HARNESS_TEST_SHARD_FAULT_DIR"


def _faults() -> dict[str, tuple[str, int, bool]]:
    out = {}
    for spec in filter(None, os.environ.get(SPEC_ENV, "").split(",")):
        name, how, after, *always = spec.split(":")
        out[name] = (how, int(after), always == ["always"])
    return out


def _install() -> None:
    faults = _faults()
    if not faults or "SUBMITIT_EXECUTOR" not in os.environ:
        return
    write = RecordWriter.write
    written: dict[str, int] = {}

    def write_then_fault(self: RecordWriter, record: dict[str, Any]) -> dict[str, Any]:
        out = write(self, record)
        shard = record.get("shard") or {}
        name = f"{shard.get('index', -1) + 1}/{shard.get('count')}"
        if name not in faults:
            return out
        how, after, always = faults[name]
        marker = Path(os.environ[DIR_ENV]) / name.replace("/", "of")
        if marker.exists() and not always:
            return out  # a restart: the fault was for the first start
        written[name] = written.get(name, 0) + 1
        if written[name] == after:
            marker.touch()
            from submitit import JobEnvironment

            os.kill(os.getpid(), signal.SIGKILL if how == "kill" else JobEnvironment._usr_sig())
        return out

    RecordWriter.write = write_then_fault  # type: ignore[method-assign]


_install()
