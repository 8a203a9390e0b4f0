"""The CIFAR training loop: SGD + schedule, per-epoch metrics, a checkpoint per epoch, exact resume.

The caller seeds and builds the model (weights are initialised before ``train`` sees them); ``train``
re-seeds random/numpy/torch from ``config.seed`` and, on CPU, turns deterministic algorithms on for its
duration, so the same seed gives identical metrics. Data order and augmentation come from generators
seeded by (seed, epoch), and the checkpoint holds every RNG state, so a resumed run equals an unbroken one.
The protocol and its defaults are in ``harness.train.config``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.utils.deterministic
from torch import nn

from harness.environment import backend_flags
from harness.errors import ConfigError, MeasurementError
from harness.measure.device import TrainStep, autocast, synchronize
from harness.train import distributed as hdist
from harness.train.checkpoint import load_checkpoint, save_checkpoint
from harness.train.config import EpochResult, TrainConfig, TrainResult
from harness.train.data import CifarData
from harness.train.distributed import DistContext
from harness.train.loader import DeviceLoader
from harness.train.rng import rng_state, seed_everything, set_rng_state
from harness.train.schedule import lr_at

log = logging.getLogger(__name__)

_CHECK_EVERY_STEPS = 50  # a host sync this often costs <1% on GPU; a sync every step would cost more


@contextmanager
def _deterministic_on_cpu(device: torch.device) -> Iterator[None]:
    # On the CPU a resumed training equals an unbroken one bit for bit (deterministic algorithms). On CUDA it does
    # not: that would need CUBLAS_WORKSPACE_CONFIG set before CUDA starts and deterministic cuDNN kernels, which
    # nothing here sets; a resumed CUDA run continues the same schedule and seeds, equal up to kernel nondeterminism
    # (docs/training.md says so).
    if device.type != "cpu":
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also NaN-fills every torch.empty; correct kernels never read that memory, and the
    # fills cost up to ~17% of a CPU training step with 2 busy threads (measured with benchmarks/train_step.py).
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def _check_amp(config: TrainConfig, device: torch.device) -> None:
    if config.amp_dtype == "fp16" and device.type != "cuda":
        raise MeasurementError(f"amp_dtype='fp16' needs CUDA, device is {device}; use amp_dtype='bf16' or None")


def train(
    model: nn.Module,
    data: CifarData,
    config: TrainConfig,
    *,
    device: torch.device | str,
    on_epoch: Callable[[EpochResult], None] | None = None,
    checkpoint_path: Path | None = None,
    resume: bool = False,
    dist: DistContext | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` and return per-epoch metrics.

    ``on_epoch`` is called (on the writer rank only) for each epoch trained in this call, before that
    epoch's checkpoint is written: a crash in between repeats the epoch on resume rather than losing
    its record. With ``resume=True`` training continues after the last epoch in ``checkpoint_path``.
    """
    device = torch.device(device)
    seed_everything(config.seed)
    # TF32 is left as the caller set it (torch's default: on for cuDNN convolutions, off for matmuls)
    with _deterministic_on_cpu(device), backend_flags(cudnn_benchmark=config.cudnn_benchmark, tf32=None):
        trainer = _Trainer(model, data, config, device=device, dist=dist)
        history = trainer.restore(checkpoint_path) if resume and checkpoint_path is not None else []
        if len(history) > config.epochs:
            raise ConfigError(
                f"checkpoint {checkpoint_path} has {len(history)} epochs, more than "
                f"epochs={config.epochs}; raise epochs or delete the checkpoint"
            )
        for epoch in range(len(history) + 1, config.epochs + 1):
            result = trainer.run_epoch(epoch)
            history.append(result)
            if on_epoch is not None and (dist is None or dist.is_writer):
                on_epoch(result)
            if checkpoint_path is not None and (dist is None or dist.is_writer):
                trainer.save(checkpoint_path, epoch=epoch, history=history)
    return _summarise(history, config, data)


def _summarise(history: list[EpochResult], config: TrainConfig, data: CifarData) -> TrainResult:
    return TrainResult(
        history=tuple(history),
        top1_err=100.0 * (1.0 - history[-1].test_acc),
        train_time_s=sum(e.train_wall_s for e in history),
        seed=config.seed,
        epochs=len(history),
        dataset=data.name,
        synthetic=data.synthetic,
    )


