"""YAML suite → validated, frozen ``Suite`` → list of ``Task``s.

Validation is strict (pydantic, ``extra="forbid"``): an unknown key is an error naming the file, the key
path and the closest valid key; a wrong type or value names the key and what is expected.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError

SUITE_SCHEMA = 1
Dtype = Literal["fp32", "bf16", "fp16"]
PositiveInt = Annotated[int, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """A model of the suite: a registry name (``timm:`` for timm), a display label, options."""

    name: str
    label: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    input_size: tuple[PositiveInt, PositiveInt, PositiveInt] | None = None

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

    input_size: tuple[PositiveInt, PositiveInt, PositiveInt] | None = None
    models: list[ModelSpec] | None = None
    flop_crosscheck: bool = True


class TimingSection(_Strict):
    """Latency (per-iteration samples) or throughput (whole loops at a fixed batch)."""

    batch_sizes: list[PositiveInt] | dict[Literal["cpu", "cuda"], list[PositiveInt]] = Field(
        default_factory=lambda: [1]
    )
    input_size: tuple[PositiveInt, PositiveInt, PositiveInt] | None = None
    models: list[ModelSpec] | None = None
    warmup: Annotated[int, Field(ge=0)] = 3
    min_time_s: Annotated[float, Field(gt=0)] = 1.0
    max_time_s: Annotated[float, Field(gt=0)] = 5.0
    min_samples: PositiveInt = 10
    rounds: PositiveInt = 1
    dtype: Dtype = "fp32"
    channels_last: bool = False
    compile: str | None = None
    cudnn_benchmark: bool = True
    tf32: bool = False
    reference: bool = False  # interleave a fixed reference workload (noise normalisation for `check`)
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
    """Short CIFAR reproductions of [P] Table 5."""

    dataset: Literal["cifar10", "cifar100"] = "cifar10"
    data_dir: str | None = None
    download: bool = True
    models: list[ModelSpec]
    width: Annotated[float, Field(gt=0)] | None = None
    epochs: PositiveInt = 5
    seeds: list[int] = Field(default_factory=lambda: [0])
    batch_size: PositiveInt = 128
    eval_batch_size: PositiveInt = 512
    lr: Annotated[float, Field(gt=0)] = 0.1
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = True
    weight_decay: Annotated[float, Field(ge=0)] = 5e-4
    schedule: Literal["cosine", "step"] = "cosine"
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    amp_dtype: Literal["bf16", "fp16"] | None = None
    channels_last: bool = False
    compile: str | None = None
    max_batches_per_epoch: PositiveInt | None = None
    run_on: list[Literal["cpu", "cuda"]] = Field(default_factory=lambda: ["cpu", "cuda"])


class Suite(_Strict):
    schema_version: Literal[1] = Field(1, alias="schema")
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    imports: list[str] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    complexity: ComplexitySection | None = None
    latency: TimingSection | None = None
    throughput: TimingSection | None = None
    train: TrainSection | None = None

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

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# ---------------------------------------------------------------- loading and error messages


def _model_class(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation like ``X | None`` or ``list[X]`` (for key suggestions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list, tuple, dict, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_class(arg)
            if found is not None:
                return found
    return None


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    cls: type[BaseModel] | None = Suite
    for part in loc:
        if cls is None or not isinstance(part, str):
            continue
        fields = cls.model_fields
        name = next((k for k, f in fields.items() if part in (k, f.alias)), None)
        cls = _model_class(fields[name].annotation) if name else None
    if cls is None:
        return []
    return [f.alias or k for k, f in cls.model_fields.items()]


def _format_error(err: dict[str, Any], source: str) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in {"function-after", "str", "list"}))
    path = ".".join(str(p) for p in loc if not str(p).startswith(("list[", "dict[", "tuple[", "function-")))
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        valid = _valid_keys(loc[:-1])
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        return f"{source}: unknown key '{path}'; {hint}"
    if err["type"] == "missing":
        return f"{source}: missing required key '{path}'"
    got = err.get("input")
    shown = json.dumps(got, default=str) if not isinstance(got, dict) else "a mapping"
    return f"{source}: key '{path}': {err['msg']} (got {shown[:60]})"


def parse_suite(data: Any, *, source: str = "<suite>") -> Suite:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a suite is a YAML mapping with at least 'name' and 'models'")
    version = data.get("schema", SUITE_SCHEMA)
    if version != SUITE_SCHEMA:
        raise ConfigError(f"{source}: suite schema {version!r} is not supported; this harness reads schema 1")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_format_error(errors[0], source) + more) from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``KEY.PATH=VALUE`` overrides (values parsed as YAML) applied to a suite's raw mapping."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. --set train.epochs=2")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is not a mapping in this suite")
            node = child
        node[parts[-1]] = value
    return data


def load_suite(path: str | Path, *, overrides: list[str] | None = None) -> Suite:
    """Read and validate a suite file (plus ``--set`` overrides); every problem is a one-line ``ConfigError``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"suite file {str(path)!r} not found; pass a path like suites/sknet_vs_senet.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if overrides:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a suite is a YAML mapping; --set needs one")
        data = apply_overrides(data, overrides)
    source = f"{path} (with --set {' '.join(overrides)})" if overrides else str(path)
    return parse_suite(data, source=source)


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """One unit of work; its ``task_id`` is stable across runs of the same suite (resume, merge, check)."""

    task_id: str
    kind: str
    model: ModelSpec
    device: str
    batch_size: int | None = None
    seed: int | None = None
    round: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _digest(payload: Any) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _task_id(kind: str, spec: ModelSpec, *parts: Any) -> str:
    tail = ":".join(str(p) for p in parts if p is not None)
    return f"{kind}:{spec.display}:{_digest([spec.name, spec.options])}" + (f":{tail}" if tail else "")


