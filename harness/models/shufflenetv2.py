"""ShuffleNetV2 (Ma et al., ECCV 2018, [SN2]), plain, + SE and + SK: the lightweight models of [P] Table 4.

Reproduces: [P] Table 4, ShuffleNetV2 0.5× and 1.0×, plain, + SE and + SK (printed: 0.5× 1.40M / 40.39
MFLOPs, + SE 1.56M / 40.85, + SK 1.48M / 42.58; 1.0× 2.45M / 140.35, + SE 2.66M / 141.73, + SK 2.63M /
145.66; [SN2]'s own 0.5× 1.4M / 41 and 1.0× 2.3M / 146). The plain nets are [SN2] Table 5 (stem 3×3/2 conv
with 24 filters and a 3×3/2 max-pool; stages of {4, 8, 4} units with 48/96/192 (0.5×) or 116/232/464 (1.0×)
channels; 1×1 conv to 1024; global pool; fc) and equal torchvision's ``shufflenet_v2_x0_5`` / ``x1_0`` in
parameters (1,366,792 and 2,278,604), fvcore MACs and, given the same weights, outputs (tested).

One definition: a unit ([SN2] Fig. 3c/d) takes its depthwise op and its attention as arguments, as the
ResNeXt bottleneck does. + SE puts a squeeze-and-excitation on each unit; + SK replaces the 3×3 depthwise
convolutions by SK units whose branches are depthwise ([P] §3.2), M = 2 by default.

[P] gives neither the SE placement nor the SK settings (M, G, r, L) for ShuffleNetV2, and its plain "our
impl." rows differ from [SN2]'s net. ``benchmarks/shufflenet_search.py`` builds the plausible choices and
ranks them (score: max(|Δ#P| / 1%, |ΔMACs| / 1.5%) over both widths; ≤ 1 is within the report's tolerance);
its result sets the defaults below.

Deviations (each a named option; the attention defaults are the search's choice):
- Plain rows: not reproduced. [P] prints *more* parameters and *fewer* multiply-adds than [SN2]'s net
  (1.0×: 2.45M vs. 2.28M, 140.35 vs. 144.91 conv + fc MFLOPs). The search tried [SN2]'s stage widths and
  round ones (0.5×: 40/56/64 for 48; 1.0×: 112/120/128 for 116), head widths 1024 / 1280 and {3,7,3} or
  {5,9,5} units instead of {4,8,4}: nothing lands within tolerance; the closest are [SN2]'s own 0.5× net
  (1.37M, −2.37%; 42.52M, +5.28%) and at 1.0× {3,7,3} units with a 1280 head (2.51M, +2.31%; 137.89, −1.75%).
  Two free knobs (stage widths c/2c/4c and the head width) can hit any two numbers — 0.5×: 46/92/184, head
  1072 (1.40M / 40.95); 1.0×: 110/220/440, head 1216 (2.45M / 140.94) — which is no evidence of the
  authors' net, so the defaults stay [SN2]'s (``stage_channels``, ``head_channels``, ``stage_repeats``
  build the others). Curiously {4,6,6} units give exactly 1.40M / 40.39 conv + fc MFLOPs at 0.5×, but
  2.44M / 144.70 at 1.0×.
- Counting: fvcore counts an affine BN as 2 MACs per element, 2.05M (0.5×) and 3.90M (1.0×), about 5% of
  these nets, so our MACs (42.52M, 148.81M) exceed conv + fc (40.48M, 144.91M). Global pooling is a mean,
  as in torchvision (fvcore lists it as uncounted).
- + SE: scored on what it adds ([P]'s plain row + ours − our plain net, against [P]'s SE row), so the plain
  net's offset is not soaked up by SE settings. [P]'s SE adds 0.16M / 0.21M at 0.5× / 1.0×; per-unit SE
  alone cannot add 0.16M to the 0.5× net (r < 1; SENet's r = 16 alone: score 9.74), and r = 16 with an
  r = 16 head SE still adds too little (score 1.33). Chosen (score 0.80): SE on each unit's branch output
  (``se_position`` "branch"; "unit" = on the concatenated output) with ``r`` = 8, and an SE on the
  1024-channel head conv with ``head_r`` = 16 (None: none): +0.15M / +0.22M.
- + SK: M = 2 depthwise branches 3×3 and 3×3 dilation 2 (``branches``; ``group_width`` = channels per
  group, 1 = depthwise), each conv → BN → ReLU as [P] §3.1's SK unit (the plain depthwise conv has no ReLU);
  every 3×3 depthwise conv is replaced, the stride-2 units' projection ones too (``sk_proj``). d = max(C/r,
  L) with r = 16 and L = 24 (score 0.95): the ImageNet SKNets' L = 32 adds 0.22M at 1.0× against [P]'s
  0.18M even with only the branches' depthwise convs replaced (score 1.69; all replaced: score 3.21).
- MSRA init for convs (torchvision keeps PyTorch's default); PyTorch BN defaults.
- ``width`` scales every channel count for short runs; ``stem`` "cifar" (3×3/1 conv, no max-pool) keeps
  32×32 inputs at 16×16 in the first stage for CIFAR training. Neither is in the papers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from harness.errors import ConfigError
from harness.models.blocks import PostFactory, _init_weights, conv_bn_act, scaled
from harness.models.registry import register_model
from harness.models.se import SqueezeExcite
from harness.models.sk import SelectiveKernel, parse_branches

# (channels, stride) -> the spatial op of a unit on ``channels`` channels (a 3×3 depthwise conv → BN in [SN2])
DwFactory = Callable[[int, int], nn.Module]

REPEATS = (4, 8, 4)  # [SN2] Table 5: units per stage, the first with stride 2
CHANNELS = {"050": (48, 96, 192), "100": (116, 232, 464)}  # [SN2] Table 5, output channels of stages 2–4
HEAD = 1024  # conv5, [SN2] Table 5 (for 0.5×–1.5×)
STEM = 24
SE_POSITIONS = ("branch", "unit")
STEMS = ("imagenet", "cifar")


def depthwise(channels: int, stride: int) -> nn.Module:
    """[SN2]'s spatial op: 3×3 depthwise conv → BN, no ReLU."""
    return conv_bn_act(channels, channels, kernel=3, stride=stride, groups=channels, act=False)


