"""The suite schema: what a suite YAML may say, checked strictly (pydantic, ``extra="forbid"``).

A section whose settings are parameters of the measurement or training code extends that code's config, so
each of those settings, its default and its bounds are written once, there: ``TimingSection`` is a
``TimingConfig`` and a ``Mode``, ``OpTimeSection`` a ``Mode`` (always eager), ``TrainSection`` a
``TrainRecipe`` (a ``TrainConfig`` but the seed). The suite-only settings and their defaults are here. Imports
no torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from harness.config.slurm import shell_line, slurm_constraint, slurm_memory, slurm_minutes, slurm_names
from harness.fileio import FOLDER_NAME_PATTERN, MAX_FOLDER_NAME
from harness.measure.mode import Mode, parse_mode
from harness.measure.processes import MAX_PROCESSES
from harness.measure.sampling import DEFAULT_MAX_SAMPLES, TimingConfig
from harness.paper.figures import PAPER_SCALES
from harness.settings import BatchSize, PositiveInt, Seed, Settings
from harness.train.config import DatasetName, Epochs, TrainRecipe

SUITE_SCHEMA = 1
DeviceType = Literal["cpu", "cuda"]
DEVICE_TYPES: tuple[DeviceType, ...] = ("cpu", "cuda")
MAX_ROUNDS = 1_000
MAX_SIDE = 8_192  # pixels of an input side
Side = Annotated[int, Field(ge=1, le=MAX_SIDE, strict=True)]
Size = tuple[Side, Side, Side]
# Names become folders (results/<suite>/) and labels become parts of file names and table cells.
SuiteName = Annotated[str, Field(min_length=1, max_length=MAX_FOLDER_NAME, pattern=FOLDER_NAME_PATTERN)]
Label = Annotated[str, Field(min_length=1, max_length=MAX_FOLDER_NAME, pattern=r"^[^\x00-\x1f\x7f]*$")]


class ModelSpec(Settings):
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


class ComplexitySection(Settings):
    """Params and MACs at batch 1. ``input_size`` None = each model's own (224² ImageNet, 32² CIFAR)."""

    input_size: Size | None = None
    models: list[ModelSpec] | None = None
    flop_crosscheck: bool = True


