"""ResNeXt (Xie et al., CVPR 2017) — the baseline of [P] Tables 1–3, 5 and 7.

Reproduces: [P] Table 1/2 ResNeXt-50 (32×4d, 25.0M, 4.24 GMACs) and ResNeXt-101 (44.3M, 7.99);
Table 3 "deeper" ({3,4,8,3}) and 36×4d rows through the ``layers`` / ``cardinality`` options;
Table 5 ResNeXt-29 8×64d / 16×32d / 16×64d (34.4M / 25.2M / 68.1M) from [RX] Appendix A;
Table 7's single-kernel rows through ``kernel`` / ``dilation`` of the grouped conv.

Deviations (each a named option defaulting to the paper):
- Max-pool uses pad 1 + floor rounding (Caffe: no pad + ceil); both give 56×56.
- PyTorch BN defaults (momentum 0.1, eps 1e-5) instead of Caffe's moving average 0.95.
- Stride sits on the 3×3 conv (as in the SKNet prototxt and timm), not on the first 1×1 ([RX] Caffe v1).
- ``width`` (default 1.0) scales every channel count for short runs; not in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from harness.models.blocks import (
    ResNeXtBackbone,
    bottleneck_stages,
    cifar_stem,
    grouped_conv,
    imagenet_stem,
    scaled,
)
from harness.models.registry import register_model


def build_imagenet(*, layers: Sequence[int], cardinality: int, base_width: int, width: float,
                   num_classes: int, mid, post=None) -> nn.Module:
    stem_width = scaled(64, width)
    return ResNeXtBackbone(
        stem=imagenet_stem(stem_width), stem_out=stem_width,
        stages=bottleneck_stages(layers, cardinality=cardinality, base_width=base_width, width=width),
        mid=mid, post=post, num_classes=num_classes,
    )


def build_cifar(*, cardinality: int, base_width: int, width: float, num_classes: int, mid, post=None) -> nn.Module:
    stem_width = scaled(64, width)
    return ResNeXtBackbone(
        stem=cifar_stem(stem_width), stem_out=stem_width,
        stages=bottleneck_stages((3, 3, 3), cardinality=cardinality, base_width=base_width, width=width),
        mid=mid, post=post, num_classes=num_classes,
    )


def _plain(cardinality: int, kernel: int, dilation: int):
    return lambda stage: grouped_conv(cardinality, kernel=kernel, dilation=dilation)


@register_model(family="resnext", paper_table="P Table 2")
def resnext50(*, layers: Sequence[int] = (3, 4, 6, 3), cardinality: int = 32, base_width: int = 4,
              kernel: int = 3, dilation: int = 1, width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """ResNeXt-50 (32×4d), ImageNet, 25.0M / 4.24 GMACs."""
    return build_imagenet(layers=layers, cardinality=cardinality, base_width=base_width, width=width,
                          num_classes=num_classes, mid=_plain(cardinality, kernel, dilation))


@register_model(family="resnext", paper_table="P Table 2")
def resnext101(*, layers: Sequence[int] = (3, 4, 23, 3), cardinality: int = 32, base_width: int = 4,
               kernel: int = 3, dilation: int = 1, width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """ResNeXt-101 (32×4d), ImageNet, 44.3M / 7.99 GMACs."""
    return build_imagenet(layers=layers, cardinality=cardinality, base_width=base_width, width=width,
                          num_classes=num_classes, mid=_plain(cardinality, kernel, dilation))


def _cifar(cardinality: int, base_width: int, width: float, num_classes: int) -> nn.Module:
    return build_cifar(cardinality=cardinality, base_width=base_width, width=width, num_classes=num_classes,
                       mid=_plain(cardinality, 3, 1))


@register_model(family="resnext", paper_table="P Table 5", input_size=(3, 32, 32))
def resnext29_8x64d(*, width: float = 1.0, num_classes: int = 10) -> nn.Module:
    """ResNeXt-29 8×64d, CIFAR, 34.4M."""
    return _cifar(8, 64, width, num_classes)


@register_model(family="resnext", paper_table="P Table 5", input_size=(3, 32, 32))
def resnext29_16x32d(*, width: float = 1.0, num_classes: int = 10) -> nn.Module:
    """ResNeXt-29 16×32d, CIFAR, 25.2M (the SENet-29 / SKNet-29 backbone)."""
    return _cifar(16, 32, width, num_classes)


@register_model(family="resnext", paper_table="P Table 5", input_size=(3, 32, 32))
def resnext29_16x64d(*, width: float = 1.0, num_classes: int = 10) -> nn.Module:
    """ResNeXt-29 16×64d, CIFAR, 68.1M."""
    return _cifar(16, 64, width, num_classes)
