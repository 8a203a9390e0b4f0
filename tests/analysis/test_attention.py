"""Attention extraction: the paper's unit names, the hooked softmax equals what the forward uses (the M = 2
sigmoid path included), timm's SK attention equals ours on converted weights, hooks leave no trace."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models.resnet import ResNet
from timm.models.sknet import SelectiveKernelBottleneck

from harness import create_model
from harness.analysis.attention import SKUnit, _ours, analyse, capture, find_sk_units, zoom
from harness.errors import ConfigError
from harness.models.sk import Branch, SelectiveKernel
from harness.models.timm_keys import convert_timm_state_dict
from harness.models.weights import load_exactly


def _sk_unit(branches, seed=0) -> SelectiveKernel:
    torch.manual_seed(seed)
    unit = SelectiveKernel(16, 16, stride=1, branches=branches, groups=4, r=4, L=8).eval()
    for m in unit.modules():  # non-trivial BN so the attention is far from uniform
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():
        unit.fc_select.weight.mul_(5.0)
    return unit


@pytest.mark.parametrize("branches", [(Branch(3, 1), Branch(3, 2)), (Branch(3, 1), Branch(3, 2), Branch(3, 3))])
def test_hooked_softmax_is_what_the_forward_selects_with(branches):
    """For M = 2 the forward uses sigmoid(z1 − z2) in place; the hook applies the softmax to the logits."""
    unit = _sk_unit(branches)
    sk = SKUnit("SK_2_1", 2, 1, *_ours(unit))
    x = torch.randn(3, 16, 12, 12)
    with torch.inference_mode():
        with capture([sk]) as store:
            out = unit(x)
        weights = store[sk.name]  # (B, M, C)
        paths = [p(x) for p in unit.paths]
        expected = sum(weights[:, m, :, None, None] * paths[m] for m in range(len(paths)))
        reference = unit.attention_weights(x)
    assert weights.shape == (3, len(branches), 16)
    torch.testing.assert_close(weights.sum(1), torch.ones(3, 16))
    torch.testing.assert_close(weights, reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert weights.std() > 0.05  # far from uniform: the comparison means something
    if len(branches) == 2:
        logits = unit.attention_logits(paths)
        torch.testing.assert_close(weights[:, 0], (logits[:, 0] - logits[:, 1]).sigmoid(), rtol=0, atol=1e-6)


def test_capture_leaves_the_forward_untouched():
    model = create_model("sknet29", width=0.0625).eval()
    x = torch.randn(2, 3, 16, 16)
    units = find_sk_units(model)
    with torch.inference_mode():
        before = model(x)
        with capture(units) as store:
            during = model(x)
        after = model(x)
    assert len(store) == len(units)
    assert torch.equal(before, during) and torch.equal(before, after)
    assert all(not u.hooked._forward_hooks for u in units)  # nothing stays registered: no cost outside capture


def test_units_are_named_as_in_the_paper():
    names = [u.name for u in find_sk_units(create_model("sknet50", width=0.0625))]
    assert names == [f"SK_{s}_{b}" for s, n in zip((2, 3, 4, 5), (3, 4, 6, 3), strict=True) for b in range(1, n + 1)]
    cifar = [u.name for u in find_sk_units(create_model("sknet29", width=0.0625))]
    assert cifar == [f"SK_{s}_{b}" for s in (2, 3, 4) for b in (1, 2, 3)]
    timm_names = [u.name for u in find_sk_units(timm.create_model("skresnext50_32x4d"))]
    assert timm_names == names
    assert {u.receptive for u in find_sk_units(create_model("sknet29", width=0.0625))} == {(3, 5)}
    with pytest.raises(ConfigError, match="has no SK units with attention"):
        find_sk_units(create_model("sknet29", width=0.0625, attention=False))
    with pytest.raises(ConfigError, match="has no SK units"):
        find_sk_units(create_model("senet29", width=0.0625))


@pytest.mark.slow
def test_timm_attention_equals_ours_on_converted_weights():
    sk_args = {"sk_kwargs": {"rd_ratio": 1 / 16, "rd_divisor": 32, "split_input": False}}
    donor = ResNet(block=SelectiveKernelBottleneck, layers=[1, 2, 1, 1], cardinality=32, base_width=4,
                   block_args=sk_args).eval()
    ours = create_model("sknet50", layers=(1, 2, 1, 1)).eval()
    torch.manual_seed(0)
    for m in donor.modules():  # non-trivial BN statistics: attention far from uniform
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    load_exactly(ours, convert_timm_state_dict(donor.state_dict()), where="test")
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        a = analyse(donor, [(x, torch.tensor([0, 1]))], scales=[1.0, 1.5], device="cpu", num_classes=1000)
        b = analyse(ours, [(x, torch.tensor([0, 1]))], scales=[1.0, 1.5], device="cpu", num_classes=1000)
    assert [u.name for u in a.units] == ["SK_2_1", "SK_3_1", "SK_3_2", "SK_4_1", "SK_5_1"]
    for key, stats in a.stats.items():
        torch.testing.assert_close(stats.channel_sum, b.stats[key].channel_sum, rtol=0, atol=1e-5)


def test_zoom_enlarges_the_centre():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 2:6, 2:6] = 1.0  # the central object, half the side
    assert torch.equal(zoom(x, 1.0), x)
    assert torch.allclose(zoom(x, 2.0), torch.ones(1, 1, 8, 8))
    assert zoom(torch.randn(2, 3, 32, 32), 1.5).shape == (2, 3, 32, 32)


@pytest.mark.slow
def test_analyse_keeps_per_image_differences_and_class_means():
    model = create_model("sknet29", width=0.0625)
    torch.manual_seed(0)
    batches = [(torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 1, 3])),
               (torch.randn(2, 3, 16, 16), torch.tensor([3, 3]))]
    result = analyse(model, batches, scales=[1.0, 2.0], device="cpu", num_classes=10)
    assert result.labels == [0, 1, 1, 3, 3, 3] and set(result.top1_correct) == {1.0, 2.0}
    stats = result.stats[("SK_3_2", 2.0)]
    record = stats.to_record(result.labels, 10)
    assert record["unit"] == "SK_3_2" and record["scale"] == 2.0 and len(record["image_diff"]) == 6
    channel = torch.tensor(record["channel_mean"])
    torch.testing.assert_close(channel.sum(0), torch.ones(channel.shape[1], dtype=channel.dtype))  # sums to 1
    diffs = record["image_diff"]
    assert record["class_counts"][:4] == [1, 2, 0, 3] and record["class_mean_diff"][2] is None
    assert record["class_mean_diff"][3] == pytest.approx(sum(diffs[3:]) / 3)
    assert record["branch_receptive"] == [3, 5] and record["large_branch"] == 1 and record["small_branch"] == 0
