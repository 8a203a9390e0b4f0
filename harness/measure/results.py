"""What a timing measurement returns, and its record fields (the ``latency`` / ``throughput`` /
``train_throughput`` records of docs/CONTRACTS.md). Samples are raw; summaries are computed when reading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.measure.load import Load
from harness.measure.mode import Mode


@dataclass(frozen=True, kw_only=True)
class LatencyResult:
    """Per-iteration times of one model; ``samples_ms`` and ``warmup_ms`` are kept apart and raw."""

    samples_ms: tuple[float, ...]
    warmup_ms: tuple[float, ...]
    batch_size: int
    device: str
    mode: Mode
    threads: int
    peak_mem_bytes: int  # CUDA: allocator peak of the timed loop; CPU: process RSS peak (harness.measure.memory)
    iter_peak_mem_bytes: int  # the most one iteration allocated above what was held when it began
    mem_method: str
    timer: str
    wall_s: float
    cudnn_benchmark: bool
    tf32: bool
    round: int = 0
    train: bool = False
    # the cycle of the interleaved session each sample was taken in; samples of two models with the same
    # ``pairing`` and cycle ran side by side (harness.measure.timer.time_group)
    cycles: tuple[int, ...] = ()
    pairing: str | None = None
    group_size: int = 1
    load: Load | None = None  # what the machine did while the group was timed
    # the reference workload's samples of the same session, when it was timed with the group
    reference_samples_ms: tuple[float, ...] = ()
    reference_cycles: tuple[int, ...] = ()

    @property
    def kind(self) -> str:
        return "latency"

    def to_record(self) -> dict[str, Any]:
        """The measured fields of a ``latency`` record (``harness.results.records.TimedRecord``); the task's
        fields (kind, device, batch size, round, wall time) are the runner's to write."""
        return {
            "dtype": self.mode.dtype,
            "channels_last": self.mode.channels_last,
            "compile": self.mode.compile,
            "samples_ms": list(self.samples_ms),
            "warmup_ms": list(self.warmup_ms),
            "threads": self.threads,
            "peak_mem_bytes": self.peak_mem_bytes,
            "iter_peak_mem_bytes": self.iter_peak_mem_bytes,
            "mem_method": self.mem_method,
            "timer": self.timer,
            "cudnn_benchmark": self.cudnn_benchmark,
            "tf32": self.tf32,
            "cycles": list(self.cycles),
            "pairing": self.pairing,
            "group_size": self.group_size,
            "load": self.load.to_record() if self.load is not None else None,
            **({"reference_samples_ms": list(self.reference_samples_ms),
                "reference_cycles": list(self.reference_cycles)} if self.reference_samples_ms else {}),
        }


@dataclass(frozen=True, kw_only=True)
class ThroughputResult(LatencyResult):
    """Whole-loop timings; ``samples_per_s`` is ``images / sum(loop_samples_s)``, never from latency.

    ``samples_ms`` holds each loop's mean iteration time, so throughput records read like latency ones.
    """

    loop_samples_s: tuple[float, ...]
    images: int
    iters_per_loop: int

    @property
    def kind(self) -> str:
        return "train_throughput" if self.train else "throughput"

    @property
    def samples_per_s(self) -> float:
        total_s = sum(self.loop_samples_s)
        return self.images / total_s if total_s > 0 else 0.0

    def to_record(self) -> dict[str, Any]:
        """The kind-specific fields of a ``throughput`` / ``train_throughput`` record."""
        return {**super().to_record(), "samples_per_s": self.samples_per_s,
                "loop_samples_s": list(self.loop_samples_s), "images": self.images}
