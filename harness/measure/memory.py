"""Peak memory of a measurement: CUDA's allocator peak, or the growth of the process's peak RSS on CPU."""

from __future__ import annotations

import resource
import sys

import torch


def peak_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux and bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class PeakMemory:
    """``reset()`` before a measurement, ``peak_bytes()`` after it.

    CUDA: peak allocated since the reset. CPU: growth of the process's peak RSS since the reset, which is 0
    when the measurement stayed below an earlier high-water mark.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._rss_baseline = 0

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._rss_baseline = peak_rss_bytes()

    def peak_bytes(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return max(0, peak_rss_bytes() - self._rss_baseline)
