"""Registry-driven build tests and exact reproduction of the paper's / timm's counts."""

from __future__ import annotations

import pytest
import torch

import harness
from harness.measure.macs import count_macs
from harness.measure.params import count_params
from harness.models.registry import default_input_size, get_entry, list_models
from harness.paper import all_rows

OURS = [n for n in list_models() if get_entry(n).family in {"resnext", "senet", "sknet", "shufflenet"}]


# the 101-layer nets build the same blocks as the 50-layer ones, twice as deep: the slow tier builds them
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if "101" in n else n for n in OURS])
def test_every_model_builds_and_runs(name):
    model = harness.create_model(name, width=0.125, num_classes=5).eval()
    size = default_input_size(name)
    with torch.inference_mode():
        out = model(torch.randn(2, *size))
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()


def test_every_model_has_a_docstring_with_paper_and_deviations():
    import harness.models.resnext as rx
    import harness.models.senet as se
    import harness.models.shufflenetv2 as sn
    import harness.models.sknet as sk

    for module in (rx, se, sk, sn):
        assert "Reproduces" in module.__doc__ and "Deviations" in module.__doc__


def test_sknet50_has_the_prototxt_parameter_count():
    assert count_params(harness.create_model("sknet50")).params == 27_479_784


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("resnext50", "resnext50_32x4d"),
        ("senet50", "seresnext50_32x4d"),
        ("sknet50", "skresnext50_32x4d"),
    ],
)
def test_params_and_fvcore_macs_equal_timm(ours, theirs):
    import timm

    a, b = harness.create_model(ours), timm.create_model(theirs, pretrained=False)
    assert count_params(a).params == count_params(b).params
    assert count_macs(a, input_size=(3, 224, 224)).macs == count_macs(b, input_size=(3, 224, 224)).macs


@pytest.mark.parametrize(
    ("name", "published_m"),
    [
        ("resnext29_16x32d", 25.2),
        ("resnext29_8x64d", 34.4),
        ("resnext29_16x64d", 68.1),
    ],
)
def test_resnext29_params_match_table5(name, published_m):
    params = count_params(harness.create_model(name)).params / 1e6
    assert abs(params / published_m - 1) <= 0.01, (name, params)


BUILDABLE = [
    r
    for r in all_rows()
    if r.model and not r.model.startswith("timm:") and r.table in {"P Table 3", "P Table 6", "P Table 7"}
]


@pytest.mark.parametrize("row", BUILDABLE, ids=lambda r: f"{r.table}:{r.row}")
def test_table_3_6_7_params_within_tolerance(row):
    params = count_params(harness.create_model(row.model, **row.options)).params / 1e6
    assert abs(params / row.params_m - 1) <= 0.01, (row.row, params)


@pytest.mark.slow
@pytest.mark.parametrize("row", BUILDABLE, ids=lambda r: f"{r.table}:{r.row}")
def test_table_3_6_7_gmacs_within_tolerance(row):
    macs = count_macs(harness.create_model(row.model, **row.options), input_size=row.input_size).macs / 1e9
    assert abs(macs / row.gmacs - 1) <= 0.015, (row.row, macs)


@pytest.mark.parametrize("name", ["senet29", "sknet29"])
def test_cifar_se_sk_gap_is_what_the_docstring_says(name):
    """The published 35.0M / 27.7M cannot come from 16×32d; we build the caption's backbone."""
    params = count_params(harness.create_model(name)).params / 1e6
    expected = {"senet29": 25.66, "sknet29": 28.26}[name]
    assert params == pytest.approx(expected, abs=0.01)


def test_width_multiplier_scales_channels():
    full = count_params(harness.create_model("sknet29")).params
    quarter = count_params(harness.create_model("sknet29", width=0.25)).params
    assert quarter < full / 8
