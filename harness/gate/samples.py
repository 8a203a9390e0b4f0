"""What the regression gate compares: raw samples by round, and benchmark sets.

For each benchmark key (``harness.results.summaries.BenchmarkKey``: model, label, options, batch size, device,
dtype, memory format, compile mode, record kind) a set holds the raw per-iteration samples grouped by round, and the
samples of the run's reference workload taken in the same rounds, so latency can be normalised by the machine's
speed of the moment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.results.summaries import BenchmarkKey

PYTEST_BENCHMARK_KIND = "pytest-benchmark"

Rounds = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class BenchSamples:
    """Timing samples of one benchmark. Without raw samples only ``summary_median_ms`` is known."""

    rounds: Rounds = ()
    reference_rounds: Rounds = ()
    threads: int | None = None
    threshold_pct: float | None = None
    summary_median_ms: float | None = None
    summary_n: int = 0
    # How ``reference_rounds`` were timed: "interleaved" (iteration for iteration with the model, in its task)
    # or "round" (the reference task of the same round). The two read different values (the interleaved
    # reference runs on caches the model just used), so the gate only divides by yardsticks of one kind.
    yardstick: str = "round"
    # With an interleaved yardstick: the round's reference tasks too (empty when there were none), so a
    # comparison with a side that only has those can still be normalised.
    round_reference_rounds: Rounds = ()

    def with_round_yardstick(self) -> BenchSamples:
        """These samples normalised by the reference tasks of their rounds (none when there were none)."""
        if self.yardstick == "round":
            return self
        refs = self.round_reference_rounds if len(self.round_reference_rounds) == len(self.rounds) else ()
        return replace(self, reference_rounds=refs, yardstick="round", round_reference_rounds=())

    @property
    def samples_ms(self) -> tuple[float, ...]:
        return tuple(x for r in self.rounds for x in r)

    @property
    def reference_samples_ms(self) -> tuple[float, ...]:
        return tuple(x for r in self.reference_rounds for x in r)

    @property
    def has_raw(self) -> bool:
        return any(self.rounds)

    @property
    def n(self) -> int:
        return len(self.samples_ms) if self.has_raw else self.summary_n

    @property
    def median_ms(self) -> float:
        if self.has_raw:
            return float(np.median(self.samples_ms))
        return math.nan if self.summary_median_ms is None else self.summary_median_ms


@dataclass(frozen=True)
class BenchmarkSet:
    """Benchmarks of one source with the environment they were measured in."""

    environment: dict[str, Any] = field(default_factory=dict)
    benchmarks: dict[BenchmarkKey, BenchSamples] = field(default_factory=dict)
    source: str = ""
    origin: str = ""  # "harness-run" | "harness-baseline" | "pytest-benchmark"
    # Timed tasks of this source that ended in an error (one line each): what was not measured cannot pass.
    failed: tuple[str, ...] = ()
