"""Attention vs. object scale ([P] §4.4, Figs. 3–4): the SK units' branch attention on the same images,
their central object enlarged by centre-cropping 1/s of the image and resizing it back.

SK units are named as in the paper, ``SK_<stage>_<block>``: stages numbered like [P] Table 1 (conv2 … conv5;
the stem is stage 1, so the CIFAR nets' three stages are 2–4), blocks 1-based. The attention of a unit is
the softmax over its M branches per channel, shape (images, M, C):
- our ``SelectiveKernel``: a forward hook on ``fc_select`` reads the logits (B, M·C) and applies the softmax
  (the module itself uses the equal ``sigmoid(z₁ − z₂)`` for M = 2, which the tests check);
- timm's ``SelectiveKernel``: a forward hook on its ``attn`` module, whose output is already that softmax.

Hooks exist only inside ``capture`` and are removed on exit, so the normal forward (and its speed) is
untouched. Per unit and scale ``analyse`` keeps the per-channel mean attention of each branch and, per image,
the *mean attention difference*: the channel-mean attention of the branch with the largest receptive field
minus that of the smallest ([P] Fig. 3: 5×5 minus 3×3). Class means (Fig. 4) come from those and the labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import ConfigError
from harness.measure.accuracy import check_outputs
from harness.models.sk import SelectiveKernel


@dataclass(frozen=True)
class SKUnit:
    name: str  # SK_<stage>_<block>
    stage: int
    block: int
    hooked: nn.Module  # ours: fc_select (logits); timm: attn (softmax)
    receptive: tuple[int, ...]  # receptive field of each branch, e.g. (3, 5)
    softmax_done: bool  # timm's hook output is already the softmax

    @property
    def large(self) -> int:
        return int(np.argmax(self.receptive))

    @property
    def small(self) -> int:
        return int(np.argmin(self.receptive))


def _receptive(conv: nn.Conv2d) -> int:
    return conv.dilation[0] * (conv.kernel_size[0] - 1) + 1


def _ours(block_conv: nn.Module) -> tuple[nn.Module, tuple[int, ...], bool] | None:
    if isinstance(block_conv, SelectiveKernel) and block_conv.attention:
        return block_conv.fc_select, tuple(_receptive(p[0]) for p in block_conv.paths), False
    return None


def _timm(block_conv: nn.Module) -> tuple[nn.Module, tuple[int, ...], bool] | None:
    from timm.layers.selective_kernel import SelectiveKernel as TimmSK

    if isinstance(block_conv, TimmSK):
        return block_conv.attn, tuple(_receptive(p.conv) for p in block_conv.paths), True
    return None


def _stages(model: nn.Module) -> list[nn.Module]:
    if isinstance(getattr(model, "stages", None), nn.Sequential):  # our ResNeXtBackbone
        return list(model.stages)
    return [getattr(model, f"layer{i}") for i in range(1, 9) if hasattr(model, f"layer{i}")]  # timm's ResNet


def find_sk_units(model: nn.Module) -> list[SKUnit]:
    """The SK units of ``model`` with attention, in forward order; a ``ConfigError`` when it has none."""
    units = []
    for s, stage in enumerate(_stages(model)):
        for b, block in enumerate(stage):
            found = _ours(getattr(block, "conv2", None)) or _timm(getattr(block, "conv2", None))
            if found is not None:
                units.append(SKUnit(f"SK_{s + 2}_{b + 1}", s + 2, b + 1, *found))
    if not units:
        raise ConfigError(f"{type(model).__name__} has no SK units with attention; the attention analysis needs an "
                          "SK network (sknet*, with attention: true, or timm:skresnext50_32x4d)")
    return units


@contextmanager
def capture(units: Sequence[SKUnit]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, every forward stores each unit's attention (B, M, C) under its name."""
    store: dict[str, torch.Tensor] = {}
    handles = [u.hooked.register_forward_hook(_hook(u, store)) for u in units]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def _hook(unit: SKUnit, store: dict[str, torch.Tensor]) -> Callable[..., None]:
    branches = len(unit.receptive)

    def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        weights = output.detach().float().reshape(output.shape[0], branches, -1)
        # a copy either way: the module may reuse its output's buffer after the hook
        store[unit.name] = weights.clone() if unit.softmax_done else weights.softmax(dim=1)

    return hook


def zoom(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Centre crop of 1/``scale`` of each side, resized back (bilinear) to the input size."""
    if scale == 1.0:
        return x
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h / scale)), max(1, round(w / scale))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)


@dataclass
class UnitScale:
    """One unit at one scale: what a record keeps (raw enough to re-plot Figs. 3–4)."""

    unit: SKUnit
    scale: float
    channel_sum: torch.Tensor | None = None  # (M, C), float64
    image_diff: list[float] = field(default_factory=list)

    def add(self, weights: torch.Tensor) -> None:
        total = weights.double().sum(0).cpu()
        self.channel_sum = total if self.channel_sum is None else self.channel_sum + total
        diff = weights[:, self.unit.large].mean(-1) - weights[:, self.unit.small].mean(-1)
        self.image_diff += diff.cpu().tolist()

    def class_means(self, labels: Sequence[int], num_classes: int) -> tuple[list[float | None], list[int]]:
        counts = np.bincount(np.asarray(labels), minlength=num_classes)
        sums = np.bincount(np.asarray(labels), weights=np.asarray(self.image_diff), minlength=num_classes)
        means = [float(s / c) if c else None for s, c in zip(sums, counts, strict=True)]
        return means, counts.tolist()

    def to_record(self, labels: Sequence[int], num_classes: int) -> dict[str, object]:
        means, counts = self.class_means(labels, num_classes)
        return {"unit": self.unit.name, "stage": self.unit.stage, "block": self.unit.block, "scale": self.scale,
                "branch_receptive": list(self.unit.receptive), "large_branch": self.unit.large,
                "small_branch": self.unit.small,
                "channel_mean": (self.channel_sum / len(self.image_diff)).tolist(),
                "image_diff": self.image_diff, "class_mean_diff": means, "class_counts": counts}


@dataclass
class AttentionResult:
    units: list[SKUnit]
    scales: tuple[float, ...]
    labels: list[int]
    top1_correct: dict[float, int]  # per scale: is the model still right on the enlarged images?
    stats: dict[tuple[str, float], UnitScale]


def analyse(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, scales: Sequence[float],
            device: torch.device | str, num_classes: int,
            on_batch: Callable[[int], None] | None = None) -> AttentionResult:
    """Every SK unit's attention on every image of ``batches`` at every scale."""
    device = torch.device(device)
    model.eval().to(device)
    units = find_sk_units(model)
    stats = {(u.name, s): UnitScale(u, s) for s in scales for u in units}
    labels: list[int] = []
    top1 = dict.fromkeys(scales, 0)
    with capture(units) as store, torch.inference_mode():
        for x, y in batches:
            x = x.to(device, non_blocking=True)
            for s in scales:
                logits = model(zoom(x, s))
                check_outputs(logits, num_classes)
                top1[s] += int((logits.argmax(1).cpu() == y).sum())
                for u in units:
                    stats[(u.name, s)].add(store.pop(u.name))
            labels += y.tolist()
            if on_batch is not None:
                on_batch(len(y))
    return AttentionResult(units, tuple(scales), labels, top1, stats)
