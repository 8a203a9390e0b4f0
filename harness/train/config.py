"""What one training run is told (``TrainConfig``) and what it returns (``EpochResult``, ``TrainResult``).

Defaults are ResNeXt's CIFAR protocol ([RX] Appendix A: SGD, Nesterov momentum 0.9, weight decay 5e-4,
batch 128, lr 0.1, ×0.1 at 50% and 75% of the epochs). Deviations are named options: ``schedule="cosine"``
(suits short runs), ``warmup_epochs``, ``label_smoothing``, ``amp_dtype``, ``max_batches_per_epoch``. A suite's
``train:`` section takes its defaults from here. Imports no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import ConfigError

AMP_DTYPES = ("bf16", "fp16")


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
    amp_dtype: Literal["bf16", "fp16"] | None = None
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
        if self.amp_dtype is not None and self.amp_dtype not in AMP_DTYPES:
            problems.append(f"amp_dtype={self.amp_dtype!r} (use {sorted(AMP_DTYPES)} or None)")
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
        """The ``train_epoch`` record fields (plus ``train_wall_s``)."""
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
        """The ``train`` record's measured fields; ``curve`` holds the epoch records (the seed is the task's)."""
        return {
            "dataset": self.dataset,
            "synthetic": self.synthetic,
            "epochs": self.epochs,
            "top1_err": self.top1_err,
            "train_time_s": self.train_time_s,
            "curve": [e.to_record() for e in self.history],
        }