def sk_depthwise(branches: Sequence[Any], *, r: int, L: int, attention: bool, group_width: int) -> DwFactory:
    """An SK unit whose branches are (depthwise, for ``group_width`` 1) grouped convs, replacing ``depthwise``."""
    parsed = parse_branches(branches)

    def factory(channels: int, stride: int) -> nn.Module:
        if channels % group_width:
            raise ConfigError(f"SK group_width={group_width} does not divide {channels} channels")
        return SelectiveKernel(channels, channels, stride=stride, branches=parsed, groups=channels // group_width,
                               r=r, L=L, attention=attention)

    return factory


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[SN2] §3 / ShuffleNet: interleave the channels of ``groups`` groups."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    """[SN2] Fig. 3c (stride 1: channel split, one branch) and Fig. 3d (stride 2: two branches).

    Branch: 1×1 conv → BN → ReLU → ``dw`` (carries the stride) → 1×1 conv → BN → ReLU → [attention on its
    C/2 channels]. The stride-2 unit's projection: ``proj_dw`` → 1×1 conv → BN → ReLU. Concat → [attention on
    all C channels] → channel shuffle. Layer order equals torchvision's, so state dicts line up.
    """

    def __init__(self, cin: int, cout: int, *, stride: int, dw: DwFactory, proj_dw: DwFactory,
                 branch_attention: PostFactory | None = None, unit_attention: PostFactory | None = None) -> None:
        super().__init__()
        half = cout // 2
        if stride == 1 and cin != 2 * half:
            raise ConfigError(f"a stride-1 ShuffleNetV2 unit needs equal even in/out channels, got {cin} → {cout}")
        self.proj = nn.Sequential(proj_dw(cin, stride), conv_bn_act(cin, half, kernel=1)) if stride > 1 else None
        self.branch = nn.Sequential(
            conv_bn_act(cin if stride > 1 else half, half, kernel=1),
            dw(half, stride),
            conv_bn_act(half, half, kernel=1),
        )
        self.branch_attention = branch_attention(half) if branch_attention else nn.Identity()
        self.unit_attention = unit_attention(2 * half) if unit_attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            keep, x = x.chunk(2, dim=1)
        else:
            keep = self.proj(x)
        y = self.branch(x)
        y = self.branch_attention(y)
        out = torch.cat((keep, y), dim=1)
        out = self.unit_attention(out)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """Stem → three stages of ``ShuffleUnit`` → 1×1 conv (head) → [head attention] → mean pool → fc."""

    def __init__(self, *, repeats: Sequence[int], channels: Sequence[int], head: int, stem: int, stem_kind: str,
                 dw: DwFactory, proj_dw: DwFactory, branch_attention: PostFactory | None,
                 unit_attention: PostFactory | None, head_attention: PostFactory | None, num_classes: int) -> None:
        super().__init__()
        self.stem = _stem(stem, stem_kind)
        stages, cin = [], stem
        for blocks, cout in zip(repeats, channels, strict=True):
            units = [ShuffleUnit(cin if i == 0 else cout, cout, stride=2 if i == 0 else 1, dw=dw, proj_dw=proj_dw,
                                 branch_attention=branch_attention, unit_attention=unit_attention)
                     for i in range(blocks)]
            stages.append(nn.Sequential(*units))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = conv_bn_act(cin, head, kernel=1)
        self.head_attention = head_attention(head) if head_attention else nn.Identity()
        self.num_features = head
        self.fc = nn.Linear(head, num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.stages(x)
        x = self.head(x)
        return self.head_attention(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        # a mean, as torchvision (fvcore lists it as uncounted), so MAC counts compare 1:1
        x = x.mean((2, 3))
        return self.fc(x)


def _stem(width: int, kind: str) -> nn.Module:
    if kind == "imagenet":  # [SN2] Table 5: conv1 3×3/2, max-pool 3×3/2 (224 → 56)
        return nn.Sequential(conv_bn_act(3, width, kernel=3, stride=2), nn.MaxPool2d(3, stride=2, padding=1))
    if kind == "cifar":
        return conv_bn_act(3, width, kernel=3)
    raise ConfigError(f"stem={kind!r} is not one of {', '.join(STEMS)}")


def _positive_ints(name: str, values: Sequence[int], *, count: int) -> tuple[int, ...]:
    values = tuple(int(v) for v in values)
    if len(values) != count or min(values) <= 0:
        raise ConfigError(f"model option {name}={list(values)} needs {count} positive integers")
    return values


def build(*, stage_repeats: Sequence[int], stage_channels: Sequence[int], head_channels: int, width: float,
          stem: str, num_classes: int, dw: DwFactory = depthwise, proj_dw: DwFactory = depthwise,
          branch_attention: PostFactory | None = None, unit_attention: PostFactory | None = None,
          head_attention: PostFactory | None = None) -> ShuffleNetV2:
    """A ShuffleNetV2; ``width`` scales the stem, stage (kept even) and head channels."""
    if width <= 0:
        raise ConfigError(f"model option width={width!r} must be positive")
    repeats = _positive_ints("stage_repeats", stage_repeats, count=3)
    channels = [scaled(c, width, multiple=2) for c in _positive_ints("stage_channels", stage_channels, count=3)]
    head = scaled(_positive_ints("head_channels", [head_channels], count=1)[0], width)
    return ShuffleNetV2(repeats=repeats, channels=channels, head=head, stem=scaled(STEM, width), stem_kind=stem,
                        dw=dw, proj_dw=proj_dw, branch_attention=branch_attention, unit_attention=unit_attention,
                        head_attention=head_attention, num_classes=num_classes)


def se_attention(*, r: int, se_position: str, head_r: int | None) -> dict[str, PostFactory | None]:
    """Where the SE units go: each unit's branch output or whole output, and optionally the head conv."""
    if se_position not in SE_POSITIONS:
        raise ConfigError(f"se_position={se_position!r} is not one of {', '.join(SE_POSITIONS)}")
    for name, value in (("r", r), ("head_r", head_r)):
        if value is not None and value <= 0:
            raise ConfigError(f"model option {name}={value!r} must be a positive integer")
    unit = partial(SqueezeExcite, reduction=r)
    return {"branch_attention": unit if se_position == "branch" else None,
            "unit_attention": unit if se_position == "unit" else None,
            "head_attention": partial(SqueezeExcite, reduction=head_r) if head_r else None}


