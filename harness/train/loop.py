"""The CIFAR training loop: SGD + schedule, per-epoch metrics, atomic checkpoints, exact resume.

Protocol defaults are ResNeXt's CIFAR recipe (PAPER.md §5: SGD, Nesterov momentum 0.9, weight decay 5e-4,
batch 128, lr 0.1, ×0.1 at 50% and 75% of the epochs). Deviations are named options: ``schedule="cosine"``
(suits short runs), ``warmup_epochs``, ``label_smoothing``, ``amp_dtype``, ``max_batches_per_epoch``.

The caller seeds and builds the model (weights are initialised before ``train`` sees them); ``train``
re-seeds random/numpy/torch from ``config.seed`` and, on CPU, turns deterministic algorithms on for its
duration, so the same seed gives identical metrics. Data order and augmentation come from generators
seeded by (seed, epoch), and the checkpoint holds every RNG state, so a resumed run equals an unbroken one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.utils.deterministic
from torch import nn

from harness.errors import ConfigError, MeasurementError
from harness.train import distributed as hdist
from harness.train.data import CifarData, DeviceLoader
from harness.train.distributed import DistContext

log = logging.getLogger(__name__)

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_CHECK_EVERY_STEPS = 50  # a host sync this often costs <1% on GPU; a sync every step would cost more
_CHECKPOINT_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Hyper-parameters of one training run; defaults are ResNeXt's CIFAR protocol."""

    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: Literal["cosine", "step"] = "step"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    amp_dtype: str | None = None
    channels_last: bool = False
    compile: str | None = None  # a torch.compile mode ("default", "reduce-overhead", "max-autotune") or None
    seed: int = 0
    eval_batch_size: int = 512
    max_batches_per_epoch: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            problems.append("epochs, batch_size and eval_batch_size must be >= 1")
        if self.schedule not in ("cosine", "step"):
            problems.append(f"schedule={self.schedule!r} (use 'cosine' or 'step')")
        if not 0 <= self.warmup_epochs < self.epochs:
            problems.append(f"warmup_epochs={self.warmup_epochs} must be in [0, epochs)")
        if self.amp_dtype is not None and self.amp_dtype not in _AMP_DTYPES:
            problems.append(f"amp_dtype={self.amp_dtype!r} (use {sorted(_AMP_DTYPES)} or None)")
        if not 0.0 <= self.label_smoothing < 1.0 or self.lr <= 0:
            problems.append("label_smoothing must be in [0, 1) and lr > 0")
        if self.max_batches_per_epoch is not None and self.max_batches_per_epoch < 1:
            problems.append("max_batches_per_epoch must be >= 1 or None")
        if problems:
            raise ConfigError("TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class EpochResult:
    """One epoch. ``wall_s`` covers training and evaluation; ``img_per_s`` = train images / ``train_wall_s``."""

    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's steps (and ranks)
    test_acc: float  # fraction in [0, 1]
    lr: float  # at the epoch's first step
    img_per_s: float
    wall_s: float
    train_wall_s: float
    seed: int
    dataset: str
    synthetic: bool

    def to_record(self) -> dict[str, Any]:
        """The ``train_epoch`` record fields of docs/CONTRACTS.md (plus ``train_wall_s``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EpochResult:
        return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """A finished run. ``top1_err`` (%) is from the last epoch; ``train_time_s`` sums training time only."""

    history: tuple[EpochResult, ...]
    top1_err: float
    train_time_s: float
    seed: int
    epochs: int
    dataset: str
    synthetic: bool

    def to_record(self) -> dict[str, Any]:
        """The ``train`` record fields of docs/CONTRACTS.md; ``curve`` holds the epoch records."""
        return {
            "seed": self.seed,
            "dataset": self.dataset,
            "synthetic": self.synthetic,
            "epochs": self.epochs,
            "top1_err": self.top1_err,
            "train_time_s": self.train_time_s,
            "curve": [e.to_record() for e in self.history],
        }


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def _deterministic_on_cpu(device: torch.device) -> Iterator[None]:
    # CUDA determinism needs CUBLAS_WORKSPACE_CONFIG set before CUDA starts: the runner's backend flags own it.
    if device.type != "cpu":
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also NaN-fills every torch.empty; correct kernels never read that memory, and the
    # fills cost up to ~17% of a CPU training step with 2 busy threads (measured with bench_train_step.py).
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if config.amp_dtype is None:
        return None
    if config.amp_dtype == "fp16" and device.type != "cuda":
        raise MeasurementError(f"amp_dtype='fp16' needs CUDA, device is {device}; use amp_dtype='bf16' or None")
    return _AMP_DTYPES[config.amp_dtype]


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
    with _deterministic_on_cpu(device):
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
        self.amp_dtype = _amp_dtype(config, device)
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
        self.optimizer = torch.optim.SGD(
            self.raw_model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        use_scaler = self.amp_dtype is torch.float16
        self.scaler = torch.amp.GradScaler(device.type) if use_scaler else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.step = 0

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

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
        _synchronize(self.device)
        start = time.perf_counter()
        for i, (x, y) in enumerate(self.train_loader.epoch(epoch)):
            self._set_lr(lr_at(self.config, step=self.step, steps_per_epoch=steps))
            losses[i] = self._step(x, y).detach()
            self.step += 1
            if i + 1 - checked >= _CHECK_EVERY_STEPS or i + 1 == steps:
                self._check_finite(losses[checked : i + 1], epoch=epoch, first_step=checked)
                checked = i + 1
        _synchronize(self.device)
        train_s = time.perf_counter() - start
        return float(losses.sum()), steps, first_lr, train_s

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            loss = self.criterion(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss

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
        with torch.inference_mode(), self._autocast():
            for x, y in self.test_loader.epoch():
                correct += (self.raw_model(x).argmax(dim=1) == y).sum()
                total += len(y)
        return int(correct), total

    def save(self, path: Path, *, epoch: int, history: list[EpochResult]) -> None:
        """Write the checkpoint atomically: a crash mid-write leaves the previous one intact."""
        state = {
            "format": _CHECKPOINT_FORMAT,
            "epoch": epoch,
            "config": self.config.to_dict(),
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"global_step": self.step},
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "history": [e.to_record() for e in history],
            "rng": _rng_state(),
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def restore(self, path: Path) -> list[EpochResult]:
        """Load ``path`` if it exists and return its history; an absent file means a fresh start."""
        path = Path(path)
        if not path.is_file():
            log.info("no checkpoint at %s; starting from epoch 1", path)
            return []
        state = torch.load(path, map_location="cpu", weights_only=True)
        _check_resumable(state, self.config, path)
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["scheduler"]["global_step"])
        _set_rng_state(state["rng"])
        log.info("resumed from %s after epoch %d", path, state["epoch"])
        return [EpochResult.from_record(r) for r in state["history"]]


def _check_resumable(state: dict[str, Any], config: TrainConfig, path: Path) -> None:
    if state.get("format") != _CHECKPOINT_FORMAT:
        raise ConfigError(
            f"checkpoint {path} has format {state.get('format')!r}, expected "
            f"{_CHECKPOINT_FORMAT}; delete it to start afresh"
        )
    saved, wanted = state["config"], config.to_dict()
    for key in wanted:
        if key != "epochs" and saved.get(key) != wanted[key]:
            raise ConfigError(
                f"checkpoint {path} was written with {key}={saved.get(key)!r}, not "
                f"{wanted[key]!r}; resume with the same config or delete the checkpoint"
            )
    if saved["epochs"] != config.epochs:
        log.warning(
            "resuming %s with epochs=%d instead of %d: the lr schedule changes from here on",
            path,
            config.epochs,
            saved["epochs"],
        )


def _rng_state() -> dict[str, Any]:
    """All RNG states as tensors and primitives, so ``torch.load(weights_only=True)`` accepts them."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
