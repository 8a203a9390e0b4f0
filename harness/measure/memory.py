"""Peak memory of a measurement, per model and batch.

CUDA: the caching allocator's own statistics over one untimed iteration of the model alone, after a reset of the
peak — ``max_memory_allocated`` (what the process held then, every resident model's weights included) and the part
of it above what was allocated when the iteration began (its activations and temporaries). One peak over a timed
loop could not be split between the models of a group, and without the reset it was the process's high-water
mark since it started, the same for every model.

CPU: torch keeps no allocator statistics for the CPU, and the process's RSS is a poor per-model measure in a
process that runs many models: glibc keeps freed activation memory for reuse (it raises its mmap threshold after
the first large free), so after a few iterations the RSS hardly moves — the growth was 0 for most models when
this module measured it that way. So one extra, untimed iteration runs under the torch profiler's memory
accounting: every allocation and free of torch's CPU allocator is an event with a size, and the running sum of
the sizes peaks at the iteration's working set above what was held before it (the same quantity as on CUDA).
A thread samples the process RSS with psutil meanwhile, for the absolute high-water mark the OS saw.
Not seen by the profiler: memory that a backend library allocates itself (e.g. oneDNN scratchpads).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psutil
import torch

from harness.errors import MeasurementError

log = logging.getLogger(__name__)

METHOD_CUDA = "cuda_allocator"
METHOD_CPU = "torch_profiler+rss"
# libkineto writes its own start/stop lines (and a failed GPU probe on CPU-only machines) straight to fd 2.
_KINETO_CHATTER = re.compile(r"^(USDT|INFO|ERROR|WARNING):\S+ \S+ \d+:\d+ \S+\.cpp:\d+\]")


@dataclass(frozen=True)
class MemoryUse:
    """``peak_bytes``: CUDA allocator peak over the timed loop, or the process RSS peak (CPU).
    ``iteration_peak_bytes``: the most one iteration held above what was allocated when it began."""

    peak_bytes: int
    iteration_peak_bytes: int
    method: str


class RssSampler:
    """Samples the process's resident set size every ``interval_s`` in a daemon thread (a context manager)."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_bytes = 0
        self.samples = 0

    def _sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, int(self._process.memory_info().rss))
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()


@contextlib.contextmanager
def kineto_chatter_to_debug_log() -> Iterator[None]:
    """Route fd 2 to a file while the profiler starts and stops; its chatter goes to the debug log, anything else
    back to stderr (progress bars and warnings must not vanish)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            other = []
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if _KINETO_CHATTER.match(line):
                    log.debug("profiler: %s", line.rstrip())
                else:
                    other.append(line)
            if other:
                sys.stderr.write("".join(other))


def running_peak(sizes: list[int]) -> int:
    """The largest running sum of allocation (+) and free (−) sizes in time order, at least 0."""
    total = peak = 0
    for size in sizes:
        total += size
        peak = max(peak, total)
    return peak


def profiled_iteration_peak_bytes(step: Callable[[], object]) -> int:
    """Run ``step`` once under the torch profiler's memory accounting; its CPU allocator peak in bytes."""
    from torch.autograd.profiler import profile

    with kineto_chatter_to_debug_log(), profile(profile_memory=True, use_kineto=True) as prof:
        step()
    results = getattr(prof, "kineto_results", None)
    if results is None:
        raise MeasurementError(f"torch {torch.__version__}'s profiler gave no memory events; CPU peak memory needs "
                               "torch.autograd.profiler.profile(profile_memory=True) with kineto")
    events = sorted((e.start_ns(), e.nbytes()) for e in results.events()
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    return running_peak([size for _, size in events])


class PeakMemory:
    """``measure(step)``: the peak of one extra, untimed iteration ``step`` of one model (CUDA: after a reset of the
    allocator's peak; CPU: under the profiler's memory accounting)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._allocated_at_reset = 0

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._allocated_at_reset = int(torch.cuda.memory_allocated(self.device))

    def measure(self, step: Callable[[], object]) -> MemoryUse:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # earlier work's allocations are settled before the reset
            self.reset()
            step()
            torch.cuda.synchronize(self.device)
            peak = int(torch.cuda.max_memory_allocated(self.device))
            return MemoryUse(peak, max(0, peak - self._allocated_at_reset), METHOD_CUDA)
        with RssSampler() as rss:
            iteration = profiled_iteration_peak_bytes(step)
        return MemoryUse(rss.peak_bytes, iteration, METHOD_CPU)
