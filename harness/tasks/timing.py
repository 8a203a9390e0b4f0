"""Latency, throughput, train-step throughput, reference-workload and device-peak tasks.

Each latency/throughput task is one round of one model: the suite interleaves rounds (A B C ref A B C ref …)
so slow drifts of the machine spread over all models instead of biasing the last one. Backend flags
(cudnn.benchmark, TF32) are set for the task only and recorded.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from harness.environment import backend_flags
from harness.measure.peak import measure_peak_gmacs
from harness.measure.timer import Benchmark, prepare_benchmark
from harness.plan import REFERENCE_MODEL, PeakSpec, Task, TimingSpec
from harness.tasks import TaskContext, build, input_size_of

log = logging.getLogger(__name__)


def _timed(task: Task, *, train: bool, loops: bool, interleave: bool = False) -> dict[str, Any]:
    spec: TimingSpec = task.spec
    window = spec.timing.split(spec.rounds)
    model = build(task.model)
    size = input_size_of(task.model, spec.input_size)
    with backend_flags(cudnn_benchmark=spec.cudnn_benchmark, tf32=spec.tf32):
        bench = prepare_benchmark(model, input_shape=size, batch_size=task.batch_size, device=task.device,
                                  mode=spec.mode, train=train)
        warmup_ms = tuple(bench.warmup(spec.timing.warmup))
        if loops:
            result = bench.throughput(window, round_index=task.round or 0, warmup_ms=warmup_ms)
        else:
            reference = _reference_bench(task, spec) if interleave else None
            result = bench.latency(window, round_index=task.round or 0, warmup_ms=warmup_ms, reference=reference)
    record = result.to_record()
    record.pop("kind", None)
    record.pop("wall_s", None)
    record["input_size"] = list(size)
    record["window"] = {"min_time_s": window.min_time_s, "max_time_s": window.max_time_s,
                        "min_samples": window.min_samples, "rounds": spec.rounds}
    return record


def _reference_bench(task: Task, spec: TimingSpec) -> Benchmark:
    """The reference workload at the task's batch size, device and mode, warmed up, for interleaving."""
    size = input_size_of(REFERENCE_MODEL, spec.input_size)
    bench = prepare_benchmark(build(REFERENCE_MODEL), input_shape=size, batch_size=task.batch_size,
                              device=task.device, mode=spec.mode, train=False)
    bench.warmup(spec.timing.warmup)
    return bench


def execute_latency(task: Task, ctx: TaskContext) -> dict[str, Any]:
    return _timed(task, train=False, loops=False, interleave=task.spec.reference)


def execute_reference(task: Task, ctx: TaskContext) -> dict[str, Any]:
    return _timed(task, train=False, loops=False)


def execute_throughput(task: Task, ctx: TaskContext) -> dict[str, Any]:
    return _timed(task, train=False, loops=True)


def execute_train_throughput(task: Task, ctx: TaskContext) -> dict[str, Any]:
    return _timed(task, train=True, loops=True)


def execute_peak(task: Task, ctx: TaskContext) -> dict[str, Any]:
    """Achieved GMAC/s of a large matmul in the section's dtype: the utilisation denominator."""
    spec: PeakSpec = task.spec
    with backend_flags(cudnn_benchmark=spec.cudnn_benchmark, tf32=spec.tf32):
        gmacs = measure_peak_gmacs(task.device, dtype=spec.dtype)
    return {"peak_gmacs_per_s": gmacs, "dtype": spec.dtype, "threads": torch.get_num_threads(), "tf32": spec.tf32}


EXECUTORS = {
    "latency": execute_latency,
    "reference": execute_reference,
    "throughput": execute_throughput,
    "train_throughput": execute_train_throughput,
    "peak": execute_peak,
}
