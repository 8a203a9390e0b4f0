"""The claim statistics: share of classes and images that rise, a one-sided paired test, the verdict words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.scale_claims import channel_groups, claim_units, scale_rise, stage_last_units, verdict

SKNET50 = [f"SK_{s}_{b}" for s, n in ((2, 3), (3, 4), (4, 6), (5, 3)) for b in range(1, n + 1)]


def _rise(low, high, classes_low, classes_high):
    return scale_rise("SK_3_4", 1.0, 1.5, low, high, classes_low, classes_high)


def test_a_rise_in_every_class_is_reproduced_and_an_absent_one_is_not():
    rng = np.random.default_rng(0)
    low = rng.normal(-0.05, 0.01, 200)
    up = _rise(low, low + 0.02, [-0.05, -0.04, None], [-0.03, -0.02, None])
    assert up.share_images == 1.0 and up.share_classes == 1.0 and up.classes == 2 and up.p_value < 1e-10
    assert up.mean_high - up.mean_low == pytest.approx(0.02)
    assert verdict(up, expect_rise=True) == "reproduced"
    assert verdict(up, expect_rise=False).startswith("not reproduced: a consistent rise")
    flat = _rise(low, low, [-0.05], [-0.05])
    assert flat.p_value is None and flat.share_classes == 0.0
    assert verdict(flat, expect_rise=True) == "not reproduced"
    assert verdict(flat, expect_rise=False) == "reproduced: no consistent rise"


def test_a_rise_on_average_but_not_in_essentially_all_classes_is_partly():
    rng = np.random.default_rng(1)
    low = rng.normal(0, 0.01, 400)
    rise = _rise(low, low + 0.01, [0.0] * 10, [0.01] * 8 + [-0.01] * 2)  # 80% of classes
    assert rise.significant and rise.share_classes == 0.8
    assert verdict(rise, expect_rise=True).startswith("partly")
    down = _rise(low, low - 0.01, [0.0], [-0.01])
    assert down.p_value > 0.99 and verdict(down, expect_rise=True) == "not reproduced"


def test_mismatched_images_are_refused():
    with pytest.raises(ValueError, match="same non-empty images"):
        _rise([0.0, 0.1], [0.0], [], [])
    assert math.isnan(_rise([0.0], [0.1], [None], [None]).share_classes)


def test_roles_are_the_papers_units_on_sknet50_and_the_same_positions_on_cifar_nets():
    assert claim_units(SKNET50) == {"low": "SK_2_3", "mid": "SK_3_4", "last": "SK_5_3"}
    assert stage_last_units(SKNET50) == ["SK_2_3", "SK_3_4", "SK_4_6", "SK_5_3"]
    cifar = [f"SK_{s}_{b}" for s in (2, 3, 4) for b in (1, 2, 3)]
    assert claim_units(cifar) == {"low": "SK_2_3", "mid": "SK_3_3", "last": "SK_4_3"}


def test_channel_groups_average_sixteen_successive_channels():
    assert channel_groups(list(range(32))) == [7.5, 23.5]
    assert channel_groups([1.0] * 20) == [1.0, 1.0]
