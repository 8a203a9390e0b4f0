"""Robust summaries of timing samples and their confidence intervals.

Records keep raw samples; these functions are applied when reading (report, regression gate), so the
choice of statistic can change without re-measuring. Medians, order-statistic and percentile-bootstrap intervals
are used because latency samples are skewed (scheduler preemption, GC, clock boosts give a long right tail): one
series' median gets the distribution-free interval of two order statistics (``median_ranks``), ratios a t-interval
over processes or a bootstrap (``process_ratio``, ``ratio_of_medians_ci``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

# A fixed seed makes the reported interval a pure function of the samples: re-rendering a report must
# not change its numbers.
# The confidence of every interval the reports print, and the significance level of their tests (the regression
# gate has its own, stricter level: harness.gate.ALPHA).
CONFIDENCE = 0.95
TEST_ALPHA = 0.05
_BOOTSTRAP_SEED = 0
_BOOTSTRAP_RESAMPLES = 2000
# The bootstrap's work per interval is bounded: at most this many observations drawn in all (resamples × the
# values, or paired cycles, of one resample), so a benchmark pooled over many rounds and processes costs what one
# of 100 samples does (a default-suite record holds about 56). A longer series gets fewer resamples: the interval is
# the same statistic, with more Monte Carlo error at its ends (the 2.5% point of R resamples is off by about 2.7/√R
# bootstrap SDs: 0.06 at 2000, 0.12 at 500, against a half-width of 1.96), never fewer than MIN_RESAMPLES.
MAX_RESAMPLED_VALUES = 200_000
MIN_RESAMPLES = 500
# Bounds the bootstrap's working array to about batch x n floats, which matters for 10k-sample series.
_BOOTSTRAP_BATCH = 100
# Many series resampled together (``bootstrap_cis``) are taken a chunk of rows at a time: at most this many floats
# in a batch's working array (32 MiB).
_BOOTSTRAP_VALUES = 1 << 22
# A series whose coefficient of variation reaches this is flagged unstable (the machine was noisy).
UNSTABLE_CV = 0.10


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of one sample series (units are those of the samples)."""

    n: int
    median: float
    mean: float
    std: float
    cv: float
    p10: float
    p90: float
    p99: float
    q1: float
    q3: float
    iqr: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    unstable: bool


def _as_array(samples: Sequence[float] | np.ndarray, *, name: str) -> np.ndarray:
    values = np.asarray(samples, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"{name} is empty; at least one timing sample is needed to summarise it")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinite values; timing samples must be finite")
    return values