def _mode_entry(value: Any) -> Any:
    """A mode of a ``modes`` list: its label (``bf16+channels_last``, ``compile:max-autotune``) or its fields."""
    if isinstance(value, str):
        try:
            return parse_mode(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None  # pydantic's message then carries the key's path
    return value


ModeEntry = Annotated[Mode, BeforeValidator(_mode_entry)]


def _check_modes(lists: Iterable[list[Mode]], *, own: Mode, keys: str) -> None:
    """A section's ``modes`` (one list, or one per device): each list non-empty and without repeats, and the section's
    own mode fields (``keys``) left unset beside them."""
    if own != Mode():
        raise ValueError(f"set either modes or {keys}, not both (the section says modes and {own.label}): list that "
                         "mode in modes")
    for modes in lists:
        labels = [m.label for m in modes]
        if not modes:
            raise ValueError("modes is empty: list at least one mode (e.g. [fp32, compile]), or leave it out")
        if len(set(labels)) != len(labels):
            raise ValueError(f"modes lists a mode twice: {labels}")


class TimingSection(Mode, TimingConfig):  # the order puts the TimingConfig keys first
    """Latency (per-iteration samples) or throughput (whole loops at a fixed batch): a ``TimingConfig`` (warmup
    and the sampling window of all rounds together) and a ``Mode``, plus the suite's own settings below.

    ``modes`` makes the execution mode a dimension of the comparison: every model is timed in every mode listed
    (labels such as ``fp32``, ``channels_last``, ``compile``, ``bf16``, or per device ``{cpu: [...], cuda: [...]}``),
    all of them in one timing group per batch size, so models and modes are paired alike. With ``modes`` the
    section's own ``dtype`` / ``channels_last`` / ``compile`` stay unset."""

    max_samples: ClassVar[int] = DEFAULT_MAX_SAMPLES  # type: ignore[misc]  # not a suite setting: the library's cap
    batch_sizes: list[BatchSize] | dict[DeviceType, list[BatchSize]] = Field(default_factory=lambda: [1])
    modes: list[ModeEntry] | dict[DeviceType, list[ModeEntry]] | None = None
    input_size: Size | None = None
    models: list[ModelSpec] | None = None
    rounds: Annotated[int, Field(ge=1, le=MAX_ROUNDS, strict=True)] = 1
    # fresh worker processes the section is timed in, one after another (``harness.measure.processes``); the
    # window is shared out among them. A process is one sample of memory layout: intervals take their degrees of
    # freedom from the processes (1: within-process noise only). ``run --processes K`` overrides it; None:
    # ``harness.measure.processes.DEFAULT_PROCESSES``.
    processes: Annotated[int, Field(ge=1, le=MAX_PROCESSES, strict=True)] | None = None
    cudnn_benchmark: bool = True
    tf32: bool = False
    # latency: time the reference workload alternately with every model's iterations (and once per round in a
    # task of its own): the yardstick `check` divides by
    reference: bool = False
    train_step: bool = False  # throughput only: also time forward + backward + SGD step

    @model_validator(mode="after")
    def _modes_or_mode(self) -> TimingSection:
        if self.modes is not None:
            _check_modes(self.modes.values() if isinstance(self.modes, dict) else [self.modes], own=self.mode,
                         keys="dtype/channels_last/compile")
        return self

    @property
    def mode(self) -> Mode:
        """The section's own mode (its ``Mode`` fields)."""
        return Mode(dtype=self.dtype, channels_last=self.channels_last, compile=self.compile)

    def modes_for(self, device: str) -> list[Mode]:
        """The modes to time on ``device`` (``cuda:1`` takes those of ``cuda``): the ``modes`` listed, else the
        section's own mode."""
        if self.modes is None:
            return [self.mode]
        if isinstance(self.modes, dict):
            by_device = cast(dict[str, list[Mode]], self.modes)
            return list(by_device.get(device.partition(":")[0], []))
        return list(self.modes)

    def batch_sizes_for(self, device: str) -> list[int]:
        """The batch sizes for ``device``; ``cuda:1`` takes those of ``cuda``."""
        if isinstance(self.batch_sizes, dict):
            by_device = cast(dict[str, list[int]], self.batch_sizes)  # any device string may be asked
            return list(by_device.get(device.partition(":")[0], []))
        return list(self.batch_sizes)


class TrainSection(TrainRecipe):
    """Short CIFAR reproductions of [P] Table 5: a ``TrainRecipe`` (``harness.train.config``: ResNeXt's CIFAR
    protocol, every default and bound) trained once per seed, plus the suite's own settings below."""

    epochs: Epochs = 5  # short runs; a recipe alone has no default
    dataset: DatasetName = "cifar10"
    data_dir: str | None = None
    download: bool = True
    models: list[ModelSpec]
    width: Annotated[float, Field(gt=0, le=64, allow_inf_nan=False)] | None = None
    seeds: list[Seed] = Field(default_factory=lambda: [0])
    run_on: list[DeviceType] = Field(default_factory=lambda: list(DEVICE_TYPES))
    save_weights: bool = True  # keep each trained model's weights in the run dir (eval / attention from_train)
    # processes (one per GPU; gloo processes on the CPU) a launched shard trains with (``harness.launch``);
    # a plain run trains in the world it was started in (torchrun's)
    gpus: PositiveInt = 1


class ImageSetSection(Settings):
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
    dataset: Literal["imagenet", DatasetName] = "imagenet"
    data_dir: str | None = None
    layout: Literal["auto", "imagefolder", "ilsvrc"] = "auto"
    ground_truth: str | None = None
    preprocess: Literal["paper", "timm"] = "paper"
    batch_size: BatchSize = 64
    max_images: Annotated[int, Field(ge=1, le=10**9, strict=True)] | None = None
    workers: Annotated[int, Field(ge=0, le=256, strict=True)] | None = None

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


class OpTimeSection(Mode):
    """Where each model's time goes: ms per operator kind (``harness.measure.optime``), the models profiled paired
    in one task, and for SE / SK models the extra time over their plain network kind by kind. ``iterations``
    profiled cycles (each runs every model once, order rotating), after ``warmup`` cycles and
    ``unprofiled_iterations`` cycles timed without the profiler (to show its overhead). ``models`` None = the
    suite's; ``input_size`` None = each model's own. A ``Mode`` (its dtype and memory format), always eager: the
    kinds are the eager model's operators."""

    compile: ClassVar[None] = None  # type: ignore[misc]  # not a setting here: op-time profiles the eager model
    # one profiled group per mode, e.g. [fp32, channels_last, bf16, compile]: a compiled model is profiled without
    # the attribution hooks (its kinds are then Inductor's fused kernels, the convolutions by backend, the guards)
    modes: list[ModeEntry] | None = None
    models: list[ModelSpec] | None = None
    batch_size: PositiveInt = 1
    iterations: PositiveInt = 10
    warmup: Annotated[int, Field(ge=0)] = 2
    unprofiled_iterations: Annotated[int, Field(ge=0)] = 3
    input_size: Size | None = None

    @model_validator(mode="after")
    def _eager_modes(self) -> OpTimeSection:
        if self.modes is not None:
            _check_modes([self.modes], own=Mode(dtype=self.dtype, channels_last=self.channels_last),
                         keys="dtype/channels_last")
        return self

    def modes_to_profile(self) -> list[Mode]:
        """One profiled group per mode: the ``modes`` listed, else the section's own dtype and memory format."""
        return list(self.modes) if self.modes is not None else [Mode(dtype=self.dtype,
                                                                      channels_last=self.channels_last)]


class LauncherSection(Settings):
    """How ``run --launcher slurm|local`` spreads the suite's shards (``harness.launch``; docs/cluster.md).

    ``--slurm KEY=VALUE`` overrides any key. ``time`` is per shard: SLURM's ``--time`` and the local
    executor's timeout. ``gpus_per_node`` None = ``train.gpus`` (0 when the suite runs on the CPU). ``partition``,
    ``account``, ``qos``, ``constraint``, ``exclusive``, ``cpus_per_task`` and ``mem`` go to sbatch once
    checked against SLURM's grammar (nothing else can reach the job script); ``setup`` is the one key whose
    values are shell by design: each entry is one line run before the shard (e.g. ``module load``).
    ``array_parallelism`` bounds how many shards run at once (local default: one at a time when the suite times
    models, so they never share the machine).
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

    @field_validator("partition", "account", "qos", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return slurm_names(value)

    @field_validator("constraint", mode="before")
    @classmethod
    def _constraint(cls, value: Any) -> Any:
        return slurm_constraint(value)

    @field_validator("setup", mode="before")
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        lines = [value] if isinstance(value, str) else value
        return [shell_line(line) for line in lines] if isinstance(lines, list) else lines


class Suite(Settings):
    schema_version: Literal[1] = Field(1, alias="schema")
    name: SuiteName
    description: str = ""
    imports: list[str] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    device: Literal["auto", DeviceType] = "auto"
    seed: Seed = 0
    complexity: ComplexitySection | None = None
    latency: TimingSection | None = None
    throughput: TimingSection | None = None
    train: TrainSection | None = None
    eval: EvalSection | None = None
    attention: AttentionSection | None = None
    op_time: OpTimeSection | None = None
    launcher: LauncherSection | None = None

    model_config = ConfigDict(populate_by_name=True)

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