def sk_ops(*, branches: Sequence[Any], r: int, L: int, attention: bool, group_width: int,
           sk_proj: bool) -> dict[str, DwFactory]:
    sk = sk_depthwise(branches, r=r, L=L, attention=attention, group_width=group_width)
    return {"dw": sk, "proj_dw": sk if sk_proj else depthwise}


# ------------------------------------------------------------------------------------------------ registry
# Defaults of the attention variants: the result of benchmarks/shufflenet_search.py (see Deviations).
SE_R, SE_POSITION, SE_HEAD_R = 8, "branch", 16
SK_BRANCHES, SK_R, SK_L, SK_PROJ = ("3x3", "3x3d2"), 16, 24, True


def _plain(size: str):
    def builder(*, stage_repeats: Sequence[int] = REPEATS, stage_channels: Sequence[int] = CHANNELS[size],
                head_channels: int = HEAD, stem: str = "imagenet", width: float = 1.0,
                num_classes: int = 1000) -> nn.Module:
        return build(stage_repeats=stage_repeats, stage_channels=stage_channels, head_channels=head_channels,
                     width=width, stem=stem, num_classes=num_classes)

    return builder


def _se(size: str):
    def builder(*, r: int = SE_R, se_position: str = SE_POSITION, head_r: int | None = SE_HEAD_R,
                stage_repeats: Sequence[int] = REPEATS, stage_channels: Sequence[int] = CHANNELS[size],
                head_channels: int = HEAD, stem: str = "imagenet", width: float = 1.0,
                num_classes: int = 1000) -> nn.Module:
        return build(stage_repeats=stage_repeats, stage_channels=stage_channels, head_channels=head_channels,
                     width=width, stem=stem, num_classes=num_classes,
                     **se_attention(r=r, se_position=se_position, head_r=head_r))

    return builder