def resamples(values: int) -> int:
    """The resamples of a bootstrap that draws ``values`` observations each time (every sample's values, or the
    paired cycles): 2000, fewer where that would draw more than ``MAX_RESAMPLED_VALUES`` in all, never fewer than
    ``MIN_RESAMPLES``."""
    return max(MIN_RESAMPLES, min(_BOOTSTRAP_RESAMPLES, MAX_RESAMPLED_VALUES // max(values, 1)))


def _bootstrap(data: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray], *, paired: bool,
               confidence: float, n_resamples: int | None, seed: int) -> tuple[Any, Any]:
    """``scipy.stats.bootstrap``'s percentile interval (the last axis resampled), the harness's settings;
    ``n_resamples`` None: ``resamples`` of the values one resample holds."""
    if n_resamples is None:  # paired: one resample draws n cycles; else every sample's values on their own
        n_resamples = resamples(np.shape(data[0])[-1] if paired else sum(np.shape(d)[-1] for d in data))
    result = sps.bootstrap(
        data,
        statistic,
        n_resamples=n_resamples,
        batch=_BOOTSTRAP_BATCH,
        vectorized=True,
        paired=paired,
        axis=-1,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return result.confidence_interval.low, result.confidence_interval.high


def bootstrap_ci(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int | None = None,
    seed: int = _BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic(*samples, axis=-1)``, every sample resampled on its own.

    The one bootstrap of the harness (reports and the regression gate): ``scipy.stats.bootstrap`` with a
    fixed seed, so the interval is a pure function of the samples and re-rendering never changes it.
    ``statistic`` must be vectorised (it gets arrays with a leading resample axis and ``axis=-1``). Resamples:
    ``resamples`` of the samples' values (2000, fewer for long series), unless ``n_resamples`` says.
    """
    low, high = _bootstrap(tuple(samples), statistic, paired=False, confidence=confidence,
                           n_resamples=n_resamples, seed=seed)
    return float(low), float(high)


def bootstrap_cis(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    confidence: float = CONFIDENCE,
    paired: bool = False,
    n_resamples: int | None = None,
    seed: int = _BOOTSTRAP_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """``bootstrap_ci`` of many series at once, the same numbers: every sample is 2-D (series × values), and row
    ``i`` of the result is the interval of row ``i`` of every sample (``paired``: the samples' values resampled
    together, as ``_one_process_interval`` resamples cycles).

    ``scipy.stats.bootstrap`` resamples the last axis with one set of indices for every row, drawn from the same
    seed as for one series, so a report's benchmarks of one sample count cost one call: the indices are drawn once
    and the statistic runs over all rows together. Rows are taken a chunk at a time, so that a batch's working
    array stays under ``_BOOTSTRAP_VALUES`` floats.
    """
    arrays = tuple(np.asarray(s, dtype=np.float64) for s in samples)
    rows = arrays[0].shape[0]
    chunk = max(1, _BOOTSTRAP_VALUES // (_BOOTSTRAP_BATCH * sum(a.shape[-1] for a in arrays)))
    lows, highs = [], []
    for start in range(0, rows, chunk):
        low, high = _bootstrap(tuple(a[start:start + chunk] for a in arrays), statistic, paired=paired,
                               confidence=confidence, n_resamples=n_resamples, seed=seed)
        lows.append(np.atleast_1d(low))
        highs.append(np.atleast_1d(high))
    return np.concatenate(lows), np.concatenate(highs)


# Up to this many values, sorting each resample (numpy's vectorised sort) finds its middle faster than
# ``np.partition`` does; above it, partitioning is faster (measured on the development machine: at 72 values 3.8 vs
# 13.6 ns a value, at 2000 21.7 vs 15.7). Either way the same middle values.
_SORT_BELOW = 400


BootstrapRequest = tuple[Sequence[np.ndarray], Callable[..., np.ndarray], bool]  # samples, statistic, paired


def bootstrap_many(requests: Sequence[BootstrapRequest], *, confidence: float = CONFIDENCE,
                   n_resamples: int | None = None, seed: int = _BOOTSTRAP_SEED) -> list[tuple[float, float]]:
    """The interval of every request ``(samples, statistic, paired)``, the same numbers as one at a time: requests
    of one statistic, pairing and sample lengths are stacked into one ``bootstrap_cis`` call. ``statistic`` must give
    a row the same number alone or stacked (``median``, ``np.min``, ``row_mean``: not ``np.mean`` over 3-D)."""
    out: list[tuple[float, float]] = [(math.nan, math.nan)] * len(requests)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, (samples, statistic, paired) in enumerate(requests):
        groups.setdefault((statistic, paired, tuple(np.shape(x)[-1] for x in samples)), []).append(i)
    for (statistic, paired, lengths), indices in groups.items():
        stacked = [np.stack([np.asarray(requests[i][0][k], dtype=np.float64) for i in indices])
                   for k in range(len(lengths))]
        low, high = bootstrap_cis(stacked, statistic, confidence=confidence, paired=paired,
                                  n_resamples=n_resamples, seed=seed)
        for i, lo, hi in zip(indices, low, high, strict=True):
            out[i] = float(lo), float(hi)
    return out


def median(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """``np.median`` of finite values along ``axis``: the same numbers (the middle value, or the mean of the two
    middle ones), faster. The bootstraps compute it 2000 times per interval; their samples are finite
    (``_as_array``), so ``np.median``'s check for NaN (which partitions the data a third time) is left out."""
    values = np.moveaxis(np.asarray(values), axis, -1)
    n = values.shape[-1]
    low, high = (n - 1) // 2, n // 2
    if n <= _SORT_BELOW:
        ordered = np.sort(values, axis=-1)
    else:
        ordered = np.partition(values, (low, high) if low != high else high, axis=-1)
    # for odd n low == high, and (x + x) / 2 is x exactly
    return (ordered[..., low] + ordered[..., high]) / 2


def row_mean(values: np.ndarray) -> np.ndarray:
    """The mean along the last axis, reduced as a 2-D array (rows × values): numpy sums a row of a 2-D array the same
    way however many rows there are, where the summation order over a 3-D array can differ in the last bit. A
    statistic for ``bootstrap_cis`` built on it gives a series the same interval alone or among others."""
    n = values.shape[-1]
    return values.reshape(-1, n).mean(axis=-1).reshape(values.shape[:-1])


@functools.cache
def median_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """The 0-based order statistics ``(l, u)`` whose interval ``[x_(l), x_(u)]`` holds the median of ``n``
    independent samples of any continuous distribution with probability at least ``confidence``
    (``scipy.stats.quantile_test``'s interval: the binomial(n, 1/2) tails); None where no pair reaches it
    (n < 6 at 95%)."""
    ci = sps.quantile_test(np.arange(n, dtype=np.float64), q=0.0, p=0.5).confidence_interval(confidence)
    if np.isnan(ci.low) or np.isnan(ci.high):
        return None
    return int(ci.low), int(ci.high)


def _median_cis(series: Sequence[np.ndarray], *, confidence: float) -> list[tuple[float, float]]:
    """The distribution-free interval of each series' median (``median_ranks``): two order statistics, the same
    for any distribution of independent samples, exact (no resampling), O(n log n) per series. Where no pair of
    order statistics reaches ``confidence`` (fewer than 6 values at 95%), the range: its coverage is
    1 - 2^(1-n) (94% at 5 values)."""
    out: list[tuple[float, float]] = []
    for values in series:
        ranks = median_ranks(values.size, confidence)
        if ranks is None:
            out.append((float(values.min()), float(values.max())))
        else:
            low, high = np.partition(values, ranks)[list(ranks)]
            out.append((float(low), float(high)))
    return out


def variation(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, sample standard deviation, coefficient of variation) of ``values``."""
    mean = float(values.mean())
    # Sample (n-1) standard deviation: the samples estimate a population of possible runs.
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return mean, std, std / mean if mean != 0.0 else math.inf


def summarize(samples: Sequence[float] | np.ndarray, *, confidence: float = CONFIDENCE,
              unstable_cv: float = UNSTABLE_CV) -> Summary:
    """Summarise ``samples``; ``unstable`` is set when the coefficient of variation is >= ``unstable_cv``."""
    return summarize_many([samples], confidence=confidence, unstable_cv=unstable_cv)[0]


def summarize_many(series: Sequence[Sequence[float] | np.ndarray], *, confidence: float = CONFIDENCE,
                   unstable_cv: float = UNSTABLE_CV) -> list[Summary]:
    """``summarize`` of every series, the same numbers."""
    arrays = [_as_array(s, name="samples") for s in series]
    cis = _median_cis(arrays, confidence=confidence)
    return [_summary(values, ci, unstable_cv=unstable_cv) for values, ci in zip(arrays, cis, strict=True)]


def _summary(values: np.ndarray, ci: tuple[float, float], *, unstable_cv: float) -> Summary:
    mean, std, cv = variation(values)
    p10, q1, median_, q3, p90, p99 = (float(v) for v in np.percentile(values, [10, 25, 50, 75, 90, 99]))
    return Summary(
        n=int(values.size),
        median=median_,
        mean=mean,
        std=std,
        cv=cv,
        p10=p10,
        p90=p90,
        p99=p99,
        q1=q1,
        q3=q3,
        iqr=q3 - q1,
        min=float(values.min()),
        max=float(values.max()),
        ci_low=ci[0],
        ci_high=ci[1],
        unstable=bool(cv >= unstable_cv),
    )


def _ratio_of_medians(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return median(b, axis=axis) / median(a, axis=axis)


def ratio_of_medians_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int | None = None,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Return ``(median(b) / median(a), ci_low, ci_high)`` with a percentile-bootstrap interval.

    ``a`` and ``b`` are resampled independently (they come from different runs, so no pairing exists).
    With ``a`` the baseline and ``b`` the candidate, a ratio above 1 means the candidate is slower.
    """
    return ratio_of_medians_cis([(a, b)], confidence=confidence, n_resamples=n_resamples, seed=seed)[0]


def ratio_of_medians_cis(pairs: Sequence[tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]], *,
                         confidence: float = CONFIDENCE, n_resamples: int | None = None,
                         seed: int = 0) -> list[tuple[float, float, float]]:
    """``ratio_of_medians_ci`` of every ``(a, b)`` pair, the same numbers, their bootstraps taken together
    (``bootstrap_many``)."""
    out: list[tuple[float, float, float]] = []
    requests: list[BootstrapRequest] = []
    pending = []
    for a, b in pairs:
        base = _as_array(a, name="baseline samples (a)")
        cand = _as_array(b, name="candidate samples (b)")
        base_median = float(np.median(base))
        if base_median == 0.0:
            raise ValueError("baseline samples (a) have a median of 0; a ratio of medians is undefined")
        ratio = float(np.median(cand)) / base_median
        out.append((ratio, ratio, ratio))
        # Constant series (or too few points) leave nothing to resample.
        if not (min(base.size, cand.size) < 3 or (np.ptp(base) == 0.0 and np.ptp(cand) == 0.0)):
            pending.append(len(out) - 1)
            requests.append(((base, cand), _ratio_of_medians, False))
    intervals = bootstrap_many(requests, confidence=confidence, n_resamples=n_resamples, seed=seed)
    for i, (low, high) in zip(pending, intervals, strict=True):
        out[i] = out[i][0], low, high
    return out


# ------------------------------------------------------------------------------------------- paired ratios

# Lag-1 autocorrelation of the per-cycle log ratios above this many standard errors (1/sqrt(n)) means
# neighbouring cycles share a slow drift that pairing did not cancel: then resample blocks of cycles.
_AUTOCORRELATION_Z = 2.0


@dataclass(frozen=True)
class PairedRatio:
    """``other ÷ base`` from samples taken in the same cycles: the median of the per-cycle ratios.

    ``block`` is the block length of the bootstrap over cycles (1: cycles resampled one by one, as their
    ratios showed no lag-1 autocorrelation; more: a circular block bootstrap, because they did).
    """

    value: float
    low: float
    high: float
    cycles: int
    block: int
    autocorrelation: float


def lag1_autocorrelation(values: np.ndarray) -> float:
    if values.size < 3 or np.ptp(values) == 0.0:
        return 0.0
    centred = values - values.mean()
    return float(np.dot(centred[:-1], centred[1:]) / np.dot(centred, centred))


def paired_ratio(base: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray, *,
                 confidence: float = CONFIDENCE, n_resamples: int | None = None,
                 seed: int = _BOOTSTRAP_SEED) -> PairedRatio:
    """``other ÷ base`` for samples paired by cycle (``base[i]`` and ``other[i]`` timed in cycle ``i``).

    The per-cycle ratio cancels whatever the machine did to both in that cycle; its median is robust to the
    cycles a neighbour hit one model and not the other. The interval is a percentile bootstrap over cycles
    (``scipy.stats.bootstrap`` resampling block indices), with blocks of ``ceil(n ** (1/3))`` cycles when
    neighbouring ratios are correlated — the usual block length for a block bootstrap of a median — else of one.
    """
    a = _as_array(base, name="base samples")
    b = _as_array(other, name="other samples")
    if a.size != b.size:
        raise ValueError(f"paired samples need equal lengths, got {a.size} and {b.size}")
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("paired samples must be positive times")
    ratios = b / a
    value = float(np.median(ratios))
    rho = lag1_autocorrelation(np.log(ratios))
    n = ratios.size
    block = math.ceil(n ** (1 / 3)) if n >= 8 and rho > _AUTOCORRELATION_Z / math.sqrt(n) else 1
    if n < 3 or np.ptp(ratios) == 0.0:
        return PairedRatio(value, float(ratios.min()), float(ratios.max()), n, block, rho)
    blocks = math.ceil(n / block)
    offsets = np.arange(block)

    def median_of_blocks(starts: np.ndarray, axis: int = -1) -> np.ndarray:
        # each resampled block start k covers cycles k*block … k*block+block-1 (circularly)
        picked = (starts[..., :, None] * block + offsets) % n
        flat = ratios[picked].reshape(*starts.shape[:-1], -1)
        return median(flat, axis=-1)

    # resamples by the cycles each resample holds (its statistic's work), not by the blocks it draws
    low, high = bootstrap_ci((np.arange(blocks),), median_of_blocks, confidence=confidence,
                             n_resamples=n_resamples or resamples(blocks * block), seed=seed)
    return PairedRatio(value, low, high, n, block, rho)


# ------------------------------------------------------------------------------------- ratios over processes

# Per-process estimators of a paired ratio, on the log scale (``other ÷ base``), from one process's paired cycles.
# Chosen by measurement (benchmarks/calibration.py, docs/measurement.md); the others stay for that comparison.


def _median_log_ratio(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(np.log(b / a)))


def _low_quantile_log_ratio(a: np.ndarray, b: np.ndarray) -> float:
    # interference only adds time, so each model's low quantile reads its undisturbed iterations
    return float(np.log(np.quantile(b, LOW_QUANTILE) / np.quantile(a, LOW_QUANTILE)))


def _min_log_ratio(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.log(b.min() / a.min()))


LOW_QUANTILE = 0.2
# how a report names each estimator (per process)
ESTIMATOR_WORDS = {"median": "median of its per-cycle ratios",
                   "low_quantile": f"ratio of the models' {LOW_QUANTILE:.0%} quantiles over its cycles",
                   "min": "ratio of the models' fastest iterations over its cycles"}
ESTIMATORS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "median": _median_log_ratio, "low_quantile": _low_quantile_log_ratio, "min": _min_log_ratio}
# the estimator the reports use, the calibration benchmark's measured choice: over the default suite's quiet and
# one-neighbour runs at 6 processes the ratio of minima spread 2.0-2.6% (latency) against the median's 3.0-8.2%,
# its intervals holding the runs' median 8 times in 8 (docs/measurement.md, "Calibration")
ESTIMATOR = "min"


@dataclass(frozen=True)
class ProcessRatio:
    """``other ÷ base`` pooled over worker processes, with an interval whose degrees of freedom are the processes.

    ``scope`` is ``processes`` (K ≥ 2: a t-interval over the K per-process estimates, so it covers what a process
    fixes for its whole life — memory layout, allocator state — as well as the cycles' noise), or
    ``within-process`` (one process: a bootstrap over its cycles, which cannot see the process-level part).
    ``between_sd`` is the spread of the per-process estimates, ``within_sd`` the typical spread of one cycle's
    log-ratio inside a process (both on the log scale, ≈ relative).
    """

    value: float
    low: float
    high: float
    processes: int
    cycles: int
    scope: str
    estimator: str
    between_sd: float
    within_sd: float
    per_process: tuple[float, ...] = ()


def _min_ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    # the 0 quantile: the same number as np.quantile's, without its sort
    return np.min(y, axis=axis) / np.min(x, axis=axis)


def _low_quantile_ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.quantile(y, LOW_QUANTILE, axis=axis) / np.quantile(x, LOW_QUANTILE, axis=axis)


# the statistic one process's interval bootstraps, per estimator (the median's is ``paired_ratio``'s)
_ONE_PROCESS_STATISTICS = {"min": _min_ratio, "low_quantile": _low_quantile_ratio}


def _one_process_intervals(pairs: Sequence[tuple[np.ndarray, np.ndarray]], *, estimator: str, confidence: float,
                           seed: int) -> list[tuple[float, float, float]]:
    """Each process's ``estimator`` ratio and a percentile bootstrap of the same statistic over its paired cycles
    (a cycle's two samples resampled together), so the value lies inside its interval; the bootstraps taken
    together (``bootstrap_many``)."""
    out: list[tuple[float, float, float]] = []
    requests: list[BootstrapRequest] = []
    pending = []
    for a, b in pairs:
        value = math.exp(ESTIMATORS[estimator](a, b))
        if a.size < 3 or (np.ptp(a) == 0.0 and np.ptp(b) == 0.0):
            ratios = b / a
            out.append((value, min(value, float(ratios.min())), max(value, float(ratios.max()))))
            continue
        out.append((value, value, value))
        pending.append(len(out) - 1)
        requests.append(((a, b), _ONE_PROCESS_STATISTICS[estimator], True))
    for i, (low, high) in zip(pending, bootstrap_many(requests, confidence=confidence, seed=seed), strict=True):
        value = out[i][0]
        # a bootstrap of an extreme can sit entirely on one side of the sample's own value; the interval holds it
        out[i] = value, min(low, value), max(high, value)
    return out


def _segment_medians(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``np.median`` of every segment ``values[start:start + size]`` (sizes ≥ 1), the same numbers (the middle
    value, or the mean of the two middle ones), from one sort of all the segments."""
    order = np.lexsort((values, np.repeat(np.arange(sizes.size), sizes)))
    ordered = values[order]
    return (ordered[starts + (sizes - 1) // 2] + ordered[starts + sizes // 2]) / 2


def _robust_sds(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Every segment's median absolute deviation scaled to a normal SD (0 for one value): one cycle hit by a
    neighbour does not inflate it."""
    deviations = np.abs(values - np.repeat(_segment_medians(values, starts, sizes), sizes))
    return np.where(sizes > 1, 1.4826 * _segment_medians(deviations, starts, sizes), 0.0)


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile (scipy's), remembered: a report asks for the same few thousands of times."""
    return float(sps.t.ppf(q, df))


def process_ratio(parts: Sequence[tuple[Sequence[float], Sequence[float]]], *, estimator: str = ESTIMATOR,
                  confidence: float = CONFIDENCE, seed: int = _BOOTSTRAP_SEED) -> ProcessRatio:
    """``other ÷ base`` from each process's paired samples ``(base, other)`` (cycle ``i`` of a process paired).

    With K ≥ 2 processes: each process's estimate ``e_k`` (``ESTIMATORS[estimator]``, log scale), the value
    ``exp(mean e_k)`` and a t-interval with K − 1 degrees of freedom (Kalibera & Jones's two-level design: the
    between-process variance is part of every estimate's error). Why not a percentile bootstrap over processes: with
    the few processes a run affords (4–10) it under-covers (a bootstrap of K values cannot reach past their range),
    and the t-interval's coverage on two-level data of known variances is what the tests check. With one process:
    ``paired_ratio``'s bootstrap over cycles, ``scope`` saying it covers within-process noise only.
    """
    return process_ratios([parts], estimator=estimator, confidence=confidence, seed=seed)[0]


def process_ratios(many: Sequence[Sequence[tuple[Sequence[float], Sequence[float]]]], *, estimator: str = ESTIMATOR,
                   confidence: float = CONFIDENCE, seed: int = _BOOTSTRAP_SEED) -> list[ProcessRatio]:
    """``process_ratio`` of every item of ``many`` (each a ratio's processes), the same numbers; the one-process
    intervals' bootstraps taken together (a report of a large run asks for thousands of ratios)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; one of {', '.join(ESTIMATORS)}")
    out: list[ProcessRatio | None] = []
    single: list[tuple[int, np.ndarray, np.ndarray, int, float]] = []
    for parts in many:
        ratio, one = _process_level(parts, estimator=estimator, confidence=confidence)
        out.append(ratio)
        if one is not None:
            single.append((len(out) - 1, *one))
    if estimator == "median":
        intervals = []
        for _, a, b, _, _ in single:
            p = paired_ratio(a, b, confidence=confidence, seed=seed)
            intervals.append((p.value, p.low, p.high))
    else:
        intervals = _one_process_intervals([(a, b) for _, a, b, _, _ in single], estimator=estimator,
                                           confidence=confidence, seed=seed)
    for (i, _, _, cycles, within), (value, low, high) in zip(single, intervals, strict=True):
        out[i] = ProcessRatio(value, low, high, 1, cycles, "within-process", estimator, math.nan, within,
                              (math.log(value),))
    return [r for r in out if r is not None]


def _process_level(parts: Sequence[tuple[Sequence[float], Sequence[float]]], *, estimator: str,
                   confidence: float) -> tuple[ProcessRatio | None, tuple[np.ndarray, np.ndarray, int, float] | None]:
    """One ratio's processes checked and computed on at once: its ``ProcessRatio`` over K ≥ 2 processes, or (one
    process) the samples, cycles and within-process spread its bootstrap needs."""
    arrays = [(np.asarray(base, dtype=np.float64).ravel(), np.asarray(other, dtype=np.float64).ravel())
              for base, other in parts]
    if not arrays:
        raise ValueError("a ratio over processes needs at least one process's samples")
    for a, b in arrays:
        for values, name in ((a, "base samples"), (b, "other samples")):
            if values.size == 0:
                raise ValueError(f"{name} is empty; at least one timing sample is needed to summarise it")
        if a.size != b.size:
            raise ValueError(f"paired samples need equal lengths, got {a.size} and {b.size}")
    sizes = np.asarray([a.size for a, _ in arrays])
    a_all = _as_array(np.concatenate([a for a, _ in arrays]), name="base samples")
    b_all = _as_array(np.concatenate([b for _, b in arrays]), name="other samples")
    if np.any(a_all <= 0) or np.any(b_all <= 0):
        raise ValueError("paired samples must be positive times")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    logs = np.log(b_all / a_all)
    within = float(np.median(_robust_sds(logs, starts, sizes)))
    cycles = int(sizes.sum())
    if len(arrays) == 1:
        return None, (*arrays[0], cycles, within)
    if estimator == "min":  # ``_min_log_ratio`` of every process at once
        per = np.log(np.minimum.reduceat(b_all, starts) / np.minimum.reduceat(a_all, starts))
    else:
        per = np.asarray([ESTIMATORS[estimator](a, b) for a, b in arrays])
    k = per.size
    centre = float(per.mean())
    sd = float(per.std(ddof=1))
    half = _t_quantile(0.5 + confidence / 2, k - 1) * sd / math.sqrt(k)
    return ProcessRatio(math.exp(centre), math.exp(centre - half), math.exp(centre + half), k, cycles, "processes",
                        estimator, sd, within, tuple(float(x) for x in per)), None
