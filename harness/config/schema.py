"""The suite schema: what a suite YAML may say, checked strictly (pydantic, ``extra="forbid"``).

This is where every suite default lives. Where a setting is also a parameter of the measurement or training
code (``TimingConfig``, ``Mode``, ``TrainConfig``, usable from a notebook without a suite), its default is
read from that dataclass here, never written twice; ``tests/config/test_schema.py`` checks it stays so.
Imports no torch.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.config.slurm import slurm_memory, slurm_minutes
from harness.fileio import FOLDER_NAME_PATTERN, MAX_FOLDER_NAME
from harness.measure.mode import Mode
from harness.measure.sampling import TimingConfig
from harness.paper.figures import PAPER_SCALES
from harness.train.config import TrainConfig

SUITE_SCHEMA = 1
Dtype = Literal["fp32", "bf16", "fp16"]
# Upper bounds no real suite comes near: a typo (or a hostile file) must not plan 10^9 tasks, warm up forever or
# pass a seed the RNGs refuse mid-run. Integers are strict: `true` is not 1 and `2.5` is not 2.
MAX_COUNT = 1_000_000  # samples, images, batches per epoch
MAX_BATCH = 65_536
MAX_ROUNDS = 1_000
MAX_WARMUP = 1_000  # warm-up iterations (the default is 3)
MAX_EPOCHS = 10_000
MAX_SIDE = 8_192  # pixels of an input side
MAX_SECONDS = 86_400.0  # one timing window
SEED_RANGE = (0, 2**32 - 1)  # what numpy's and torch's seeding accept


def Bounded(low: int, high: int) -> Any:  # noqa: N802 - a type, as pydantic's conint
    return Annotated[int, Field(ge=low, le=high, strict=True)]


PositiveInt = Annotated[int, Field(gt=0, le=MAX_COUNT, strict=True)]
BatchSize = Bounded(1, MAX_BATCH)
Seed = Bounded(*SEED_RANGE)
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Size = tuple[Bounded(1, MAX_SIDE), Bounded(1, MAX_SIDE), Bounded(1, MAX_SIDE)]
# Names become folders (results/<suite>/) and labels become parts of file names and table cells.
SuiteName = Annotated[str, Field(min_length=1, max_length=MAX_FOLDER_NAME, pattern=FOLDER_NAME_PATTERN)]
Label = Annotated[str, Field(min_length=1, max_length=MAX_FOLDER_NAME, pattern=r"^[^\x00-\x1f\x7f]*$")]


def default_of(cls: type, name: str) -> Any:
    """The default of dataclass field ``cls.name`` (the one place that value is written)."""
    spec = {f.name: f for f in dataclasses.fields(cls)}[name]
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    raise TypeError(f"{cls.__name__}.{name} has no default")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """A model of the suite: a registry name (``timm:`` for timm), a display label, options."""

    name: str
    label: Label | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    input_size: Size | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @property
    def display(self) -> str:
        return self.label or self.name

    def with_options(self, **extra: Any) -> ModelSpec:
        """A copy whose options gain ``extra`` where the user did not set them."""
        return self.model_copy(update={"options": {**extra, **self.options}})


class ComplexitySection(_Strict):
    """Params and MACs at batch 1. ``input_size`` None = each model's own (224² ImageNet, 32² CIFAR)."""

    input_size: Size | None = None
    models: list[ModelSpec] | None = None
    flop_crosscheck: bool = True


class TimingSection(_Strict):
    """Latency (per-iteration samples) or throughput (whole loops at a fixed batch)."""

    batch_sizes: list[BatchSize] | dict[Literal["cpu", "cuda"], list[BatchSize]] = Field(
        default_factory=lambda: [1]
    )
    input_size: Size | None = None
    models: list[ModelSpec] | None = None
    warmup: Bounded(0, MAX_WARMUP) = default_of(TimingConfig, "warmup")
    min_time_s: Seconds = default_of(TimingConfig, "min_time_s")
    max_time_s: Seconds = default_of(TimingConfig, "max_time_s")
    min_samples: PositiveInt = default_of(TimingConfig, "min_samples")
    rounds: Bounded(1, MAX_ROUNDS) = 1
    dtype: Dtype = default_of(Mode, "dtype")
    channels_last: bool = default_of(Mode, "channels_last")
    compile: str | None = default_of(Mode, "compile")
    cudnn_benchmark: bool = True
    tf32: bool = False
    # latency: time the reference workload alternately with every model's iterations (and once per round in a
    # task of its own): the yardstick `check` divides by
    reference: bool = False
    train_step: bool = False  # throughput only: also time forward + backward + SGD step

    @model_validator(mode="after")
    def _window(self) -> TimingSection:
        if self.max_time_s < self.min_time_s:
            raise ValueError(f"max_time_s ({self.max_time_s}) must be ≥ min_time_s ({self.min_time_s})")
        return self

    def batch_sizes_for(self, device: str) -> list[int]:
        if isinstance(self.batch_sizes, dict):
            return list(self.batch_sizes.get(device, []))
        return list(self.batch_sizes)


