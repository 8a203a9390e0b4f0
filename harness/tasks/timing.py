"""Latency, throughput and train-step timing groups, and the device-peak task.

A timing task is a group: every model of a section (at one batch size, in one round) timed together by the one
engine (``harness.measure.timer.time_group``), interleaved iteration by iteration. All the timing groups of a
run form one session of the timing driver (``harness.measure.processes``): K fresh worker processes, one after
another, each building the models once and timing every group for its share of the window. Each member gets
one record holding every process's samples, each sample with its process and cycle, and every process's load.
With ``reference: true`` the fixed reference workload is one more member, and every model's record also carries
the reference's samples of the same cycles (the gate's yardstick). Backend flags (cudnn.benchmark, TF32) are
set for each group in the workers and recorded.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from harness.environment import backend_flags
from harness.measure.device import ModeUnsupported, check_mode
from harness.measure.load import Load
from harness.measure.mode import Mode
from harness.measure.peak import measure_peak_gmacs
from harness.measure.processes import GroupOutcome, GroupRequest, MemberRequest, SessionRequest, run_session
from harness.measure.sampling import SampleWindow
from harness.models.registry import create_model
from harness.plan import PeakSpec, Task, TimingSpec
from harness.results.records import LOOP_KINDS
from harness.tasks.context import TaskContext, input_size_of

log = logging.getLogger(__name__)


class MemberFailed(Exception):
    """A member of a group could not be built, prepared or timed; the others are measured all the same."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class WorkerError(Exception):
    """An error a worker process reported (its type's name and message; the exception stayed in the worker)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def process_window(spec: TimingSpec) -> SampleWindow:
    """One process's window per model: the section's window shared out over its rounds and processes."""
    return spec.timing.split(spec.rounds * spec.processes)


class MemberSkipped(Exception):
    """A member whose mode the device cannot run (``harness.measure.device.check_mode``): skipped with the reason,
    never built or timed."""


def member_mode(member: Task) -> Mode:
    spec: TimingSpec = member.spec
    return spec.mode


def build_key(member: Task) -> str:
    """One build per suite model (its label), shared by the groups and modes that time it; two labels are two
    copies, and so is a channels_last member (its weights are converted in place)."""
    assert member.model is not None
    m = member.model
    return f"{m.display}:{m.name}:{sorted(m.options.items())}" + (":channels_last" * member_mode(member).channels_last)


def _member_request(member: Task, spec: TimingSpec) -> MemberRequest:
    assert member.model is not None  # a timing group's members are models
    return MemberRequest(key=build_key(member),
                         # what the worker unpickles: the registry's builder, not this module
                         factory=functools.partial(create_model, member.model.name, **member.model.options),
                         input_size=input_size_of(member.model, spec.input_size),
                         train=member.kind == "train_throughput", mode=member_mode(member))


def group_request(task: Task) -> GroupRequest:
    spec: TimingSpec = task.spec
    members = tuple(_member_request(m, spec) for m in task.members)
    return GroupRequest(name=task.task_id, members=members, batch_size=task.batch_size, device=task.device,
                        mode=spec.mode, loops=task.kind in LOOP_KINDS, warmup=spec.timing.warmup,
                        window=process_window(spec), processes=spec.processes,
                        cudnn_benchmark=spec.cudnn_benchmark, tf32=spec.tf32)


Payload = dict[str, Any] | MemberFailed | MemberSkipped


def unsupported(task: Task) -> dict[str, str]:
    """member task id → why the device cannot run its mode, for the members that are skipped."""
    out = {}
    for member in task.members:
        try:
            check_mode(member_mode(member), member.device)
        except ModeUnsupported as exc:
            out[member.task_id] = str(exc)
    return out


def execute_groups(tasks: Sequence[Task], *, threads: int, seed: int, setup: Callable[[], None] | None = None,
                   on_process: Callable[[int, int], None] | None = None) -> dict[str, tuple[list[Payload], float]]:
    """Time every group of ``tasks`` in one session of worker processes; per task id, each member's record
    payload (or ``MemberFailed``, or ``MemberSkipped`` for a mode the device cannot run) and the seconds the group
    was timed for, over all its processes."""
    skipped = {t.task_id: unsupported(t) for t in tasks}
    for reason in dict.fromkeys(r for why in skipped.values() for r in why.values()):
        log.warning("skipped: %s", reason)
    runnable = [replace(t, members=tuple(m for m in t.members if m.task_id not in skipped[t.task_id])) for t in tasks]
    timed = [t for t in runnable if t.members]
    request = SessionRequest(groups=tuple(group_request(t) for t in timed), threads=threads, seed=seed, setup=setup)
    outcomes = dict(zip([t.task_id for t in timed], run_session(request, on_process=on_process) if timed else [],
                        strict=True))
    session = uuid.uuid4().hex[:12]
    out: dict[str, tuple[list[Payload], float]] = {}
    for task, mine in zip(tasks, runnable, strict=True):
        outcome = outcomes.get(task.task_id)
        payloads = iter(_payloads(mine, outcome, session) if outcome is not None else [])
        out[task.task_id] = ([MemberSkipped(skipped[task.task_id][m.task_id]) if m.task_id in skipped[task.task_id]
                              else next(payloads) for m in task.members],
                             sum(p.wall_s for p in outcome.timed) if outcome is not None else 0.0)
    return out


def _payloads(task: Task, outcome: GroupOutcome, session: str) -> list[Payload]:
    spec: TimingSpec = task.spec
    window = outcome.request.window
    reference = next((i for i, m in enumerate(task.members) if m.kind == "reference"), None)
    out: list[Payload] = []
    for i in range(len(task.members)):
        record = _member_record(task, outcome, i, session)
        if isinstance(record, MemberFailed):
            out.append(record)
            continue
        record["window"] = {"min_time_s": window.min_time_s, "max_time_s": window.max_time_s,
                            "min_samples": window.min_samples, "rounds": spec.rounds,
                            "cycles": sum(p.cycles for p in outcome.timed)}
        if reference is not None and i != reference:
            ref = _member_record(task, outcome, reference, session)
            if not isinstance(ref, MemberFailed):
                record["reference_samples_ms"] = ref["samples_ms"]
                record["reference_cycles"] = ref["cycles"]
                record["reference_processes"] = ref["processes"]
        out.append(record)
    return out


def _member_record(task: Task, outcome: GroupOutcome, i: int, session: str) -> Payload:
    """Member ``i``'s samples from every process that timed it, each sample with its process and cycle."""
    group = outcome.request
    samples: list[float] = []
    cycles: list[int] = []
    processes: list[int] = []
    loops: list[float] = []
    images = 0
    runs: list[dict[str, Any]] = []
    compiled: list[dict[str, Any]] = []  # CompileStats of each process that timed it, in process order
    first = None
    errors = []
    for part in outcome.parts:
        run: dict[str, Any] = {"index": part.index, "pairing": part.pairing, "cycles": part.cycles,
                               "wall_s": part.wall_s, "load": part.load.to_record() if part.load else None,
                               "contended": part.contended}
        mine = part.members[i] if part.error is None else None
        error = part.error if mine is None else mine.error
        if error is not None or mine is None or not mine.samples_ms:
            error = error or {"type": "NoSamples", "message": "the process timed no sample of this model"}
            run["error"] = error
            errors.append(error)
            runs.append(run)
            continue
        runs.append(run)
        if mine.compile is not None:
            compiled.append(mine.compile)
        first = first or (part, mine)
        samples += mine.samples_ms
        cycles += mine.cycles
        processes += [part.index] * len(mine.samples_ms)
        loops += mine.loop_samples_s
        images += len(mine.loop_samples_s) * mine.iters_per_loop * group.batch_size
    if first is None:
        error = errors[0] if errors else {"type": "NoSamples", "message": "no process timed this model"}
        return MemberFailed(WorkerError(error["type"], error["message"]))
    part, mine = first
    memory = next((p.members[i].memory for p in outcome.timed if p.members[i].memory is not None), None) or {}
    timed = [p for p in outcome.timed if p.load is not None]
    record: dict[str, Any] = {
        "samples_ms": samples, "warmup_ms": list(mine.warmup_ms), "threads": part.threads,
        "peak_mem_bytes": memory.get("peak_bytes"), "iter_peak_mem_bytes": memory.get("iteration_peak_bytes"),
        "mem_method": memory.get("method"),
        "timer": "cuda_event" if group.device.startswith("cuda") else "perf_counter_ns",
        "cudnn_benchmark": part.flags.get("cudnn_benchmark"), "tf32": part.flags.get("tf32"),
        "cycles": cycles, "pairing": session, "group_size": len(group.members),
        "load": _pooled_load([p.load for p in timed]).to_record() if timed else None,
        "processes": processes, "process_runs": runs, "processes_planned": group.processes,
        "input_size": list(group.members[i].input_size),
    }
    if compiled:
        record.update(compile_s=[c["seconds"] for c in compiled], compiled_graphs=max(c["graphs"] for c in compiled),
                      graph_breaks=max(c["graph_breaks"] for c in compiled),
                      graph_break_reasons=list(dict.fromkeys(r for c in compiled for r in c["break_reasons"])),
                      compile_cache_hits=[c["cache_hits"] for c in compiled])
    if group.loops:
        total = sum(loops)
        record.update(loop_samples_s=loops, images=images, samples_per_s=images / total if total > 0 else 0.0)
    return record


def _pooled_load(loads: Sequence[Load]) -> Load:
    """The session's load over all processes: wall-time-weighted cores, the highest load average, all switches."""
    wall = sum(x.wall_s for x in loads) or 1e-9
    return Load(wall_s=wall, other_cores=sum(x.other_cores * x.wall_s for x in loads) / wall,
                own_cores=sum(x.own_cores * x.wall_s for x in loads) / wall,
                loadavg_1m=max(x.loadavg_1m for x in loads),
                involuntary_switches=sum(x.involuntary_switches for x in loads), cores=loads[0].cores)


def execute_peak(task: Task, ctx: TaskContext) -> dict[str, Any]:
    """Achieved GMAC/s of a large matmul in the section's dtype: the utilisation denominator."""
    spec: PeakSpec = task.spec
    with backend_flags(cudnn_benchmark=spec.cudnn_benchmark, tf32=spec.tf32):
        gmacs = measure_peak_gmacs(task.device, dtype=spec.dtype)
    return {"peak_gmacs_per_s": gmacs, "dtype": spec.dtype, "threads": torch.get_num_threads(), "tf32": spec.tf32}


EXECUTORS = {"peak": execute_peak}
GROUP_KINDS = ("latency", "throughput", "train_throughput")
