"""Per-benchmark thresholds from repeated identical (A/A) runs: how far two runs of unchanged code drift apart
on this machine (``python -m harness check --calibrate``), stored in the baseline file."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np

from harness.errors import ConfigError
from harness.gate.samples import BenchmarkSet
from harness.gate.statistic import centre, split
from harness.results.summaries import BenchmarkKey

log = logging.getLogger(__name__)


def calibrate_thresholds(
    runs: Sequence[BenchmarkSet], *, quantile: float = 0.99, floor_pct: float = 2.0, margin: float = 1.5
) -> dict[BenchmarkKey, float]:
    """Per-benchmark thresholds (percent) from K >= 2 identical (A/A) runs.

    For every ordered pair of runs the ratio of the gate's statistic (median over rounds of each round's
    ``GATE_QUANTILE``, normalised when every run has reference samples) is taken; the ``quantile`` of
    ``|ratio - 1|`` is how far two runs of unchanged code drift apart, and the threshold is
    ``max(floor_pct, margin * that)``.
    """
    if len(runs) < 2:
        raise ConfigError(f"calibration needs at least 2 identical runs (got {len(runs)}); rerun the suite K times")
    if not (0.0 <= quantile <= 1.0 and floor_pct > 0 and margin > 0):
        raise ConfigError(
            f"calibration needs 0 <= quantile <= 1, floor_pct > 0 and margin > 0 "
            f"(got {quantile}, {floor_pct}, {margin})"
        )
    common = set.intersection(*(set(r.benchmarks) for r in runs))
    for key in set.union(*(set(r.benchmarks) for r in runs)) - common:
        log.warning("calibration: %s (%s) is not in every run; no threshold for it", key.label, key.model)
    thresholds: dict[BenchmarkKey, float] = {}
    for key in sorted(common, key=BenchmarkKey.sort_key):
        series = [r.benchmarks[key] for r in runs]
        if not all(s.has_raw for s in series):
            log.warning("calibration: %s has no raw samples in some run; skipped", key.label)
            continue
        normalised = all(split(s)[1] is not None for s in series)
        centres = [centre(s, normalised=normalised) for s in series]
        if not all(c > 0 for c in centres):
            raise ConfigError(f"calibration: {key.label} has a zero latency statistic in some run; "
                              "its samples are broken")
        drift = [abs(b / a - 1.0) for a, b in itertools.permutations(centres, 2)]
        thresholds[key] = max(floor_pct, margin * float(np.quantile(drift, quantile)) * 100.0)
    return thresholds
