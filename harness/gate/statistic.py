"""The gate's statistic: in every round the ``GATE_QUANTILE`` (5th percentile) of the per-iteration samples,
optionally divided by the same quantile of the reference workload's samples of that round, and the median of
these over the rounds.

Why a low quantile and not the median: on a shared machine interference only ever adds time. Other processes
preempt some iterations, and the share of preempted iterations changes from run to run, so medians of
identical runs differ by tens of percent; the fastest iterations are the undisturbed ones and hold still. A
round in which the machine changed speed half-way is outvoted by the median over rounds. The Mann-Whitney
test looks at the fastest quarter of each round for the same reason.
"""

from __future__ import annotations

import math

import numpy as np

from harness.gate.samples import BenchSamples
from harness.measure.stats import bootstrap_ci

GATE_QUANTILE = 0.05
# The Mann-Whitney test looks at the fastest quarter of each round (at least MIN_TEST_SAMPLES per side): it
# asks the statistic's question, whether the undisturbed iterations got slower. On the whole distribution a
# busy neighbour's share of preempted iterations swamps a real shift (and makes an unchanged run "significant").
TEST_FRACTION = 0.25
MIN_TEST_SAMPLES = 20

Split = tuple[list[np.ndarray], list[np.ndarray] | None]


def low(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    return np.quantile(values, GATE_QUANTILE, axis=axis)


def split(samples: BenchSamples) -> Split:
    """The non-empty rounds and, when every one of them has reference samples, each round's reference samples."""
    aligned = len(samples.reference_rounds) == len(samples.rounds)
    rounds, refs = [], []
    for i, values in enumerate(samples.rounds):
        if not values:
            continue
        rounds.append(np.asarray(values, dtype=np.float64))
        ref = np.asarray(samples.reference_rounds[i] if aligned else (), dtype=np.float64)
        aligned = aligned and ref.size > 0 and float(low(ref)) > 0.0
        refs.append(ref)
    return rounds, refs if aligned else None


def normalise(rounds: list[np.ndarray], refs: list[np.ndarray]) -> list[np.ndarray]:
    """Each round's samples divided by the low quantile of the reference samples of the same round."""
    return [values / float(low(ref)) for values, ref in zip(rounds, refs, strict=True)]


def statistic(rounds: list[np.ndarray]) -> float:
    """What the gate compares: the median over rounds of each round's ``GATE_QUANTILE``."""
    return float(np.median([low(values) for values in rounds]))


def centre(samples: BenchSamples, *, normalised: bool) -> float:
    """The statistic of one benchmark, normalised when asked and possible."""
    rounds, refs = split(samples)
    return statistic(normalise(rounds, refs) if normalised and refs is not None else rounds)


def fastest(rounds: list[np.ndarray]) -> np.ndarray:
    """The fastest ``TEST_FRACTION`` of each round (a larger share when that leaves < MIN_TEST_SAMPLES), pooled."""
    total = sum(values.size for values in rounds)
    fraction = min(1.0, max(TEST_FRACTION, MIN_TEST_SAMPLES / total))
    return np.concatenate([np.sort(values)[: max(1, math.ceil(fraction * values.size))] for values in rounds])


def _per_round(rounds: list[np.ndarray], refs: list[np.ndarray] | None) -> list[tuple[np.ndarray, np.ndarray | None]]:
    return [(values, None if refs is None else refs[i]) for i, values in enumerate(rounds)]


def ratio_ci(base: Split, cand: Split) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of ``statistic(cand) / statistic(base)``.

    Every round (and every reference round) is resampled on its own, so the interval reflects the spread
    within rounds while the median over rounds is kept as in the statistic. A round of one sample has nothing
    to resample and enters as a constant.
    """
    sides = [_per_round(*base), _per_round(*cand)]
    arrays = [a for side in sides for pair in side for a in pair if a is not None and a.size > 1]
    if not arrays:
        value = _side_statistic(sides[1], {}) / _side_statistic(sides[0], {})
        return value, value
    index = {id(a): i for i, a in enumerate(arrays)}

    def ratio(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        lookup = {key: resampled[i] for key, i in index.items()}
        return _side_statistic(sides[1], lookup, axis=axis) / _side_statistic(sides[0], lookup, axis=axis)

    return bootstrap_ci(arrays, ratio)


def _side_statistic(pairs: list[tuple[np.ndarray, np.ndarray | None]], resampled: dict[int, np.ndarray],
                    *, axis: int = -1) -> np.ndarray:
    """The statistic of one side, on resampled arrays where given (constants elsewhere), vectorised on ``axis``."""
    per_round = []
    for values, ref in pairs:
        value = low(resampled.get(id(values), values), axis=axis)
        if ref is not None:
            value = value / low(resampled.get(id(ref), ref), axis=axis)
        per_round.append(value)
    return np.median(np.stack(np.broadcast_arrays(*per_round), axis=0), axis=0)