def _sk(size: str):
    def builder(*, branches: Sequence[Any] = SK_BRANCHES, r: int = SK_R, L: int = SK_L, attention: bool = True,
                group_width: int = 1, sk_proj: bool = SK_PROJ, stage_repeats: Sequence[int] = REPEATS,
                stage_channels: Sequence[int] = CHANNELS[size], head_channels: int = HEAD, stem: str = "imagenet",
                width: float = 1.0, num_classes: int = 1000) -> nn.Module:
        return build(stage_repeats=stage_repeats, stage_channels=stage_channels, head_channels=head_channels,
                     width=width, stem=stem, num_classes=num_classes,
                     **sk_ops(branches=branches, r=r, L=L, attention=attention, group_width=group_width,
                              sk_proj=sk_proj))

    return builder


def _register(name: str, builder, description: str, plain: str | None = None) -> None:
    builder.__name__ = builder.__qualname__ = name
    builder.__module__ = __name__
    register_model(name, family="shufflenet", paper_table="P Table 4", description=description, plain=plain)(builder)


_register("shufflenetv2_050", _plain("050"),
          "ShuffleNetV2 0.5× ([SN2] Table 5), ImageNet (paper: 1.40M / 40.39 MFLOPs; this build 1.37M / 42.52)")
_register("shufflenetv2_050_se", _se("050"),
          "ShuffleNetV2 0.5× + SE, ImageNet (paper: 1.56M / 40.85 MFLOPs; this build 1.51M / 42.67)",
          plain="shufflenetv2_050")
_register("shufflenetv2_050_sk", _sk("050"),
          "ShuffleNetV2 0.5× + SK, ImageNet (paper: 1.48M / 42.58 MFLOPs; this build 1.45M / 44.82)",
          plain="shufflenetv2_050")
_register("shufflenetv2_100", _plain("100"),
          "ShuffleNetV2 1.0× ([SN2] Table 5), ImageNet (paper: 2.45M / 140.35 MFLOPs; this build 2.28M / 148.81)")
_register("shufflenetv2_100_se", _se("100"),
          "ShuffleNetV2 1.0× + SE, ImageNet (paper: 2.66M / 141.73 MFLOPs; this build 2.50M / 149.02)",
          plain="shufflenetv2_100")
_register("shufflenetv2_100_sk", _sk("100"),
          "ShuffleNetV2 1.0× + SK, ImageNet (paper: 2.63M / 145.66 MFLOPs; this build 2.48M / 154.07)",
          plain="shufflenetv2_100")
