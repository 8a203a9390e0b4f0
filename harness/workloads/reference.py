"""The reference workload: a fixed yardstick for noise normalisation of latency (not from any paper).

A suite with ``latency.reference: true`` times this network as one more member of every timing group, and the
frozen-baseline gate (``python -m harness gate check``) divides each model's latency by the reference's of the same
cycles: a machine that is uniformly slower today then does not look like a regression. It mixes the op types the
SK/SE/ResNeXt models run at inference (dense and grouped convs with a bias, as a conv with its BN folded in, ReLU,
global pooling, a linear head), so it slows down with them under the same interference.

It must never change: baselines taken with it would no longer compare. So it is self-contained (plain ``torch.nn``
layers, nothing shared with the model families, whose blocks may be optimised) and its weights come from its own
seeded generator; ``tests/workloads/test_reference.py`` pins its structure and its exact output on a fixed input.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.registry import register_model

_SEED = 20190319  # fixed forever: the weights are part of the yardstick
# (in, out, stride, groups) of each 3×3 conv → ReLU
_CONVS = ((3, 32, 1, 1), (32, 64, 2, 1), (64, 64, 1, 8), (64, 128, 2, 1), (128, 128, 1, 16))


def _init(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(_SEED)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.01)


@register_model(family="reference", description="fixed reference workload for latency normalisation",
                input_size=(3, 32, 32))
def reference_convnet(*, num_classes: int = 10) -> nn.Module:
    """Fixed reference workload (dense and grouped convs, ReLU, pooling) for latency normalisation."""
    layers: list[nn.Module] = []
    for cin, cout, stride, groups in _CONVS:
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=True), nn.ReLU(inplace=True)]
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))
    _init(model)
    return model
