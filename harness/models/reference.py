"""A fixed reference workload for noise normalisation (not from any paper).

The latency gate (``python -m harness check``) times this network interleaved with the models, round by
round, and divides each model's latency by the reference's latency of the same round: a machine that is
uniformly slower today then does not look like a regression. It mixes the op types of the SK/SE models
(dense and grouped convs, BN, ReLU, global pooling) so it slows down with them under the same interference.
It must never change: baselines taken with it would no longer compare.
"""

from __future__ import annotations

from torch import nn

from harness.models.blocks import conv_bn_act
from harness.registry import register_model


@register_model(family="reference", description="fixed reference workload for latency normalisation",
                input_size=(3, 32, 32))
def reference_convnet(*, num_classes: int = 10) -> nn.Module:
    """Fixed reference workload (convs, grouped convs, BN, pooling) for latency normalisation."""
    return nn.Sequential(
        conv_bn_act(3, 32, kernel=3),
        conv_bn_act(32, 64, kernel=3, stride=2),
        conv_bn_act(64, 64, kernel=3, groups=8),
        conv_bn_act(64, 128, kernel=3, stride=2),
        conv_bn_act(128, 128, kernel=3, groups=16),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, num_classes),
    )
