"""Latency, throughput, train-step throughput and device-peak tasks (``harness.measure.timing``).

Each latency/throughput task is one round of one model: the suite interleaves rounds (A B C ref A B C ref …)
so slow drifts of the machine spread over all models instead of biasing the last one. Backend flags
(cudnn.benchmark, TF32) are set for the task only and recorded.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from harness.benchmarks import TaskContext, build, input_size_of
from harness.measure.timing import Mode, TimingConfig, backend_flags, calibrate_peak_gmacs, prepare
from harness.suite import Task

log = logging.getLogger(__name__)


def _mode(settings: dict[str, Any]) -> Mode:
    return Mode(dtype=settings["dtype"], channels_last=settings["channels_last"], compile=settings["compile"])


def _config(settings: dict[str, Any]) -> TimingConfig:
    return TimingConfig(warmup=settings["warmup"], min_time_s=settings["min_time_s"],
                        max_time_s=settings["max_time_s"], min_samples=settings["min_samples"])


def _timed(task: Task, *, train: bool, loops: bool) -> dict[str, Any]:
    s = task.settings
    rounds = int(s.get("rounds_total", 1))
    window = _config(s).split(rounds)
    model = build(task.model)
    size = input_size_of(task.model, s.get("input_size"))
    with backend_flags(cudnn_benchmark=s["cudnn_benchmark"], tf32=s["tf32"]):
        prepared = prepare(model, input_shape=size, batch_size=task.batch_size, device=task.device,
                           mode=_mode(s), train=train)
        warmup_ms = tuple(prepared.warmup(s["warmup"]))
        if loops:
            result = prepared.throughput(window, round_index=task.round or 0, warmup_ms=warmup_ms)
        else:
            result = prepared.latency(window, round_index=task.round or 0, warmup_ms=warmup_ms)
    record = result.to_record()
    record.pop("kind", None)
    record.pop("wall_s", None)
    record["input_size"] = list(size)
    record["window"] = {"min_time_s": window.min_time_s, "max_time_s": window.max_time_s,
                        "min_samples": window.min_samples, "rounds": rounds}
    return record


def execute_latency(task: Task, ctx: TaskContext) -> dict[str, Any]:
    return _timed(task, train=False, loops=False)


def execute_throughput(task: Task, ctx: TaskContext) -> dict[str, Any]:
    return _timed(task, train=False, loops=True)


def execute_train_throughput(task: Task, ctx: TaskContext) -> dict[str, Any]:
    return _timed(task, train=True, loops=True)


def execute_peak(task: Task, ctx: TaskContext) -> dict[str, Any]:
    """Achieved GMAC/s of a large matmul in the section's dtype: the utilisation denominator."""
    s = task.settings
    with backend_flags(cudnn_benchmark=s["cudnn_benchmark"], tf32=s["tf32"]):
        gmacs = calibrate_peak_gmacs(task.device, dtype=s["dtype"])
    return {"peak_gmacs_per_s": gmacs, "dtype": s["dtype"], "threads": torch.get_num_threads(),
            "tf32": s["tf32"]}


EXECUTORS = {
    "latency": execute_latency,
    "calibration": execute_latency,
    "throughput": execute_throughput,
    "train_throughput": execute_train_throughput,
    "peak": execute_peak,
}