class _Trainer:
    """Everything one run holds between epochs: model (wrapped), optimizer, loaders, step counter."""

    def __init__(
        self, model: nn.Module, data: CifarData, config: TrainConfig, *, device: torch.device, dist: DistContext | None
    ) -> None:
        self.config, self.device, self.dist, self.data = config, device, dist, data
        _check_amp(config, device)
        fmt = torch.channels_last if config.channels_last else torch.preserve_format
        self.raw_model = model.to(device=device, memory_format=fmt)
        self.model = hdist.wrap_model(self.raw_model, dist, device=device) if dist else self.raw_model
        if config.compile is not None:
            mode = None if config.compile == "default" else config.compile
            self.model = torch.compile(self.model, mode=mode)
        rank, world = (dist.rank, dist.world_size) if dist else (0, 1)
        common = dict(device=device, seed=config.seed, rank=rank, world_size=world, channels_last=config.channels_last)
        self.train_loader = DeviceLoader.for_split(
            data, train=True, batch_size=config.batch_size, max_batches=config.max_batches_per_epoch, **common
        )
        self.test_loader = DeviceLoader.for_split(data, train=False, batch_size=config.eval_batch_size, **common)
        if len(self.train_loader) == 0:
            raise ConfigError(
                f"{len(data.train_x)} training images make no full batch of {config.batch_size} "
                f"per rank on {world} rank(s); lower batch_size"
            )
        optimizer = torch.optim.SGD(
            self.raw_model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.train_step = TrainStep(self.model, optimizer, device=device, amp_dtype=config.amp_dtype,
                                    criterion=criterion)
        self.optimizer = optimizer
        self.step = 0

    def run_epoch(self, epoch: int) -> EpochResult:
        start = time.perf_counter()
        loss_sum, steps, lr, train_s = self._train_epoch(epoch)
        correct, total = self._evaluate()
        wall_s = time.perf_counter() - start
        loss_sum, steps, correct, total = hdist.all_reduce([loss_sum, steps, correct, total], op="sum", ctx=self.dist)
        train_s, wall_s = hdist.all_reduce([train_s, wall_s], op="max", ctx=self.dist)
        images = steps * self.config.batch_size
        log.info(
            "epoch %d: loss %.4f, test acc %.4f, %.0f img/s", epoch, loss_sum / steps, correct / total, images / train_s
        )
        return EpochResult(
            epoch=epoch,
            train_loss=loss_sum / steps,
            test_acc=correct / total,
            lr=lr,
            img_per_s=images / train_s,
            wall_s=wall_s,
            train_wall_s=train_s,
            seed=self.config.seed,
            dataset=self.data.name,
            synthetic=self.data.synthetic,
        )

    def _train_epoch(self, epoch: int) -> tuple[float, int, float, float]:
        """Returns (sum of step losses, steps, lr at the first step, seconds on the clock)."""
        self.model.train()
        steps = len(self.train_loader)
        # Losses stay on the device and are checked every few steps: a .item() per step would stall a GPU.
        losses = torch.zeros(steps, device=self.device)
        first_lr = lr_at(self.config, step=self.step, steps_per_epoch=steps)
        checked = 0
        synchronize(self.device)
        start = time.perf_counter()
        for i, (x, y) in enumerate(self.train_loader.epoch(epoch)):
            self._set_lr(lr_at(self.config, step=self.step, steps_per_epoch=steps))
            losses[i] = self.train_step(x, y).detach()
            self.step += 1
            if i + 1 - checked >= _CHECK_EVERY_STEPS or i + 1 == steps:
                self._check_finite(losses[checked : i + 1], epoch=epoch, first_step=checked)
                checked = i + 1
        synchronize(self.device)
        train_s = time.perf_counter() - start
        return float(losses.sum()), steps, first_lr, train_s

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _check_finite(self, window: torch.Tensor, *, epoch: int, first_step: int) -> None:
        bad = ~torch.isfinite(window)
        # All ranks must agree to stop, or the healthy ones would wait forever in the next all-reduce.
        (n_bad,) = hdist.all_reduce([int(bad.sum())], op="sum", ctx=self.dist)
        if n_bad:
            local = bad.nonzero()
            if len(local):
                at = first_step + int(local[0])
                where = f"step {at + 1} (loss={float(window[at - first_step])})"
            else:
                where = f"steps {first_step + 1}-{first_step + len(window)} on another rank"
            raise MeasurementError(
                f"non-finite loss at epoch {epoch} {where}; lower lr, add warmup_epochs or turn amp_dtype off"
            )

    @torch.no_grad()
    def _evaluate(self) -> tuple[int, int]:
        """(correct, total) on this rank's share of the test set, off the clock."""
        hdist.broadcast_buffers(self.raw_model, self.dist)
        self.raw_model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        total = 0
        with torch.inference_mode(), autocast(self.device, self.config.amp_dtype):
            for x, y in self.test_loader.epoch():
                correct += (self.raw_model(x).argmax(dim=1) == y).sum()
                total += len(y)
        return int(correct), total

    def save(self, path: Path, *, epoch: int, history: list[EpochResult]) -> None:
        scaler = self.train_step.scaler
        save_checkpoint(path, {
            "epoch": epoch,
            "config": self.config.to_dict(),
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"global_step": self.step},
            "scaler": scaler.state_dict() if scaler is not None else {},
            "history": [e.to_record() for e in history],
            "rng": rng_state(),
        })

    def restore(self, path: Path) -> list[EpochResult]:
        """Load ``path`` if it exists and return its history; an absent file means a fresh start."""
        state = load_checkpoint(path, self.config)
        if state is None:
            return []
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.train_step.scaler is not None and state["scaler"]:
            self.train_step.scaler.load_state_dict(state["scaler"])
        self.step = int(state["scheduler"]["global_step"])
        set_rng_state(state["rng"])
        log.info("resumed from %s after epoch %d", path, state["epoch"])
        return [EpochResult.from_record(r) for r in state["history"]]
