"""Is a difference between two models' seed results real? Mean ± t-interval per model, Welch's t-test between two.

The papers report means of 10 CIFAR runs ([RX] Table 7, [P] §4.2) and SK's margin over SE is a few tenths of a
point, about the seed-to-seed spread of a short run, so a report must show the spread and a test, not a
bare difference of means. Welch's test is used because two architectures need not share a variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

from harness.measure.stats import TEST_ALPHA


class SeedSummary(NamedTuple):
    """Mean, sample std (ddof=1) and 95% t-interval of one model's per-seed values."""

    mean: float
    std: float
    n: int
    ci95_low: float
    ci95_high: float


class Comparison(NamedTuple):
    """``diff`` = mean(a) − mean(b); ``p_value`` is None when no test could be run (see ``test_name``)."""

    diff: float
    p_value: float | None
    test_name: str
    significant: bool


def seed_summary(values: Sequence[float]) -> SeedSummary:
    """Summarise per-seed values; with one value the std and interval are NaN (spread unknown)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"seed_summary needs a non-empty 1-D sequence, got shape {x.shape}")
    n = len(x)
    mean = float(x.mean())
    if n < 2:
        return SeedSummary(mean, math.nan, n, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, df=n - 1)) * std / math.sqrt(n)
    return SeedSummary(mean, std, n, mean - half, mean + half)


def compare(a: Sequence[float], b: Sequence[float], *, alpha: float = TEST_ALPHA) -> Comparison:
    """Welch's two-sided t-test of mean(a) vs mean(b) at level ``alpha``."""
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if len(xa) == 0 or len(xb) == 0:
        raise ValueError("compare needs at least one value on each side")
    diff = float(xa.mean() - xb.mean())
    if len(xa) < 2 or len(xb) < 2:
        return Comparison(diff, None, f"none (n<2: n_a={len(xa)}, n_b={len(xb)})", False)
    if xa.var(ddof=1) == 0 and xb.var(ddof=1) == 0:
        # scipy returns NaN here; equal constants are no evidence either way, unequal ones no test.
        return Comparison(diff, None, "none (zero variance on both sides)", False)
    p_value = float(stats.ttest_ind(xa, xb, equal_var=False).pvalue)
    return Comparison(diff, p_value, "welch_t", p_value < alpha)
