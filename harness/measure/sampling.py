"""When a sampling loop stops, and what runs around it.

Sampling is adaptive in the spirit of ``torch.utils.benchmark.Timer.blocked_autorange``: keep going until
both a minimum time and a minimum sample count are reached, stop early at a maximum time or count. Unlike
``blocked_autorange`` each sample is one iteration (not the mean of a block), because one forward pass of a
CNN is far above timer resolution and per-iteration samples keep the tail visible. Python's cycle collector
is paused inside sampling loops, as ``timeit`` does. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, model_validator

from harness.errors import ConfigError
from harness.settings import PositiveInt, PositiveSeconds, Seconds, Settings


@dataclass(frozen=True)
class SampleWindow:
    """When a sampling loop stops: once both minimums are met, or at either maximum."""

    min_time_s: float
    max_time_s: float
    min_samples: int
    max_samples: int


MAX_WARMUP = 1_000  # warm-up iterations: a bound no real suite comes near
DEFAULT_MAX_SAMPLES = 10_000  # the cap on samples; a suite leaves it here (tests lower it to stop early)


class TimingConfig(Settings):
    """Warmup count and the adaptive sampling window of one measurement (a suite's timing section is one)."""

    warmup: Annotated[int, Field(ge=0, le=MAX_WARMUP, strict=True)] = 3
    min_time_s: Seconds = 1.0
    max_time_s: PositiveSeconds = 5.0
    min_samples: PositiveInt = 10
    max_samples: PositiveInt = DEFAULT_MAX_SAMPLES

    @model_validator(mode="after")
    def _window(self) -> TimingConfig:
        if self.max_time_s < self.min_time_s:
            raise ValueError(f"max_time_s ({self.max_time_s}) must be ≥ min_time_s ({self.min_time_s})")
        if self.max_samples < self.min_samples:
            raise ValueError(f"min_samples ({self.min_samples}) must be ≤ max_samples ({self.max_samples}, the cap "
                             "on samples)")
        return self

    def window(self) -> SampleWindow:
        return SampleWindow(self.min_time_s, self.max_time_s, self.min_samples, self.max_samples)

    def split(self, rounds: int) -> SampleWindow:
        """The window of one of ``rounds`` interleaved rounds, so all rounds together match ``window()``."""
        if rounds < 1:
            raise ConfigError(f"rounds must be >= 1, got {rounds}")
        return SampleWindow(
            min_time_s=self.min_time_s / rounds,
            max_time_s=self.max_time_s / rounds,
            min_samples=math.ceil(self.min_samples / rounds),
            max_samples=math.ceil(self.max_samples / rounds),
        )


def window_done(window: SampleWindow, count: int, elapsed_s: float) -> bool:
    if count >= window.max_samples or elapsed_s >= window.max_time_s:
        return True
    return count >= window.min_samples and elapsed_s >= window.min_time_s


def repeat_until(window: SampleWindow, once: Callable[[], None]) -> None:
    """Call ``once`` until ``window`` is satisfied (host wall clock)."""
    count = 0
    start_ns = time.perf_counter_ns()
    while True:
        once()
        count += 1
        if window_done(window, count, (time.perf_counter_ns() - start_ns) / 1e9):
            return


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
