"""The learning-rate schedule: linear warmup, then ResNeXt's step decay ([RX] Appendix A: ×0.1 at 50% and
75% of the epochs) or a cosine decay (a named deviation that suits short runs)."""

from __future__ import annotations

import math

from harness.train.config import TrainConfig


def lr_at(config: TrainConfig, *, step: int, steps_per_epoch: int) -> float:
    """Learning rate for 0-based global ``step``: linear warmup, then step or cosine decay."""
    warmup_steps = config.warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        return config.lr * (step + 1) / warmup_steps
    if config.schedule == "step":
        epoch = step // steps_per_epoch  # ResNeXt decays at epoch boundaries, not mid-epoch
        return config.lr * 0.1 ** ((epoch >= 0.5 * config.epochs) + (epoch >= 0.75 * config.epochs))
    total = config.epochs * steps_per_epoch - warmup_steps
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / total))
