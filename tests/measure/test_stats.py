"""Summary statistics against numpy formulas, and the bootstrap intervals' basic guarantees."""

from __future__ import annotations

import numpy as np
import pytest

from harness.measure.stats import Summary, ratio_of_medians_ci, summarize

KNOWN = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]


def test_summary_matches_numpy_formulas() -> None:
    s = summarize(KNOWN)
    x = np.asarray(KNOWN)
    assert s.n == 10
    assert s.median == pytest.approx(5.5)
    assert s.mean == pytest.approx(5.5)
    assert s.std == pytest.approx(np.std(x, ddof=1))
    assert s.cv == pytest.approx(np.std(x, ddof=1) / 5.5)
    assert s.q1 == pytest.approx(np.percentile(x, 25)) == pytest.approx(3.25)
    assert s.q3 == pytest.approx(np.percentile(x, 75)) == pytest.approx(7.75)
    assert s.iqr == pytest.approx(4.5)
    assert s.p10 == pytest.approx(np.percentile(x, 10))
    assert s.p90 == pytest.approx(np.percentile(x, 90))
    assert s.p99 == pytest.approx(np.percentile(x, 99))
    assert (s.min, s.max) == (1.0, 10.0)


def test_ci_contains_median_and_is_deterministic() -> None:
    samples = np.random.default_rng(3).lognormal(mean=1.0, sigma=0.05, size=500)
    first = summarize(samples)
    assert first.ci_low <= first.median <= first.ci_high
    assert first.ci_low < first.ci_high
    assert summarize(samples) == first


def test_stable_and_unstable_flags() -> None:
    stable = summarize([10.0, 10.1, 9.9, 10.05, 9.95])
    assert stable.cv < 0.10 and not stable.unstable
    noisy = [10.0, 10.0, 10.0, 10.0, 14.0]  # cv = std(ddof=1) / mean = 1.789 / 10.8 ~ 0.166
    flagged = summarize(noisy)
    assert flagged.cv == pytest.approx(np.std(noisy, ddof=1) / np.mean(noisy))
    assert flagged.cv >= 0.10 and flagged.unstable


def test_small_samples_use_range_as_interval() -> None:
    assert summarize([4.0]) == Summary(
        n=1, median=4.0, mean=4.0, std=0.0, cv=0.0, p10=4.0, p90=4.0, p99=4.0, q1=4.0, q3=4.0, iqr=0.0,
        min=4.0, max=4.0, ci_low=4.0, ci_high=4.0, unstable=False,
    )  # fmt: skip
    pair = summarize([1.0, 3.0])
    assert (pair.ci_low, pair.ci_high) == (1.0, 3.0)


@pytest.mark.parametrize("bad", [[], np.array([])])
def test_empty_input_is_a_clear_value_error(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize(bad)
    with pytest.raises(ValueError, match="empty"):
        ratio_of_medians_ci([1.0, 2.0], bad)


def test_non_finite_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")])


def test_ratio_of_medians_ci_brackets_a_known_slowdown() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(10.0, 0.2, size=400)
    cand = rng.normal(11.0, 0.2, size=300)
    ratio, low, high = ratio_of_medians_ci(base, cand)
    assert ratio == pytest.approx(np.median(cand) / np.median(base))
    assert low <= ratio <= high
    assert 1.05 < low and high < 1.15
    assert ratio_of_medians_ci(base, cand) == (ratio, low, high)


def test_ratio_of_identical_constant_series_is_exactly_one() -> None:
    assert ratio_of_medians_ci([2.0] * 5, [2.0] * 5) == (1.0, 1.0, 1.0)


def test_ratio_rejects_zero_baseline_median() -> None:
    with pytest.raises(ValueError, match="median of 0"):
        ratio_of_medians_ci([0.0, 0.0, 1.0], [1.0, 1.0, 1.0])


# --- paired ratios -------------------------------------------------------------------------------------------


def test_paired_ratio_cancels_what_hit_both_models_in_a_cycle() -> None:
    from harness.measure.stats import paired_ratio, ratio_of_medians_ci

    rng = np.random.default_rng(3)
    speed = np.where(np.arange(200) < 100, 1.0, 1.6)  # the machine slows by 60% half-way through
    base = 100.0 * speed * rng.lognormal(0.0, 0.01, 200)
    other = 118.0 * speed * rng.lognormal(0.0, 0.01, 200)
    paired = paired_ratio(base, other)
    assert paired.value == pytest.approx(1.18, rel=0.005)
    assert paired.high - paired.low < 0.01 and paired.low < 1.18 < paired.high
    assert paired.cycles == 200
    # unpaired, the same samples give a wide interval around the same centre
    _, low, high = ratio_of_medians_ci(base, other)
    assert high - low > 10 * (paired.high - paired.low)


def test_paired_ratio_is_the_median_of_per_cycle_ratios() -> None:
    from harness.measure.stats import paired_ratio

    result = paired_ratio([10.0, 10.0, 20.0, 10.0, 10.0], [11.0, 12.0, 20.0, 13.0, 100.0])
    assert result.value == pytest.approx(1.2)  # ratios 1.1, 1.2, 1.0, 1.3, 10 → median 1.2


def test_paired_ratio_resamples_blocks_when_neighbouring_cycles_are_correlated() -> None:
    from harness.measure.stats import paired_ratio

    rng = np.random.default_rng(0)
    n = 125
    independent = paired_ratio(np.full(n, 10.0), 10.0 * rng.lognormal(0.0, 0.02, n))
    assert independent.block == 1
    drift = np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))  # a drift that hits only one model
    correlated = paired_ratio(np.full(n, 10.0), 10.0 * drift)
    assert correlated.autocorrelation > 0.5 and correlated.block == 5  # ceil(125 ** (1/3))


def test_paired_ratio_refuses_unpaired_or_bad_samples() -> None:
    from harness.measure.stats import paired_ratio

    with pytest.raises(ValueError, match="equal lengths"):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 0.0, 1.0], [1.0, 1.0, 1.0])
