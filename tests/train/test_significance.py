"""Seed statistics against values computed by hand (formulas written out, t quantiles from tables)."""

from __future__ import annotations

import math

import pytest

from harness.train.significance import compare, seed_summary

# Two-sided 95% critical values of Student's t (any printed t table).
T975 = {2: 4.302652729749462, 4: 2.7764451051977934}


def test_seed_summary_five_values() -> None:
    s = seed_summary([1.0, 2.0, 3.0, 4.0, 5.0])
    std = math.sqrt(10 / 4)  # squared deviations 4+1+0+1+4 over n-1
    half = T975[4] * std / math.sqrt(5)
    assert s.n == 5
    assert s.mean == pytest.approx(3.0)
    assert s.std == pytest.approx(std)
    assert (s.ci95_low, s.ci95_high) == pytest.approx((3.0 - half, 3.0 + half))
    assert s.ci95_low == pytest.approx(1.0367568, abs=1e-6)


def test_seed_summary_is_a_plain_tuple() -> None:
    mean, std, n, low, high = seed_summary([3.47, 3.60, 3.52])
    assert n == 3 and low < mean < high
    assert high - mean == pytest.approx(T975[2] * std / math.sqrt(3))


def test_seed_summary_single_value_has_unknown_spread() -> None:
    s = seed_summary([3.5])
    assert s.mean == 3.5 and s.n == 1
    assert math.isnan(s.std) and math.isnan(s.ci95_low) and math.isnan(s.ci95_high)


def test_seed_summary_rejects_empty() -> None:
    with pytest.raises(ValueError):
        seed_summary([])


def test_welch_against_hand_computation() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    var_a, var_b = 5 / 3, 10.0
    se2 = var_a / 4 + var_b / 5
    t = (2.5 - 6.0) / math.sqrt(se2)
    df = se2**2 / ((var_a / 4) ** 2 / 3 + (var_b / 5) ** 2 / 4)
    assert t == pytest.approx(-2.2514363, abs=1e-6)
    assert df == pytest.approx(5.5207877, abs=1e-6)
    c = compare(a, b)
    assert c.diff == pytest.approx(-3.5)
    assert c.test_name == "welch_t"
    assert c.p_value == pytest.approx(0.0691336, abs=1e-6)  # 2·P(T_df > |t|)
    assert c.significant is False
    assert compare(a, b, alpha=0.1).significant is True


def test_welch_clear_difference_is_significant() -> None:
    c = compare([10.0, 10.1, 9.9, 10.05], [5.0, 5.2, 4.9, 5.1])
    assert c.diff == pytest.approx(10.0125 - 5.05)
    assert c.p_value is not None and c.p_value < 1e-6
    assert c.significant


@pytest.mark.parametrize(("a", "b"), [([1.0], [1.0, 2.0]), ([1.0, 2.0], [3.0])])
def test_compare_needs_two_per_side(a: list[float], b: list[float]) -> None:
    c = compare(a, b)
    assert c.p_value is None and c.significant is False
    assert "n<2" in c.test_name
    assert c.diff == pytest.approx(sum(a) / len(a) - sum(b) / len(b))


def test_compare_zero_variance_gives_no_p_value() -> None:
    c = compare([1.0, 1.0], [2.0, 2.0])
    assert c.p_value is None and not c.significant and c.diff == -1.0
