"""What one training run is told (``TrainConfig``) and what it returns (``EpochResult``, ``TrainResult``).

Defaults are ResNeXt's CIFAR protocol ([RX] Appendix A: SGD, Nesterov momentum 0.9, weight decay 5e-4,
batch 128, lr 0.1, ×0.1 at 50% and 75% of the epochs). Deviations are named options: ``schedule="cosine"``
(suits short runs), ``warmup_epochs``, ``label_smoothing``, ``amp_dtype``, ``max_batches_per_epoch``. A suite's
``train:`` section is a ``TrainRecipe`` (``harness.config.schema``): these fields, defaults and bounds are its
own. Imports no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from harness.settings import BatchSize, Bounded, Fraction, PositiveInt, Seed, Settings

DatasetName = Literal["cifar10", "cifar100"]
AmpDtype = Literal["bf16", "fp16"]
MAX_EPOCHS = 10_000
Epochs = Bounded(1, MAX_EPOCHS)


class TrainRecipe(Settings):
    """Hyper-parameters of a training run but its seed (a suite trains one recipe with each of its seeds)."""

    epochs: Epochs
    batch_size: BatchSize = 128
    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.1
    momentum: Fraction = 0.9
    nesterov: bool = True
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 5e-4
    schedule: Literal["cosine", "step"] = "step"
    warmup_epochs: Bounded(0, MAX_EPOCHS) = 0
    label_smoothing: Fraction = 0.0
    amp_dtype: AmpDtype | None = None
    channels_last: bool = False
    compile: str | None = None  # a torch.compile mode ("default", "reduce-overhead", "max-autotune") or None
    # cuDNN picks the fastest kernels for the fixed shapes once (timm's train.py does the same); not bit-for-bit
    # deterministic on CUDA either way (docs/training.md)
    cudnn_benchmark: bool = True
    eval_batch_size: BatchSize = 512
    max_batches_per_epoch: PositiveInt | None = None

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> TrainRecipe:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be < epochs ({self.epochs})")
        return self


class TrainConfig(TrainRecipe):
    """One training run: a recipe and its seed; defaults are ResNeXt's CIFAR protocol."""

    seed: Seed = 0

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


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
