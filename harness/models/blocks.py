"""Building blocks shared by the ResNeXt, SENet and SKNet families.

The bottleneck is one class; what differs between the families is passed in: the middle
(3×3 grouped) operation and an optional attention applied to the block output before the residual
sum (SE). Layer names and op order follow timm's ResNet so complexity counts can be compared 1:1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import ConfigError

# (in_channels, out_channels, stride) -> module computing conv → BN → ReLU
MidFactory = Callable[[int, int, int], nn.Module]
# (channels) -> module mapping a tensor to the same shape (e.g. SE)
PostFactory = Callable[[int], nn.Module]


class ConvBnAct(nn.Sequential):
    """conv (no bias) → BN → optional ReLU; at inference the BN is folded into the conv.

    Folding is exact algebra (w·γ/σ, β − μ·γ/σ), so the function is the paper's; it saves one full pass over
    every activation. It applies only in eval mode without autograd and never while fvcore/jit traces the
    model, so MAC counts still include the BN as fvcore counts it. The folded weights are cached and rebuilt
    when any of the underlying tensors changes (version counter, storage, dtype or device). Under torch.compile
    the module runs unfolded, as timm's do: the cache's key (data pointers, version counters) is Python state
    that dynamo cannot trace (each conv was a graph break, and the recompilations reached dynamo's limit), and
    the compiler fuses the BN into its own kernels.
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, act: bool) -> None:
        layers: list[nn.Module] = [conv, bn] + ([nn.ReLU(inplace=True)] if act else [])
        super().__init__(*layers)
        self._folded: tuple[tuple[object, ...], torch.Tensor, torch.Tensor] | None = None

    def _fold_key(self) -> tuple[object, ...]:
        tensors = (self[0].weight, self[1].weight, self[1].bias, self[1].running_mean, self[1].running_var)
        return tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in tensors)

    def _folded_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        key = self._fold_key()
        if self._folded is None or self._folded[0] != key:
            conv, bn = self[0], self[1]
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            weight = conv.weight * scale.reshape(-1, 1, 1, 1)
            bias = bn.bias - bn.running_mean * scale
            self._folded = (key, weight, bias)
        return self._folded[1], self._folded[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.training or torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling()
                or self[1].running_var is None):
            return super().forward(x)
        conv = self[0]
        weight, bias = self._folded_params()
        y = F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        return y.relu_() if len(self) == 3 else y


def conv_bn_act(cin: int, cout: int, *, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1,
                act: bool = True) -> ConvBnAct:
    """conv (no bias) → BN → optional ReLU, with 'same' padding for odd kernels."""
    padding = dilation * (kernel - 1) // 2
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     bias=False)
    return ConvBnAct(conv, nn.BatchNorm2d(cout), act)


def grouped_conv(groups: int, *, kernel: int = 3, dilation: int = 1) -> MidFactory:
    """The plain ResNeXt middle op: one grouped conv → BN → ReLU."""

    def factory(cin: int, cout: int, stride: int) -> nn.Module:
        return conv_bn_act(cin, cout, kernel=kernel, stride=stride, dilation=dilation, groups=groups)

    return factory


class Bottleneck(nn.Module):
    """1×1 reduce → middle op (carries the stride) → 1×1 expand → BN → [post] → + shortcut → ReLU."""

    def __init__(self, cin: int, width: int, cout: int, *, stride: int, mid: MidFactory,
                 post: PostFactory | None = None) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(cin, width, kernel=1)
        self.conv2 = mid(width, width, stride)
        self.conv3 = conv_bn_act(width, cout, kernel=1, act=False)
        self.post = post(cout) if post is not None else nn.Identity()
        self.shortcut = (
            conv_bn_act(cin, cout, kernel=1, stride=stride, act=False)
            if stride != 1 or cin != cout else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        x = self.conv1(x)
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.post(x)
        x = x + shortcut
        return self.act(x)


@dataclass(frozen=True)
class StageSpec:
    blocks: int
    width: int  # bottleneck (middle) channels
    out: int  # block output channels
    stride: int


def make_stages(cin: int, stages: list[StageSpec], *, mid: Callable[[int], MidFactory],
                post: PostFactory | None) -> tuple[nn.Sequential, int]:
    """Stack bottleneck stages. ``mid(stage_index)`` gives the middle-op factory of that stage."""
    layers: list[nn.Module] = []
    for index, spec in enumerate(stages):
        blocks = []
        for b in range(spec.blocks):
            stride = spec.stride if b == 0 else 1
            blocks.append(Bottleneck(cin, spec.width, spec.out, stride=stride, mid=mid(index), post=post))
            cin = spec.out
        layers.append(nn.Sequential(*blocks))
    return nn.Sequential(*layers), cin


class ResNeXtBackbone(nn.Module):
    """Stem → bottleneck stages → global average pool → fc. One class for ImageNet and CIFAR."""

    def __init__(self, *, stem: nn.Module, stem_out: int, stages: list[StageSpec], mid: Callable[[int], MidFactory],
                 post: PostFactory | None, num_classes: int) -> None:
        super().__init__()
        self.stem = stem
        self.stages, features = make_stages(stem_out, stages, mid=mid, post=post)
        self.num_features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(features, num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.stages(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        # adaptive pooling (counted by fvcore: C·H·W) as in timm's head, so MAC counts compare 1:1
        x = self.pool(x)
        x = x.flatten(1)
        return self.fc(x)


def imagenet_stem(width: int) -> nn.Sequential:
    """7×7/2 conv → BN → ReLU → 3×3/2 max pool (pad 1, floor: 224 → 56, like Caffe's ceil/no-pad)."""
    return nn.Sequential(
        conv_bn_act(3, width, kernel=7, stride=2),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


def cifar_stem(width: int) -> nn.Sequential:
    """ResNeXt CIFAR stem: one 3×3 conv with 64 filters (scaled by width) → BN → ReLU."""
    return conv_bn_act(3, width, kernel=3)


def _init_weights(model: nn.Module) -> None:
    # MSRA init for convs, as the paper ([P] §4.1, He et al.) and the authors' prototxt.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def scaled(channels: int, width: float, *, multiple: int = 1) -> int:
    """Scale a channel count by ``width``, keep it a positive multiple of ``multiple``."""
    return max(multiple, int(round(channels * width / multiple)) * multiple)


def _check_positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"model option {name}={value!r} must be positive")


def bottleneck_stages(layers: Sequence[int], *, cardinality: int, base_width: int, width: float) -> list[StageSpec]:
    """ResNeXt stages: bottleneck width C·d·2^s, output 256·2^s, stride 2 from the second stage on.

    The same template gives the ImageNet nets ([RX] Table 1, four stages) and ResNeXt-29 for CIFAR
    ([RX] Appendix A, three stages of 3 blocks, outputs 256/512/1024).
    """
    for name, value in (("cardinality", cardinality), ("base_width", base_width), ("width", width)):
        _check_positive(name, value)
    specs = []
    for s, blocks in enumerate(layers):
        per_group = max(1, int(round(base_width * 2**s * width)))
        specs.append(StageSpec(int(blocks), per_group * cardinality, scaled(256 * 2**s, width), 1 if s == 0 else 2))
    return specs