def select_models(models: list[ModelSpec], patterns: list[str]) -> list[ModelSpec]:
    """Keep models whose name or label matches any fnmatch pattern."""
    return [m for m in models if any(fnmatch.fnmatchcase(n, p) for p in patterns for n in (m.name, m.display))]


def _timing_tasks(kind: str, section: TimingSection, models: list[ModelSpec], device: str) -> list[Task]:
    settings = section.model_dump(mode="json", exclude={"models", "batch_sizes", "rounds"})
    settings["rounds_total"] = section.rounds
    kinds = [kind] + (["train_throughput"] if kind == "throughput" and section.train_step else [])
    tasks = []
    if kind == "throughput":
        peak = ModelSpec(name="matmul", label=f"peak {section.dtype}")
        tasks.append(Task(_task_id("peak", peak, section.dtype, device), "peak", peak, device, None, None, None,
                          settings))
    for r in range(section.rounds):
        for bs in section.batch_sizes_for(device):
            for k in kinds:
                for spec in models:
                    parts = (f"bs{bs}", section.dtype, device, f"r{r}")
                    tasks.append(Task(_task_id(k, spec, *parts), k, spec, device, bs, None, r, settings))
                if section.reference and k == "latency":
                    ref = ModelSpec(name="reference_convnet", label="reference")
                    rid = _task_id("calibration", ref, f"bs{bs}", section.dtype, device, f"r{r}")
                    tasks.append(Task(rid, "calibration", ref, device, bs, None, r, settings))
    return tasks


def expand(suite: Suite, *, device: str) -> list[Task]:
    """Suite → tasks: complexity, then latency / throughput rounds (models interleaved), then training."""
    tasks: list[Task] = []
    if suite.complexity is not None:
        settings = suite.complexity.model_dump(mode="json", exclude={"models"})
        for spec in suite.complexity.models or suite.models:
            tasks.append(Task(_task_id("complexity", spec), "complexity", spec, "cpu", 1, None, None, settings))
    for kind in ("latency", "throughput"):
        section = getattr(suite, kind)
        if section is not None:
            tasks += _timing_tasks(kind, section, section.models or suite.models, device)
    if suite.train is not None:
        settings = suite.train.model_dump(mode="json", exclude={"models", "seeds"})
        for seed in suite.train.seeds:
            for spec in suite.train.models:
                spec = spec.with_options(width=suite.train.width) if suite.train.width else spec
                tid = _task_id("train", spec, suite.train.dataset, f"seed{seed}")
                tasks.append(Task(tid, "train", spec, device, suite.train.batch_size, seed, None, settings))
    return tasks


def replace_models(suite: Suite, patterns: list[str]) -> Suite:
    """``--models``: the given names/patterns replace the suite's model list; section lists are filtered."""
    from harness.registry import list_models

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
    for kind in ("complexity", "latency", "throughput", "train"):
        section = getattr(suite, kind)
        if section is not None and section.models is not None:
            update[kind] = section.model_copy(update={"models": select_models(section.models, patterns)})
    return suite.model_copy(update=update)


def _model_lists(suite: Suite) -> list[tuple[str, list[ModelSpec]]]:
    lists = [("models", suite.models)]
    for kind in ("complexity", "latency", "throughput", "train"):
        section = getattr(suite, kind)
        if section is not None and section.models is not None:
            lists.append((f"{kind}.models", section.models))
    return lists


def check_models(suite: Suite, *, source: str) -> None:
    """Every model name and option of the suite exists in the registry (after plugins are imported).

    Checked before anything runs, so a typo is one line and exit 2 instead of a run of error records.
    """
    from harness.errors import HarnessError
    from harness.registry import check_model

    for path, specs in _model_lists(suite):
        for index, spec in enumerate(specs):
            try:
                check_model(spec.name, spec.options)
            except HarnessError as exc:
                raise ConfigError(f"{source}: key '{path}[{index}]': {exc}") from None
