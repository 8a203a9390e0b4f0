"""Squeeze-and-Excitation unit (Hu et al., CVPR 2018), as used by SENet-50/101 in [P] Table 1."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """GAP → fc C→C/r (bias) → ReLU → fc C/r→C (bias) → sigmoid → channel-wise scale.

    The fcs are 1×1 convs (as in the SENet release and timm), so fc dims are [C/r, C]:
    [16,256], [32,512], [64,1024], [128,2048] for SENet-50 — [P] Table 1.
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.fc1(s)
        s = self.act(s)
        s = self.fc2(s)
        return x * s.sigmoid()
