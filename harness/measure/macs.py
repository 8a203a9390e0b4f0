"""Multiply-accumulate counts with fvcore, cross-checked with ``torch.utils.flop_counter``.

Convention: one multiply-add = 1 MAC. The papers' "GFLOPs" (SKNet [P] Table 1, following
ShuffleNet) are multiply-adds too, so paper GFLOPs compare with our GMACs. fvcore counts conv, linear,
matmul, batch-norm and adaptive pooling; elementwise ops (SE/SK's mean, mul, sigmoid, softmax, sum) are not
counted and are listed in ``uncounted_ops``. ``FlopCounterMode`` counts 2 FLOPs per MAC for conv/matmul only
(no BN), so its figure is stored beside fvcore's, not instead of it.

Activations are fvcore's ``ActivationCountAnalysis``: the elements written by conv and linear layers (not by BN,
ReLU or elementwise ops). Both counts are also broken down per module (``ModuleCost``) down to the parts of a
block — an SK unit's two branches and its fc layers — so a report can show where a variant's extra cost sits.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

CONVENTION = "1 multiply-add = 1 MAC; batch 1; eval mode"


ACTIVATIONS_CONVENTION = "elements written by conv and linear layers (fvcore ActivationCountAnalysis); batch 1"
# Per-module counts go this many levels below a stage: block, block part (conv2), its parts (conv2.fc_reduce,
# conv2.paths), and one more for the members of a container (conv2.paths.1).
_LEVELS_BELOW_STAGE = 3


@dataclass(frozen=True)
class ModuleCost:
    macs: int
    activations: int


@dataclass(frozen=True)
class MacCount:
    macs: int
    counter: str
    counter_version: str
    convention: str
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    by_operator: dict[str, int] = field(default_factory=dict)
    activations: int | None = None
    activations_by_operator: dict[str, int] = field(default_factory=dict)
    stages: tuple[str, ...] = ()  # module names of the network's stages, in order (``stage_names``)
    modules: dict[str, ModuleCost] = field(default_factory=dict)  # stages and below, non-zero only


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


def stage_names(model: nn.Module) -> tuple[str, ...]:
    """The network's top-level children, with a plain container of containers opened one level.

    ``ResNeXtBackbone.stages`` (a Sequential of per-stage Sequentials) gives ``stages.0`` … ``stages.3``; timm's
    ResNets give ``layer1`` … ``layer4`` directly; stem and head modules are stages of their own.
    """
    containers = (nn.Sequential, nn.ModuleList)
    names: list[str] = []
    for name, child in model.named_children():
        grand = list(child.named_children())
        if type(child) in containers and len(grand) > 1 and all(type(g) in containers for _, g in grand):
            names += [f"{name}.{sub}" for sub, _ in grand]
        else:
            names.append(name)
    return tuple(names)


def _analysed(cls: type, model: nn.Module, example: torch.Tensor) -> Any:
    # fvcore traces with torch.jit, which warns about its own deprecation on every call
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        analysis = cls(model, (example,))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.total()  # runs the trace once; later queries reuse it
    return analysis


def _recorded(model: nn.Module, stages: tuple[str, ...]) -> set[str]:
    """Stages and the modules below them, down to ``_LEVELS_BELOW_STAGE + 1`` levels (so an SK unit's
    ``paths.1`` is in), opening only modules that hold more than leaf layers: a conv → BN → ReLU stays one entry."""
    recorded = set(stages)
    for stage in stages:
        frontier = [(stage, model.get_submodule(stage))]
        for _ in range(_LEVELS_BELOW_STAGE + 1):
            opened = [(name, m) for name, m in frontier if any(any(True for _ in c.children()) for c in m.children())]
            frontier = [(f"{name}.{sub}", child) for name, m in opened for sub, child in m.named_children()]
            recorded |= {name for name, _ in frontier}
    return recorded


def _module_costs(names: set[str], macs: dict[str, int], acts: dict[str, int]) -> dict[str, ModuleCost]:
    # fvcore lists modules in the model's order (named_modules); keep it
    return {name: ModuleCost(int(count), int(acts.get(name, 0)))
            for name, count in macs.items() if name in names and (count or acts.get(name, 0))}


def count_macs(model: nn.Module, *, input_size: tuple[int, int, int], breakdown: bool = False) -> MacCount:
    """fvcore MACs of one forward pass at batch 1 in eval mode; with ``breakdown`` also the activations, in total,
    per operator and per module (a second fvcore trace)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fvcore imports torch.jit.script at import time
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        example = _example(input_size, model)
        flops = _analysed(FlopCountAnalysis, model, example)
        acts = _analysed(ActivationCountAnalysis, model, example) if breakdown else None
    finally:
        model.train(was_training)
    count = MacCount(
        macs=int(flops.total()),
        counter="fvcore",
        counter_version=_version("fvcore"),
        convention=CONVENTION,
        uncounted_ops={str(k): int(v) for k, v in sorted(flops.unsupported_ops().items())},
        by_operator={str(k): int(v) for k, v in sorted(flops.by_operator().items())},
    )
    if acts is None:
        return count
    stages = stage_names(model)
    return replace(
        count,
        activations=int(acts.total()),
        activations_by_operator={str(k): int(v) for k, v in sorted(acts.by_operator().items())},
        stages=stages,
        modules=_module_costs(_recorded(model, stages), flops.by_module(), acts.by_module()),
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
