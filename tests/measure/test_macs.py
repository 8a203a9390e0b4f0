"""Activation counts and the per-module breakdown: totals against forward hooks, stages against the total, and an
SK unit's parts against its structure (two branches of the same size, small fc layers)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.measure.macs import count_macs, stage_names
from harness.models.registry import create_model

SIZE = (3, 64, 64)


def _hooked_activations(model: nn.Module, size: tuple[int, int, int]) -> int:
    """Elements written by every conv and linear layer, counted with forward hooks (the oracle)."""
    total = 0

    def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    # with autograd on, ConvBnAct runs its conv module instead of the folded F.conv2d, so every hook fires
    model.eval()
    model(torch.zeros(1, *size))
    for handle in handles:
        handle.remove()
    return total


@pytest.fixture(scope="module")
def counts():
    # two blocks in the second stage keep the three traces fast; the block structure is the paper's
    models = {name: create_model(name, width=0.25, num_classes=10, layers=[1, 2, 1, 1])
              for name in ("resnext50", "senet50", "sknet50")}
    return {name: (model, count_macs(model, input_size=SIZE, breakdown=True)) for name, model in models.items()}


def test_activations_are_the_conv_and_linear_outputs(counts):
    for name, (model, count) in counts.items():
        assert count.activations == _hooked_activations(model, SIZE), name
        assert set(count.activations_by_operator) == {"conv", "linear"}


def test_stages_partition_the_network(counts):
    for name, (_, count) in counts.items():
        assert count.stages == ("stem", "stages.0", "stages.1", "stages.2", "stages.3", "pool", "fc")
        stage_costs = [count.modules[s] for s in count.stages if s in count.modules]
        assert sum(c.macs for c in stage_costs) == count.macs, name
        assert sum(c.activations for c in stage_costs) == count.activations, name


def test_sk_branches_double_the_middle_activations_and_se_adds_almost_nothing(counts):
    rx, se, sk = (counts[n][1].modules for n in ("resnext50", "senet50", "sknet50"))
    block = "stages.1.1"  # a non-downsampling block: the branches see the block's own resolution
    mid = rx[f"{block}.conv2"].activations
    assert sk[f"{block}.conv2.paths.0"].activations == sk[f"{block}.conv2.paths.1"].activations == mid
    assert sk[f"{block}.conv2.paths.0"].macs == rx[f"{block}.conv2"].macs  # same 3x3 grouped conv (dilation 1)
    fc = sk[f"{block}.conv2.fc_reduce"].activations + sk[f"{block}.conv2.fc_select"].activations
    assert sk[f"{block}.conv2"].activations == 2 * mid + fc and fc < mid / 10
    assert se[f"{block}.post"].activations < rx[f"{block}.conv3"].activations / 10
    assert f"{block}.conv2.paths.0.0" not in sk  # conv-inside-ConvBnAct is below the recorded depth


def test_without_breakdown_only_macs_are_counted(counts):
    model, full = counts["sknet50"]
    plain = count_macs(model, input_size=SIZE)
    assert plain.macs == full.macs and plain.activations is None and plain.modules == {}


def test_stage_names_of_a_timm_resnet():
    model = create_model("timm:resnet18", num_classes=10)
    names = stage_names(model)
    assert names[:4] == ("conv1", "bn1", "act1", "maxpool") and names[4:8] == ("layer1", "layer2", "layer3", "layer4")