class TrainSection(_Strict):
    """Short CIFAR reproductions of [P] Table 5 (protocol defaults: ``harness.train.config.TrainConfig``)."""

    dataset: Literal["cifar10", "cifar100"] = "cifar10"
    data_dir: str | None = None
    download: bool = True
    models: list[ModelSpec]
    width: Annotated[float, Field(gt=0, le=64, allow_inf_nan=False)] | None = None
    epochs: Bounded(1, MAX_EPOCHS) = 5
    seeds: list[Seed] = Field(default_factory=lambda: [0])
    batch_size: BatchSize = default_of(TrainConfig, "batch_size")
    eval_batch_size: BatchSize = default_of(TrainConfig, "eval_batch_size")
    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)] = default_of(TrainConfig, "lr")
    momentum: Fraction = default_of(TrainConfig, "momentum")
    nesterov: bool = default_of(TrainConfig, "nesterov")
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = default_of(TrainConfig, "weight_decay")
    schedule: Literal["cosine", "step"] = default_of(TrainConfig, "schedule")
    warmup_epochs: Bounded(0, MAX_EPOCHS) = default_of(TrainConfig, "warmup_epochs")
    label_smoothing: Fraction = default_of(TrainConfig, "label_smoothing")
    amp_dtype: Literal["bf16", "fp16"] | None = default_of(TrainConfig, "amp_dtype")
    channels_last: bool = default_of(TrainConfig, "channels_last")
    compile: str | None = default_of(TrainConfig, "compile")
    max_batches_per_epoch: PositiveInt | None = default_of(TrainConfig, "max_batches_per_epoch")
    run_on: list[Literal["cpu", "cuda"]] = Field(default_factory=lambda: ["cpu", "cuda"])
    save_weights: bool = True  # keep each trained model's weights in the run dir (eval / attention from_train)
    # processes (one per GPU; gloo processes on the CPU) a launched shard trains with (``harness.launch``);
    # a plain run trains in the world it was started in (torchrun's)
    gpus: PositiveInt = 1


