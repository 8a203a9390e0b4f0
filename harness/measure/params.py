"""Parameter counts (exact integers)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParamCount:
    params: int
    params_trainable: int


def count_params(model: nn.Module) -> ParamCount:
    """Total and trainable parameters; shared parameters are counted once."""
    unique = {id(p): p for p in model.parameters()}.values()
    total = sum(p.numel() for p in unique)
    trainable = sum(p.numel() for p in unique if p.requires_grad)
    return ParamCount(params=int(total), params_trainable=int(trainable))
