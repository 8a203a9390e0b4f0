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


# --- many series at once: the same numbers as one at a time ---------------------------------------------------


def _scipy_median_ci(values: np.ndarray) -> tuple[float, float]:
    """The median's distribution-free interval as scipy computes it for one series: the order statistics of
    ``scipy.stats.quantile_test``'s 95% interval; the range where no pair of order statistics reaches 95%."""
    from scipy import stats as sps

    ci = sps.quantile_test(values, q=float(np.median(values)), p=0.5).confidence_interval(0.95)
    low, high = float(ci.low), float(ci.high)
    return (float(values.min()) if np.isnan(low) else low, float(values.max()) if np.isnan(high) else high)


def test_median_is_numpys_median_to_the_last_bit() -> None:
    from harness.measure.stats import median

    rng = np.random.default_rng(5)
    for shape in [(7,), (8,), (3, 9), (4, 5, 10), (3, 801), (2, 3, 800)]:  # sorted, and partitioned (long)
        values = rng.lognormal(size=shape)
        assert np.array_equal(median(values), np.median(values, axis=-1))
    values = rng.lognormal(size=(6, 4))
    assert np.array_equal(median(values, axis=0), np.median(values, axis=0))


def test_many_series_get_each_the_interval_of_its_own_order_statistics() -> None:
    from harness.measure import stats

    rng = np.random.default_rng(11)
    series = [rng.lognormal(3, 0.05, n) for n in (40, 41, 40, 7, 5, 40, 2, 346)] + [np.full(9, 5.0)]
    many = stats.summarize_many(series)
    for values, s in zip(series, many, strict=True):
        assert (s.ci_low, s.ci_high) == _scipy_median_ci(values)
        assert s == summarize(values)
    # which order statistics (1-based) bound the median at 95%: the binomial(n, 1/2) tails (Conover, 3.2)
    ordered = np.sort(series[0])
    # n = 40: P(Binomial(40, 1/2) <= 13) = 0.019 <= 0.025 < P(<= 14) = 0.040, so the 14th and the 27th (= 40 - 14 + 1)
    assert (many[0].ci_low, many[0].ci_high) == (ordered[14 - 1], ordered[27 - 1])
    assert (many[4].ci_low, many[4].ci_high) == (series[4].min(), series[4].max())  # n = 5: the range (93.8%)


def test_the_medians_interval_covers_at_least_95_percent() -> None:
    """The interval of the median holds its confidence for any continuous distribution of independent samples, at
    every sample count (distribution-free): 4,000 series each of skewed (lognormal) and heavy-tailed (Pareto)
    timings whose true median is known. A percentile bootstrap of the median falls short at small n."""
    from harness.measure import stats

    rng = np.random.default_rng(7)
    for n in (6, 10, 25, 54, 200):
        for draw, true_median in ((lambda size: rng.lognormal(2.0, 0.3, size), np.exp(2.0)),
                                  (lambda size: 10.0 + rng.pareto(1.5, size), 10.0 + 2 ** (1 / 1.5) - 1)):
            values = draw((4000, n))
            cis = np.asarray(stats._median_cis(list(values), confidence=0.95))  # what summarize_many gives
            covered = np.mean((cis[:, 0] <= true_median) & (true_median <= cis[:, 1]))
            assert covered >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 4000), (n, covered)


def test_bootstrap_cis_of_stacked_rows_are_each_rows_bootstrap_ci() -> None:
    from harness.measure.stats import bootstrap_ci, bootstrap_cis, row_mean

    rng = np.random.default_rng(2)
    a, b = rng.lognormal(0, 0.1, (4, 30)), rng.lognormal(0.1, 0.1, (4, 30))

    def ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return row_mean(y) / row_mean(x)

    def old_ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(y, axis=axis) / np.mean(x, axis=axis)

    low, high = bootstrap_cis((a, b), ratio)
    assert [(lo, hi) for lo, hi in zip(low, high, strict=True)] == [bootstrap_ci((a[i], b[i]), old_ratio)
                                                                      for i in range(4)]


def test_one_process_interval_of_the_minimum_is_scipys_bootstrap_of_the_zero_quantile() -> None:
    from scipy import stats as sps

    from harness.measure.stats import process_ratio

    rng = np.random.default_rng(4)
    a = rng.lognormal(4, 0.05, 25)
    b = a * 1.1 * rng.lognormal(0, 0.03, 25)

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.quantile(y, 0.0, axis=axis) / np.quantile(x, 0.0, axis=axis)

    result = sps.bootstrap((a, b), statistic, n_resamples=2000, batch=100, vectorized=True, paired=True,
                           confidence_level=0.95, method="percentile", rng=np.random.default_rng(0))
    p = process_ratio([(a, b)], estimator="min")
    assert p.value == pytest.approx(b.min() / a.min())
    assert (p.low, p.high) == (min(float(result.confidence_interval.low), p.value),
                               max(float(result.confidence_interval.high), p.value))


def test_the_bootstraps_work_is_bounded_for_long_series(monkeypatch) -> None:
    """A long series (a benchmark pooled over many rounds and processes) gets fewer resamples, so that no interval
    draws more than ``MAX_RESAMPLED_VALUES`` observations in all (values, or paired cycles); short ones keep 2000,
    none gets fewer than 500."""
    from scipy import stats as sps

    from harness.measure import stats

    calls = []
    real = sps.bootstrap
    monkeypatch.setattr(stats.sps, "bootstrap", lambda data, statistic, **kw: (calls.append((
        np.shape(data[0])[-1] if kw["paired"] else sum(np.shape(d)[-1] for d in data),  # cycles, or values
        kw["n_resamples"])), real(data, statistic, **kw))[1])
    rng = np.random.default_rng(0)
    for n in (50, 100, 1_000, 5_000):
        calls.clear()
        summarize(rng.lognormal(size=n))
        stats.process_ratio([(rng.lognormal(size=n), rng.lognormal(size=n))])
        ratio_of_medians_ci(rng.lognormal(size=n), rng.lognormal(size=n + 1))
        for values, resamples in calls:
            assert resamples == stats.resamples(values)
            assert resamples * values <= stats.MAX_RESAMPLED_VALUES or resamples == stats.MIN_RESAMPLES
            assert resamples == 2000 if 2000 * values <= stats.MAX_RESAMPLED_VALUES else resamples < 2000
    assert stats.resamples(56) == 2000 and stats.resamples(stats.MAX_RESAMPLED_VALUES // 1_000) == 1_000
    assert stats.resamples(10**6) == stats.MIN_RESAMPLES


def test_ratios_of_medians_together_are_each_scipys_bootstrap() -> None:
    from scipy import stats as sps

    from harness.measure.stats import ratio_of_medians_cis, resamples

    rng = np.random.default_rng(6)
    pairs = [(rng.lognormal(2, 0.1, 30), rng.lognormal(2.1, 0.1, 31)) for _ in range(3)] + [([1.0, 1.0], [2.0, 2.0])]

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(b, axis=axis) / np.median(a, axis=axis)

    for (a, b), (value, low, high) in zip(pairs[:3], ratio_of_medians_cis(pairs), strict=False):
        result = sps.bootstrap((a, b), ratio, n_resamples=resamples(61), batch=100, vectorized=True,
                               confidence_level=0.95, method="percentile", rng=np.random.default_rng(0))
        assert (value, low, high) == (np.median(b) / np.median(a), result.confidence_interval.low,
                                      result.confidence_interval.high)
    assert ratio_of_medians_cis(pairs)[3] == (2.0, 2.0, 2.0)
