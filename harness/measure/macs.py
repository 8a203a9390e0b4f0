"""Multiply-accumulate counts with fvcore, cross-checked with ``torch.utils.flop_counter``.

Convention: one multiply-add = 1 MAC. The papers' "GFLOPs" (SKNet [P] Table 1, following
ShuffleNet) are multiply-adds too, so paper GFLOPs compare with our GMACs. fvcore counts conv, linear,
matmul, batch-norm and adaptive pooling; elementwise ops (SE/SK's mean, mul, sigmoid, softmax, sum) are not
counted and are listed in ``uncounted_ops``. ``FlopCounterMode`` counts 2 FLOPs per MAC for conv/matmul only
(no BN), so its figure is stored beside fvcore's, not instead of it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import torch
from torch import nn

log = logging.getLogger(__name__)

CONVENTION = "1 multiply-add = 1 MAC; batch 1; eval mode"


@dataclass(frozen=True)
class MacCount:
    macs: int
    counter: str
    counter_version: str
    convention: str
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    by_operator: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FlopCount:
    flops: int
    counter: str
    counter_version: str


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _example(input_size: tuple[int, int, int], model: nn.Module) -> torch.Tensor:
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.zeros(1, *input_size, device=device)


def count_macs(model: nn.Module, *, input_size: tuple[int, int, int]) -> MacCount:
    """fvcore MACs of one forward pass at batch 1 in eval mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fvcore imports torch.jit.script at import time
        from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        # fvcore traces with torch.jit, which warns about its own deprecation on every call
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            analysis = FlopCountAnalysis(model, (_example(input_size, model),))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            total = int(analysis.total())
            uncounted = {str(k): int(v) for k, v in sorted(analysis.unsupported_ops().items())}
            by_op = {str(k): int(v) for k, v in sorted(analysis.by_operator().items())}
    finally:
        model.train(was_training)
    return MacCount(
        macs=total,
        counter="fvcore",
        counter_version=_version("fvcore"),
        convention=CONVENTION,
        uncounted_ops=uncounted,
        by_operator=by_op,
    )


def count_flops_torch(model: nn.Module, *, input_size: tuple[int, int, int]) -> FlopCount:
    """FLOPs from ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add, conv/matmul only)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(_example(input_size, model))
    finally:
        model.train(was_training)
    return FlopCount(
        flops=int(counter.get_total_flops()),
        counter="torch.utils.flop_counter",
        counter_version=torch.__version__,
    )
