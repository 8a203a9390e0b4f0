"""From a suite to the tasks of a run: one ``Task`` per model × kind × batch size × round × seed, each with
a typed spec of how to run it and a stable id, in the order they run (latency rounds interleave the models).

Specs are built from the suite's sections, which hold every default; nothing downstream looks a setting up by
name. Task ids are stable across runs of the same suite: resume, merge and the gate match on them.

One piece: a section's spec, its expansion and its place in the model lists change together whenever a
suite section is added, so they stay in one module.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from harness.config.schema import (
    AttentionSection,
    ComplexitySection,
    EvalSection,
    ImageSetSection,
    ModelSpec,
    OpTimeSection,
    Suite,
    TimingSection,
    TrainSection,
)
from harness.errors import ConfigError, HarnessError
from harness.fileio import canonical_json
from harness.measure import processes as timing_processes
from harness.measure.mode import Mode
from harness.measure.sampling import TimingConfig
from harness.settings import Settings
from harness.train.config import TrainConfig

C = TypeVar("C", bound=Settings)

Size = tuple[int, int, int]


@dataclass(frozen=True, kw_only=True)
class ComplexitySpec:
    input_size: Size | None  # None: the model's own
    flop_crosscheck: bool


@dataclass(frozen=True, kw_only=True)
class TimingSpec:
    """A latency / throughput / train-step group: its models timed together, interleaved (one round of them)."""

    timing: TimingConfig  # warmup and the per-model window of all rounds together
    rounds: int
    processes: int  # worker processes the group is timed in (harness.measure.processes)
    mode: Mode
    cudnn_benchmark: bool
    tf32: bool
    input_size: Size | None
    reference: bool = False  # the reference workload is timed in every latency group, as one more member


@dataclass(frozen=True, kw_only=True)
class PeakSpec:
    dtype: str
    cudnn_benchmark: bool
    tf32: bool


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    config: TrainConfig  # its seed is the task's
    dataset: str
    data_dir: str | None
    download: bool
    run_on: tuple[str, ...]
    save_weights: bool = True


@dataclass(frozen=True, kw_only=True)
class ImageSetSpec:
    """A labelled image set as the eval and attention tasks read it (``harness.data.sets.open_image_set``)."""

    dataset: str
    data_dir: str | None
    layout: str
    ground_truth: str | None
    preprocess: str
    batch_size: int
    max_images: int | None
    workers: int | None
    subset_seed: int


@dataclass(frozen=True, kw_only=True)
class EvalSpec:
    images: ImageSetSpec
    from_train: str | None = None  # the id of the training task (of this run) whose weights are evaluated


@dataclass(frozen=True, kw_only=True)
class AttentionSpec:
    images: ImageSetSpec
    scales: tuple[float, ...]
    from_train: str | None = None


@dataclass(frozen=True, kw_only=True)
class OpTimeSpec:
    """A group of models profiled paired in one task (``harness.measure.optime``): time per operator kind."""

    models: tuple[ModelSpec, ...]
    iterations: int
    warmup: int
    unprofiled_iterations: int
    mode: Mode
    input_size: Size | None


Spec = ComplexitySpec | TimingSpec | PeakSpec | TrainSpec | EvalSpec | AttentionSpec | OpTimeSpec


@dataclass(frozen=True, kw_only=True)
class Task:
    """One unit of work. ``model`` is None for tasks of the device alone (the matmul peak) and for groups.

    A timing group (``members`` not empty) times its members together in one process, interleaved; each
    member is a one-model task of its own (its id, kind, model) and gets its own record.
    """

    task_id: str
    kind: str
    spec: Spec
    device: str
    model: ModelSpec | None = None
    batch_size: int | None = None
    seed: int | None = None
    round: int | None = None
    members: tuple[Task, ...] = ()

    @property
    def label(self) -> str:
        if self.members:
            return f"{self.kind} batch {self.batch_size} ({len(self.members)} models)"
        if self.model is None and isinstance(self.spec, OpTimeSpec):
            return "op time: " + ", ".join(m.display for m in self.spec.models)
        return self.model.display if self.model is not None else f"peak {getattr(self.spec, 'dtype', '')}".strip()

    @property
    def ids(self) -> tuple[str, ...]:
        """The ids of the records this task writes (a group's members', else its own)."""
        return tuple(m.task_id for m in self.members) or (self.task_id,)


def _digest(payload: Any) -> str:
    return hashlib.sha1(canonical_json(payload).encode()).hexdigest()[:8]


def _task_id(kind: str, label: str, name: str, options: dict[str, Any], *parts: Any) -> str:
    tail = ":".join(str(p) for p in parts if p is not None)
    return f"{kind}:{label}:{_digest([name, options])}" + (f":{tail}" if tail else "")


def _model_task_id(kind: str, spec: ModelSpec, *parts: Any) -> str:
    return _task_id(kind, spec.display, spec.name, spec.options, *parts)


# ------------------------------------------------------------------------------------------------ specs


def _library(config: type[C], section: Settings, **task: Any) -> C:
    """The ``config`` a section extends, as that class itself (what a notebook would build: hashable, equal to
    it, without the section's own settings), plus the task's values of the fields the section has not (a seed)."""
    return config(**section.model_dump(include=set(config.model_fields)), **task)


def _timing_spec(section: TimingSection) -> TimingSpec:
    return TimingSpec(
        timing=_library(TimingConfig, section),
        rounds=section.rounds,
        processes=section.processes if section.processes is not None else timing_processes.DEFAULT_PROCESSES,
        mode=_library(Mode, section),
        cudnn_benchmark=section.cudnn_benchmark,
        tf32=section.tf32,
        input_size=section.input_size,
        reference=section.reference,
    )


def _train_spec(section: TrainSection, seed: int) -> TrainSpec:
    return TrainSpec(config=_library(TrainConfig, section, seed=seed), dataset=section.dataset,
                     data_dir=section.data_dir, download=section.download, run_on=tuple(section.run_on),
                     save_weights=section.save_weights)


def _image_set_spec(section: ImageSetSection, seed: int) -> ImageSetSpec:
    return ImageSetSpec(dataset=section.dataset, data_dir=section.data_dir, layout=section.layout,
                        ground_truth=section.ground_truth, preprocess=section.preprocess,
                        batch_size=section.batch_size, max_images=section.max_images, workers=section.workers,
                        subset_seed=seed)


# ------------------------------------------------------------------------------------------------ tasks


def _complexity_tasks(section: ComplexitySection, models: list[ModelSpec]) -> list[Task]:
    spec = ComplexitySpec(input_size=section.input_size, flop_crosscheck=section.flop_crosscheck)
    return [Task(task_id=_model_task_id("complexity", m), kind="complexity", spec=spec, model=m, device="cpu",
                 batch_size=1) for m in models]


def _peak_task(spec: TimingSpec, device: str) -> Task:
    # the id keeps the form it had when the peak was a pseudo-model called "matmul"
    label = f"peak {spec.mode.dtype}"
    task_id = _task_id("peak", label, "matmul", {}, spec.mode.dtype, device)
    peak = PeakSpec(dtype=spec.mode.dtype, cudnn_benchmark=spec.cudnn_benchmark, tf32=spec.tf32)
    return Task(task_id=task_id, kind="peak", spec=peak, device=device)


REFERENCE_MODEL = ModelSpec(name="reference_convnet", label="reference")


def _mode_token(section: TimingSection | OpTimeSection, mode: Mode) -> str:
    """A mode's part of a task id: the whole mode for a section that lists ``modes``, else the dtype alone (the ids
    of runs before modes, which resume, merge and the gate match on)."""
    return mode.dtype if section.modes is None else mode.token


def _timing_tasks(kind: str, section: TimingSection, models: list[ModelSpec], device: str) -> list[Task]:
    """One group per round, batch size and kind: the section's models (and the reference) timed together; with
    ``modes``, every model in every mode (model-major), all in that one group."""
    spec = _timing_spec(section)
    kinds = [kind] + (["train_throughput"] if kind == "throughput" and section.train_step else [])
    modes = section.modes_for(device)
    if not modes:  # modes per device, none for this one
        return []
    specs = {mode: replace(spec, mode=mode) for mode in modes}
    tokens = {mode: _mode_token(section, mode) for mode in modes}
    tasks = [_peak_task(replace(spec, mode=Mode(dtype=d)), device)
             for d in dict.fromkeys(m.dtype for m in modes)] if kind == "throughput" else []
    for r in range(section.rounds):
        for bs in section.batch_sizes_for(device):
            parts = (f"bs{bs}", section.dtype if section.modes is None else "modes", device, f"r{r}")
            for k in kinds:
                members = [Task(task_id=_model_task_id(k, m, f"bs{bs}", tokens[mode], device, f"r{r}"), kind=k,
                                spec=specs[mode], model=m, device=device, batch_size=bs, round=r)
                           for m in models for mode in modes]
                if section.reference and k == "latency":
                    members.append(Task(task_id=_model_task_id("reference", REFERENCE_MODEL, *parts),
                                        kind="reference", spec=spec, model=REFERENCE_MODEL, device=device,
                                        batch_size=bs, round=r))
                tasks.append(Task(task_id=f"group:{k}:{_digest([t.task_id for t in members])}:" + ":".join(parts),
                                  kind=k, spec=spec, device=device, batch_size=bs, round=r, members=tuple(members)))
    return tasks


def _trained_model(section: TrainSection, m: ModelSpec) -> ModelSpec:
    return m.with_options(width=section.width) if section.width else m


def _train_task_id(section: TrainSection, m: ModelSpec, seed: int) -> str:
    return _model_task_id("train", _trained_model(section, m), section.dataset, f"seed{seed}")


def _train_tasks(section: TrainSection, device: str) -> list[Task]:
    tasks = []
    for seed in section.seeds:
        spec = _train_spec(section, seed)
        for m in section.models:
            tasks.append(Task(task_id=_train_task_id(section, m, seed), kind="train", spec=spec,
                              model=_trained_model(section, m), device=device, batch_size=section.batch_size,
                              seed=seed))
    return tasks


def _image_tasks(kind: str, section: EvalSection | AttentionSection, suite: Suite, device: str) -> list[Task]:
    """One task per model (weights as its options say), then one per ``from_train`` model (its trained weights)."""
    images = _image_set_spec(section, suite.seed)

    def spec(from_train: str | None) -> EvalSpec | AttentionSpec:
        if isinstance(section, AttentionSection):
            return AttentionSpec(images=images, scales=tuple(section.scales), from_train=from_train)
        return EvalSpec(images=images, from_train=from_train)

    models = section.models if section.models is not None else ([] if section.from_train else suite.models)
    tasks = [Task(task_id=_model_task_id(kind, m, section.dataset), kind=kind, spec=spec(None), model=m,
                  device=device, batch_size=section.batch_size) for m in models]
    train = suite.train
    if section.from_train and train is None:
        raise ConfigError(f"{kind}.from_train {section.from_train} names trained models, but the suite has no "
                          "train section: add one, or drop from_train")
    for label in section.from_train:
        assert train is not None
        seed = section.train_seed if section.train_seed is not None else train.seeds[0]
        m = next(m for m in train.models if m.display == label)
        trained = _trained_model(train, m)
        tasks.append(Task(task_id=_model_task_id(kind, trained, section.dataset, f"trained-seed{seed}"), kind=kind,
                          spec=spec(_train_task_id(train, m, seed)), model=trained, device=device,
                          batch_size=section.batch_size))
    return tasks


def _op_time_tasks(section: OpTimeSection, models: list[ModelSpec], device: str) -> list[Task]:
    """One task for the whole group: its models are profiled interleaved, in one process, to be compared."""
    if not models:
        return []
    label = "+".join(m.display for m in models)
    digest = _digest([[m.name, m.options, m.display] for m in models])
    tasks = []
    for mode in section.modes_to_profile():
        spec = OpTimeSpec(models=tuple(models), iterations=section.iterations, warmup=section.warmup,
                          unprofiled_iterations=section.unprofiled_iterations, mode=mode,
                          input_size=section.input_size)
        task_id = f"op_time:{label}:{digest}:bs{section.batch_size}:{_mode_token(section, mode)}:{device}"
        tasks.append(Task(task_id=task_id, kind="op_time", spec=spec, device=device, batch_size=section.batch_size))
    return tasks


def expand(suite: Suite, *, device: str) -> list[Task]:
    """Suite → tasks: complexity, latency / throughput rounds (models interleaved), op time (one task per group),
    training, eval, attention."""
    tasks: list[Task] = []
    if suite.complexity is not None:
        tasks += _complexity_tasks(suite.complexity, suite.complexity.models or suite.models)
    for kind in ("latency", "throughput"):
        section = getattr(suite, kind)
        if section is not None:
            tasks += _timing_tasks(kind, section, section.models or suite.models, device)
    if suite.op_time is not None:
        tasks += _op_time_tasks(suite.op_time, suite.op_time.models or suite.models, device)
    if suite.train is not None:
        tasks += _train_tasks(suite.train, device)
    for kind in ("eval", "attention"):  # after training: from_train reads the weights it saved
        section = getattr(suite, kind)
        if section is not None:
            tasks += _image_tasks(kind, section, suite, device)
    return tasks


def shard_tasks(tasks: list[Task], shard: tuple[int, int] | None) -> list[Task]:
    """A deterministic subset: the tasks of every model go to one shard, and every timing group whole to one.

    A comparison is measured in one process (its models timed together), so a group is never split; and the
    groups of one set of models (its rounds, batch sizes, latency and throughput) go to the same shard, so a
    model's timings pooled in the report come from one machine. Model sets go to the shards in turn, the other
    tasks by model label.
    """
    if shard is None:
        return tasks
    index, count = shard
    labels = list(dict.fromkeys(t.label for t in tasks if not t.members))
    mine = set(labels[index::count])
    model_sets = list(dict.fromkeys(_model_set(t) for t in tasks if t.members))
    my_sets = set(model_sets[index::count])
    return [t for t in tasks if (_model_set(t) in my_sets if t.members else t.label in mine)]


def shard_units(tasks: list[Task]) -> int:
    """How many shards ``tasks`` can fill: shard I of N gets no task when I ≥ this (``shard_tasks``'s units are
    the model labels of the untimed tasks and the model sets of the timing groups, dealt out in turn)."""
    labels = {t.label for t in tasks if not t.members}
    return max(len(labels), len({_model_set(t) for t in tasks if t.members}))


def _model_set(group: Task) -> frozenset[str]:
    return frozenset(m.label for m in group.members)


# ------------------------------------------------------------------------------- model lists (--models)

MODEL_SECTIONS = ("complexity", "latency", "throughput", "train", "eval", "attention", "op_time")


def select_models(models: list[ModelSpec], patterns: list[str]) -> list[ModelSpec]:
    """Keep models whose name or label matches any fnmatch pattern."""
    return [m for m in models if any(fnmatch.fnmatchcase(n, p) for p in patterns for n in (m.name, m.display))]


def replace_models(suite: Suite, patterns: list[str]) -> Suite:
    """``--models``: the given names/patterns replace the suite's model list; section lists are filtered."""
    from harness.models.registry import list_models

    top: list[ModelSpec] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            names = list_models(pattern)
            if not names:
                raise ConfigError(f"--models pattern {pattern!r} matches no registered model")
            top += [ModelSpec(name=n) for n in names]
        else:
            top.append(ModelSpec(name=pattern))
    update: dict[str, Any] = {"models": top}
    for kind in MODEL_SECTIONS:
        section = getattr(suite, kind)
        if section is not None and section.models is not None:
            update[kind] = section.model_copy(update={"models": select_models(section.models, patterns)})
    return suite.model_copy(update=update)


def _model_lists(suite: Suite) -> list[tuple[str, list[ModelSpec]]]:
    lists = [("models", suite.models)]
    for kind in MODEL_SECTIONS:
        section = getattr(suite, kind)
        if section is not None and section.models is not None:
            lists.append((f"{kind}.models", section.models))
    return lists


def check_models(suite: Suite, *, source: str) -> None:
    """Every model name and option of the suite exists in the registry (after plugins are imported).

    Checked before anything runs, so a typo is one line and exit 2 instead of a run of error records.
    """
    from harness.models.registry import check_model

    for path, specs in _model_lists(suite):
        for index, spec in enumerate(specs):
            try:
                check_model(spec.name, spec.options)
            except HarnessError as exc:
                raise ConfigError(f"{source}: key '{path}[{index}]': {exc}") from None
