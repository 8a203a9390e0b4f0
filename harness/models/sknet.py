"""SKNet (Li, Wang, Hu, Yang — Selective Kernel Networks, CVPR 2019, arXiv 1903.06586).

Reproduces: [P] Table 1/2 SKNet-50 (27.5M, 4.47 GMACs; exactly 27,479,784 parameters like the authors'
``sknet50.prototxt`` and timm's ``skresnext50_32x4d``) and SKNet-101 (48.9M, 8.46); SKNet-26 ({2,2,2,2},
Fig. 2 only); Table 6 (second-branch kernel / dilation / groups) and Table 7 (kernel combinations with and
without attention) through the ``branches`` and ``attention`` options; Table 5 SKNet-29 on ResNeXt-29 16×32d.

SK unit ([P] §3.1, prototxt): M = 2 branches, 3×3 and 3×3 dilation 2, each grouped conv (G = 32) → BN →
ReLU, stride on both; fuse Σ → GAP → fc C→d (no bias) → BN → ReLU, d = max(C/r, L), r = 16, L = 32
(d = 32, 32, 32, 64 across the stages); select fc d→M·C (no bias) → softmax over branches.

Deviations (each a named option defaulting to the paper):
- PyTorch BN defaults (momentum 0.1) instead of Caffe's 0.95; max-pool pad 1 + floor instead of ceil.
- Fc init: PyTorch's default for the attention fcs (prototxt: Gaussian std 0.01); MSRA for the convs.
- SKNet-29: the SK unit's own G = 32 on both branches of the 16×32d backbone (28.26M vs. the published
  27.7M of [P] Table 5; keeping the backbone's 16 groups would give 37.55M). [P] §4.2 gives no configuration
  (the supplementary with it was not found); the report shows the gap.
- ``width`` scales channels for short runs (L is not scaled); ``branches`` accepts M = 1..4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from harness.models.registry import register_model
from harness.models.resnext import build_cifar, build_imagenet
from harness.models.sk import PAPER_BRANCH_SPECS, parse_branches, sk_conv


def _sk(groups: int, branches: Sequence[Any], r: int, L: int, attention: bool):
    parsed = parse_branches(branches)
    return lambda stage: sk_conv(groups, branches=parsed, r=r, L=L, attention=attention)


def _imagenet(layers, cardinality, base_width, branches, r, L, attention, width, num_classes) -> nn.Module:
    return build_imagenet(layers=layers, cardinality=cardinality, base_width=base_width, width=width,
                          num_classes=num_classes, mid=_sk(cardinality, branches, r, L, attention))


@register_model(family="sknet", paper_table="P Fig. 2")
def sknet26(*, layers: Sequence[int] = (2, 2, 2, 2), cardinality: int = 32, base_width: int = 4,
            branches: Sequence[Any] = PAPER_BRANCH_SPECS, r: int = 16, L: int = 32, attention: bool = True,
            width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """SKNet-26 ({2,2,2,2} SK units), ImageNet; only a plot point in the paper (≈16.8M)."""
    return _imagenet(layers, cardinality, base_width, branches, r, L, attention, width, num_classes)


@register_model(family="sknet", paper_table="P Table 2", plain="resnext50")
def sknet50(*, layers: Sequence[int] = (3, 4, 6, 3), cardinality: int = 32, base_width: int = 4,
            branches: Sequence[Any] = PAPER_BRANCH_SPECS, r: int = 16, L: int = 32, attention: bool = True,
            width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """SKNet-50 (SK[M=2,G=32,r=16] on ResNeXt-50 32×4d), ImageNet, 27.5M / 4.47 GMACs."""
    return _imagenet(layers, cardinality, base_width, branches, r, L, attention, width, num_classes)


@register_model(family="sknet", paper_table="P Table 2", plain="resnext101")
def sknet101(*, layers: Sequence[int] = (3, 4, 23, 3), cardinality: int = 32, base_width: int = 4,
             branches: Sequence[Any] = PAPER_BRANCH_SPECS, r: int = 16, L: int = 32, attention: bool = True,
             width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """SKNet-101 ({3,4,23,3} SK units), ImageNet, 48.9M / 8.46 GMACs."""
    return _imagenet(layers, cardinality, base_width, branches, r, L, attention, width, num_classes)


@register_model(family="sknet", paper_table="P Table 5", input_size=(3, 32, 32), plain="resnext29_16x32d")
def sknet29(*, cardinality: int = 16, base_width: int = 32, groups: int = 32,
            branches: Sequence[Any] = PAPER_BRANCH_SPECS,
            r: int = 16, L: int = 32, attention: bool = True, width: float = 1.0, num_classes: int = 10) -> nn.Module:
    """SKNet-29 on ResNeXt-29 16×32d, CIFAR (paper: 27.7M; this build 28.26M, see Deviations)."""
    return build_cifar(cardinality=cardinality, base_width=base_width, width=width, num_classes=num_classes,
                       mid=_sk(groups, branches, r, L, attention))