class ImageSetSection(_Strict):
    """What ``eval`` and ``attention`` read: a labelled image set, and the models (or trained runs) to apply.

    ``models`` None = the suite's models (none when ``from_train`` is given). ``from_train`` names models of the
    ``train`` section by label: their weights trained in this run (seed ``train_seed``, default the first).
    ImageNet-val: ``layout`` auto | imagefolder | ilsvrc, ``ground_truth`` for the flat layout (default:
    searched beside the images). ``preprocess``: ``paper`` (resize 256, centre crop 224) or ``timm`` (the
    weight's own data config); CIFAR sets always use the training normalisation. ``workers`` None = up to 8.
    """

    models: list[ModelSpec] | None = None
    from_train: list[str] = Field(default_factory=list)
    train_seed: Seed | None = None
    dataset: Literal["imagenet", "cifar10", "cifar100"] = "imagenet"
    data_dir: str | None = None
    layout: Literal["auto", "imagefolder", "ilsvrc"] = "auto"
    ground_truth: str | None = None
    preprocess: Literal["paper", "timm"] = "paper"
    batch_size: BatchSize = 64
    max_images: Bounded(1, 10**9) | None = None
    workers: Bounded(0, 256) | None = None

    @field_validator("from_train", mode="before")
    @classmethod
    def _one_label(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class EvalSection(ImageSetSection):
    """Top-1 / top-5 error of each model on the image set ([P] Table 2: single 224×224 centre crop)."""


class AttentionSection(ImageSetSection):
    """SK attention vs. object scale ([P] §4.4, Figs. 3–4): scale s = centre crop of 1/s, resized back."""

    batch_size: BatchSize = 32
    scales: list[Annotated[float, Field(ge=1.0, le=100.0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: list(PAPER_SCALES))

    @field_validator("scales")
    @classmethod
    def _distinct(cls, scales: list[float]) -> list[float]:
        if len(set(scales)) != len(scales) or not scales:
            raise ValueError(f"scales must be distinct and non-empty, got {scales}")
        return scales


class OpTimeSection(_Strict):
    """Where each model's time goes: ms per operator kind (``harness.measure.optime``), the models profiled paired
    in one task, and for SE / SK models the extra time over their plain network kind by kind. ``iterations``
    profiled cycles (each runs every model once, order rotating), after ``warmup`` cycles and
    ``unprofiled_iterations`` cycles timed without the profiler (to show its overhead). ``models`` None = the
    suite's; ``input_size`` None = each model's own."""

    models: list[ModelSpec] | None = None
    batch_size: PositiveInt = 1
    iterations: PositiveInt = 10
    warmup: Annotated[int, Field(ge=0)] = 2
    unprofiled_iterations: Annotated[int, Field(ge=0)] = 3
    input_size: Size | None = None
    dtype: Dtype = default_of(Mode, "dtype")
    channels_last: bool = default_of(Mode, "channels_last")


class LauncherSection(_Strict):
    """How ``run --launcher slurm|local`` spreads the suite's shards (``harness.launch``; docs/cluster.md).

    ``--slurm KEY=VALUE`` overrides any key. ``time`` is per shard: SLURM's ``--time`` and the local
    executor's timeout. ``gpus_per_node`` None = ``train.gpus`` (0 when the suite runs on the CPU). ``partition``,
    ``account``, ``qos``, ``constraint``, ``exclusive``, ``cpus_per_task``, ``mem`` and ``setup`` (shell lines run
    before the shard, e.g. ``module load``) go to sbatch as they are; ``array_parallelism`` bounds how many shards
    run at once (local default: one at a time when the suite times models, so they never share the machine).
    """

    shards: PositiveInt | None = None
    time: PositiveInt = 60  # minutes, or a SLURM time string ("4:00:00": quote it, YAML reads 4:00:00 as a number)
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclusive: bool = False
    gpus_per_node: Annotated[int, Field(ge=0)] | None = None
    cpus_per_task: PositiveInt | None = None
    mem: str | None = None
    array_parallelism: PositiveInt | None = None
    signal_delay_s: PositiveInt = 120  # SLURM sends the preemption / time-limit signal this long before the kill
    setup: list[str] = Field(default_factory=list)

    @field_validator("time", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> Any:
        return slurm_minutes(value)

    @field_validator("mem", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        return value if value is None else slurm_memory(value)

    @field_validator("setup", mode="before")
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Suite(_Strict):
    schema_version: Literal[1] = Field(1, alias="schema")
    name: SuiteName
    description: str = ""
    imports: list[str] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: Seed = 0
    complexity: ComplexitySection | None = None
    latency: TimingSection | None = None
    throughput: TimingSection | None = None
    train: TrainSection | None = None
    eval: EvalSection | None = None
    attention: AttentionSection | None = None
    op_time: OpTimeSection | None = None
    launcher: LauncherSection | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("models")
    @classmethod
    def _unique_labels(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        seen: set[str] = set()
        for spec in models:
            if spec.display in seen:
                raise ValueError(f"model label {spec.display!r} appears twice; give one a distinct 'label'")
            seen.add(spec.display)
        return models

    @model_validator(mode="after")
    def _from_train(self) -> Suite:
        for key in ("eval", "attention"):
            section = getattr(self, key)
            if section is None or not section.from_train:
                continue
            if self.train is None:
                raise ValueError(f"{key}.from_train needs a train section in the suite")
            labels = [m.display for m in self.train.models]
            for label in section.from_train:
                if label not in labels:
                    raise ValueError(f"{key}.from_train: {label!r} is not a train model; train models: {labels}")
            if section.dataset != self.train.dataset:
                raise ValueError(f"{key}.from_train evaluates models trained on {self.train.dataset}; set "
                                 f"{key}.dataset: {self.train.dataset}")
            if section.train_seed is not None and section.train_seed not in self.train.seeds:
                raise ValueError(f"{key}.train_seed {section.train_seed} is not one of train.seeds {self.train.seeds}")
            if not self.train.save_weights:
                raise ValueError(f"{key}.from_train needs train.save_weights: true")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
