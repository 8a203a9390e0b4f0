"""Latency, throughput and train-step timing groups, and the device-peak task.

A timing task is a group: every model of a section (at one batch size, in one round) is built, prepared and
warmed up, then the group is timed together by the one engine (``harness.measure.timer.time_group``),
interleaved iteration by iteration in this process, and each member gets its own record. With
``reference: true`` the fixed reference workload is one more member, and every model's record also carries
the reference's samples of the same cycles (the gate's yardstick). Backend flags (cudnn.benchmark, TF32)
are set for the group only and recorded.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from harness.environment import backend_flags
from harness.measure.peak import measure_peak_gmacs
from harness.measure.timer import PreparedModel, group_window, prepare_benchmark, time_group
from harness.plan import PeakSpec, Task, TimingSpec
from harness.results.records import LOOP_KINDS
from harness.tasks import TaskContext, build, input_size_of

log = logging.getLogger(__name__)



class MemberFailed(Exception):
    """A member of a group could not be built, prepared or timed; the others are measured all the same."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _prepare(member: Task, spec: TimingSpec) -> tuple[PreparedModel, tuple[float, ...], tuple[int, int, int]]:
    size = input_size_of(member.model, spec.input_size)
    bench = prepare_benchmark(build(member.model), input_shape=size, batch_size=member.batch_size,
                              device=member.device, mode=spec.mode, train=member.kind == "train_throughput")
    return bench, tuple(bench.warmup(spec.timing.warmup)), size


def execute_group(task: Task, ctx: TaskContext) -> list[dict[str, Any] | MemberFailed]:
    """Each member's record payload, or ``MemberFailed`` for a member that raised (it becomes its error record)."""
    spec: TimingSpec = task.spec
    loops = task.kind in LOOP_KINDS
    per_model = spec.timing.split(spec.rounds)
    out: list[dict[str, Any] | MemberFailed | None] = [None] * len(task.members)
    ready: list[tuple[int, PreparedModel, tuple[float, ...], tuple[int, int, int]]] = []
    with backend_flags(cudnn_benchmark=spec.cudnn_benchmark, tf32=spec.tf32):
        for i, member in enumerate(task.members):
            try:
                ready.append((i, *_prepare(member, spec)))
            except KeyboardInterrupt as exc:
                if type(exc) is KeyboardInterrupt:
                    raise  # Ctrl-C stops the run; a subclass raised by model code is that model's failure
                out[i] = MemberFailed(exc)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - a member that cannot be built fails alone
                out[i] = MemberFailed(exc)
        if ready:
            benches = [b for _, b, _, _ in ready]
            iters = [b.auto_iters_per_loop(per_model.min_time_s / per_model.min_samples) for b in benches] \
                if loops else None
            group = time_group(benches, group_window(per_model, len(benches)), iters_per_loop=iters)
            reference = _reference_part(task, ready, group)
            for (i, bench, warmup_ms, size), timing in zip(ready, group.members, strict=True):
                if timing.error is not None:
                    out[i] = MemberFailed(timing.error)
                    continue
                result = bench.result(timing, group, warmup_ms=warmup_ms, round_index=task.round or 0)
                record = result.to_record()
                record["input_size"] = list(size)
                record["window"] = {"min_time_s": per_model.min_time_s, "max_time_s": per_model.max_time_s,
                                    "min_samples": per_model.min_samples, "rounds": spec.rounds,
                                    "cycles": group.cycles}
                if reference is not None and task.members[i].kind != "reference":
                    record["reference_samples_ms"], record["reference_cycles"] = reference
                out[i] = record
    return [x if x is not None else MemberFailed(RuntimeError("not timed")) for x in out]


def _reference_part(task: Task, ready: list, group: Any) -> tuple[list[float], list[int]] | None:
    for (i, _, _, _), timing in zip(ready, group.members, strict=True):
        if task.members[i].kind == "reference" and timing.error is None:
            return list(timing.samples_ms), list(timing.cycles)
    return None


def execute_peak(task: Task, ctx: TaskContext) -> dict[str, Any]:
    """Achieved GMAC/s of a large matmul in the section's dtype: the utilisation denominator."""
    spec: PeakSpec = task.spec
    with backend_flags(cudnn_benchmark=spec.cudnn_benchmark, tf32=spec.tf32):
        gmacs = measure_peak_gmacs(task.device, dtype=spec.dtype)
    return {"peak_gmacs_per_s": gmacs, "dtype": spec.dtype, "threads": torch.get_num_threads(), "tf32": spec.tf32}


EXECUTORS = {"peak": execute_peak}
GROUP_EXECUTORS = {"latency": execute_group, "throughput": execute_group, "train_throughput": execute_group}
