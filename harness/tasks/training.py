"""Training task: one model × one seed of a short CIFAR reproduction ([P] Table 5).

Each finished epoch becomes a ``train_epoch`` record as it ends; the task's final ``train`` record carries the
whole curve. A checkpoint per epoch lives in the run dir so ``--resume`` continues a killed training; an
epoch already recorded is never recorded again. The checkpoint is removed once the task has succeeded; the
final weights stay in ``weights/<task>.pt`` (unless ``save_weights: false``), for ``eval`` / ``attention``
``from_train`` and for ``weights:`` in later suites.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.schema import ModelSpec
from harness.errors import DatasetUnavailable, TaskSkipped
from harness.measure.macs import count_macs
from harness.measure.params import count_params
from harness.models.registry import TIMM_PREFIX, get_entry
from harness.plan import Task, TrainSpec
from harness.tasks.context import TaskContext, build
from harness.train.checkpoint import save_checkpoint
from harness.train.data import CifarData, load_cifar
from harness.train.loop import train

if TYPE_CHECKING:
    from torch import nn

    from harness.train.config import TrainConfig

log = logging.getLogger(__name__)

@lru_cache(maxsize=2)
def _dataset(name: str, data_dir: str | None, download: bool) -> CifarData:
    return load_cifar(name, data_dir=Path(data_dir) if data_dir else None, download=download)


def num_classes_option(model: ModelSpec, num_classes: int) -> dict[str, Any]:
    """Set ``num_classes`` to the dataset's where the model has that option and the suite left it unset."""
    if "num_classes" in model.options:
        return {}
    if model.name.startswith(TIMM_PREFIX) or "num_classes" in get_entry(model.name).options:
        return {"num_classes": num_classes}
    return {}


def _safe(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", task_id)


def checkpoint_path(ctx: TaskContext, task: Task) -> Path:
    return ctx.run_dir / "checkpoints" / f"{_safe(task.task_id)}.pt"


def trained_weights_path(run_dir: Path, task_id: str) -> Path:
    """Where training task ``task_id`` keeps its final weights (``weights:`` and ``from_train`` load them)."""
    return Path(run_dir) / "weights" / f"{_safe(task_id)}.pt"


def _save_weights(path: Path, model: nn.Module, task: Task, config: TrainConfig, epochs: int) -> None:
    # the training checkpoint's format without optimizer and RNG state: what an evaluation needs
    save_checkpoint(path, {"model": model.state_dict(), "model_name": task.model.name,
                           "options": task.model.options, "config": config.to_dict(), "epoch": epochs})


def execute(task: Task, ctx: TaskContext) -> dict[str, Any]:
    spec: TrainSpec = task.spec
    device_type = task.device.split(":")[0]
    if device_type not in spec.run_on:
        raise TaskSkipped(f"training runs on {' and '.join(spec.run_on)} only in this suite (train.run_on); "
                          f"to train on {device_type} anyway: --set train.run_on=[{device_type}]")
    try:
        data = _dataset(spec.dataset, ctx.data_dir or spec.data_dir, spec.download)
    except DatasetUnavailable as exc:
        raise TaskSkipped(str(exc)) from None
    model = build(task.model, **num_classes_option(task.model, data.num_classes))
    config = spec.config
    if task.device == "cpu":
        # AMP and channels_last are CUDA settings ([P]-style GPU training); on CPU they slow grouped and dilated
        # convs down by large factors, so CPU runs train in fp32 / NCHW (the recorded config says so)
        config = config.model_copy(update={"amp_dtype": None, "channels_last": False})
    ckpt = checkpoint_path(ctx, task)
    recorded = {r["epoch"] for r in ctx.done_records if r.get("kind") == "train_epoch"}

    def on_epoch(epoch) -> None:
        if epoch.epoch not in recorded:
            recorded.add(epoch.epoch)
            fields = {k: v for k, v in epoch.to_record().items() if k != "seed"}  # the seed is the task's
            ctx.emit({"kind": "train_epoch", "status": "ok", **fields})

    dist = ctx.distributed
    device = dist.device(task.device.split(":")[0]) if dist is not None else task.device
    result = train(model, data, config, device=device, on_epoch=on_epoch, checkpoint_path=ckpt,
                   resume=ckpt.exists(), dist=dist)
    for epoch in result.history:  # epochs restored from a checkpoint whose record a kill cut off
        on_epoch(epoch)
    weights = trained_weights_path(ctx.run_dir, task.task_id) if spec.save_weights else None
    if dist is None or dist.is_writer:
        if weights is not None:
            _save_weights(weights, model, task, config, len(result.history))
        ckpt.unlink(missing_ok=True)
    size = (3, 32, 32)
    complexity = {"params": count_params(model).params, "macs": count_macs(model, input_size=size).macs}
    world = {"world_size": dist.world_size, "backend": dist.backend} if dist is not None else {"world_size": 1}
    return {**result.to_record(), **complexity, "input_size": list(size), "config": config.to_dict(),
            "num_classes": data.num_classes, "data_root": str(data.root), "distributed": world,
            "weights_path": str(weights.relative_to(ctx.run_dir)) if weights is not None else None}


EXECUTORS = {"train": execute}
