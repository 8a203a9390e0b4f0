"""Selective Kernel convolution (Li et al., CVPR 2019, §3.1, Eq. 1–6; authors' prototxt).

Split: M branches, each grouped conv → BN → ReLU (stride on every branch).
Fuse: U = Σ Uₘ → global average pool s → z = ReLU(BN(W s)), W ∈ R^{d×C}, d = max(C/r, L).
Select: fc d → M·C (no bias), softmax across the M branches per channel, V = Σ aₘ·Uₘ.

Implementation notes (why it is faster than the literal formulation, same outputs):
- s is computed as Σ mean(Uₘ) instead of mean(Σ Uₘ): no full-size U is materialised.
- branch outputs are never stacked into one (B, M, C, H, W) copy.
- for M = 2 the two-way softmax is sigmoid(z₁ − z₂), and V = U₂ + a·(U₁ − U₂) takes two full-size
  passes; without autograd the passes run in place on U₁'s buffer.
- at inference every conv → BN pair runs as one conv with the BN folded in (``ConvBnAct``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.errors import ConfigError
from harness.models.blocks import MidFactory, conv_bn_act

_BRANCH_RE = re.compile(r"^(\d+)x(\d+)(?:d(\d+))?(?:g(\d+))?$")


@dataclass(frozen=True)
class Branch:
    """One SK path: a ``kernel``×``kernel`` conv with ``dilation``; ``groups`` None = the unit's G."""

    kernel: int = 3
    dilation: int = 1
    groups: int | None = None

    @property
    def receptive(self) -> int:
        return self.dilation * (self.kernel - 1) + 1


PAPER_BRANCHES: tuple[Branch, ...] = (Branch(3, 1), Branch(3, 2))
# the same, as written in suites: 3×3 and 3×3 with dilation 2 ("5×5")
PAPER_BRANCH_SPECS: tuple[str, ...] = ("3x3", "3x3d2")


def parse_branch(spec: Any) -> Branch:
    """A branch from a dict ``{kernel, dilation, groups}``, a ``Branch``, or a string like ``3x3d2g32``."""
    if isinstance(spec, Branch):
        return spec
    if isinstance(spec, dict):
        unknown = set(spec) - {"kernel", "dilation", "groups"}
        if unknown:
            raise ConfigError(f"SK branch {spec}: unknown key {sorted(unknown)[0]!r}; use kernel, dilation, groups")
        return Branch(int(spec.get("kernel", 3)), int(spec.get("dilation", 1)),
                      None if spec.get("groups") is None else int(spec["groups"]))
    match = _BRANCH_RE.match(str(spec).strip().lower())
    if not match or match.group(1) != match.group(2):
        raise ConfigError(
            f"SK branch {spec!r} not understood; write e.g. '3x3', '3x3d2' (dilation 2) or '5x5g64' (64 groups)"
        )
    kernel, _, dil, groups = match.groups()
    return Branch(int(kernel), int(dil or 1), int(groups) if groups else None)


def parse_branches(specs: Sequence[Any] | None) -> tuple[Branch, ...]:
    if specs is None:
        return PAPER_BRANCHES
    branches = tuple(parse_branch(s) for s in specs)
    if not 1 <= len(branches) <= 4:
        raise ConfigError(f"SK needs 1 to 4 branches (the paper's M), got {len(branches)}")
    return branches


def attention_dim(channels: int, *, r: int, L: int) -> int:
    """d = max(C / r, L)  ([P] Eq. 4)."""
    return max(channels // r, L)


class SelectiveKernel(nn.Module):
    def __init__(self, cin: int, cout: int, *, stride: int, branches: Sequence[Branch], groups: int,
                 r: int = 16, L: int = 32, attention: bool = True) -> None:
        super().__init__()
        if attention and len(branches) < 2:
            raise ConfigError("SK attention needs at least 2 branches; add a branch or set attention: false")
        self.paths = nn.ModuleList(
            conv_bn_act(cin, cout, kernel=b.kernel, stride=stride, dilation=b.dilation, groups=b.groups or groups)
            for b in branches
        )
        self.channels = cout
        self.attention = attention
        if attention:
            d = attention_dim(cout, r=r, L=L)
            self.fc_reduce = conv_bn_act(cout, d, kernel=1)  # fc C→d (no bias) → BN → ReLU
            self.fc_select = nn.Conv2d(d, cout * len(branches), 1, bias=False)

    def attention_logits(self, paths: list[torch.Tensor]) -> torch.Tensor:
        """Per-branch, per-channel logits of shape (B, M, C)."""
        s = paths[0].mean((2, 3), keepdim=True)
        for u in paths[1:]:
            s = s + u.mean((2, 3), keepdim=True)
        z = self.fc_reduce(s)
        logits = self.fc_select(z)
        return logits.view(logits.shape[0], len(paths), self.channels)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax attention (B, M, C) of input ``x`` — for analysis (e.g. attention vs. object scale)."""
        paths = [path(x) for path in self.paths]
        return self.attention_logits(paths).softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = [path(x) for path in self.paths]
        if not self.attention:
            return _sum(paths)
        logits = self.attention_logits(paths)
        if len(paths) == 2:
            return _select_two(paths[0], paths[1], logits)
        return _select_many(paths, logits)


def _sum(paths: list[torch.Tensor]) -> torch.Tensor:
    out = paths[0]
    for u in paths[1:]:
        out = out + u
    return out


def _select_two(u1: torch.Tensor, u2: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    # softmax over two paths = sigmoid of the logit difference
    a = (logits[:, 0] - logits[:, 1]).sigmoid()[:, :, None, None]
    if torch.is_grad_enabled() and (u1.requires_grad or u2.requires_grad):
        return torch.addcmul(u2, a, u1 - u2)
    # inference: reuse u1's buffer (it is not needed afterwards)
    return u1.sub_(u2).mul_(a).add_(u2)


def _select_many(paths: list[torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
    attn = logits.softmax(dim=1)[:, :, :, None, None]
    out = paths[0] * attn[:, 0]
    for m in range(1, len(paths)):
        out = torch.addcmul(out, paths[m], attn[:, m])
    return out


def sk_conv(groups: int, *, branches: Sequence[Branch], r: int, L: int, attention: bool) -> MidFactory:
    """Middle-op factory for the bottleneck: an SK unit replacing the 3×3 grouped conv."""

    def factory(cin: int, cout: int, stride: int) -> nn.Module:
        return SelectiveKernel(cin, cout, stride=stride, branches=branches, groups=groups, r=r, L=L,
                               attention=attention)

    return factory
