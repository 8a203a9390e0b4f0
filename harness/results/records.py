"""The record: one typed shape per kind, the single definition of every field a run dir holds.

A record is one line of ``records.jsonl``. Its shape is chosen by ``status`` and ``kind`` (a pydantic
discriminated union, ``Record``): ``error`` and ``skipped`` records of any kind share one shape each; an ``ok``
record has its kind's shape. The writer (``harness.results.store.RecordWriter``) validates every record through
these types and refuses a field no type declares; the reader validates every line through them (after
``harness.results.schema`` migrates older versions), so a hand-edited or foreign record is one
``ResultsError`` naming the file, the line and the field, never a crash somewhere in a report. Reading keeps
fields it does not know (a newer harness may write more); writing never does.

``python -m harness schema`` prints the JSON Schema of ``Record``; docs/records.md is generated from these
types (``python -m harness schema --markdown``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError, model_validator
from pydantic_core import ErrorDetails

from harness.errors import HarnessError, ResultsError

# A time or a rate as the harness measures it: a finite number, never negative (NaN, Infinity and -1 are valid
# JSON to Python's reader, and would reach a ratio or a bootstrap as nonsense).
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
PositiveCount = Annotated[int, Field(gt=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]

# Kinds whose records carry per-iteration ``samples_ms`` of a model (the gate's and the report's benchmarks).
TIMED_KINDS = ("latency", "throughput", "train_throughput")
# Of those, the kinds whose samples come from whole loops (``loop_samples_s``, an images-per-second rate).
LOOP_KINDS = ("throughput", "train_throughput")
# The fixed reference workload's kind: the timing yardstick timed beside the models of a group.
REFERENCE_KIND = "reference"
# Every kind whose records hold ``samples_ms`` (the models' and the reference workload's).
SAMPLED_KINDS = ("latency", REFERENCE_KIND, *TIMED_KINDS[1:])


class _Shape(BaseModel):
    # strict: "1" is not 1; extra allowed on read (a newer harness may write more), refused on write (``check_new``)
    model_config = ConfigDict(extra="allow", strict=True, use_attribute_docstrings=True,
                              defer_build=True)  # validators are built on first use, not at import

    def to_json(self) -> dict[str, Any]:
        """As its JSON holds it: the fields it was given (extras included), by their JSON names."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class PlainRef(_Shape):
    """The network a model adds attention to, as the registry said when the run built it."""

    model: str
    canonical_options: dict[str, Any]


class ShardRef(_Shape):
    index: Count
    count: PositiveCount


class RecordBase(_Shape):
    """Fields of every record, written once by the runner (``harness.runner``) from the task."""

    schema_: int | None = Field(default=None, alias="schema", description="results schema version")
    task_id: str
    """stable id: `<kind>:<label>:<sha1(name, options)[:8]>[:<parts>]`; a later line with the same id, kind, epoch and
    round replaces an earlier one"""
    kind: str
    """what the task measured: one of the kinds below"""
    status: Literal["ok", "error", "skipped"]
    """ok | error | skipped"""
    model: str | None = Field(default=None, description="registry name as the suite wrote it; null for a "
                                                        "task of no model (peak, op time)")
    label: str | None = Field(default=None, description="the name the report shows")
    options: dict[str, Any] | None = Field(default=None, description="builder options as the suite wrote them")
    canonical_options: dict[str, Any] | None = Field(
        default=None, description="the options with the builder's defaults filled in, at run time")
    plain: PlainRef | None = Field(default=None, description="the model's plain counterpart (the network it adds "
                                                             "attention to), at run time")
    device: str | None = None
    """the device the task ran on (`cpu`, `cuda`, `cuda:1`)"""
    batch_size: PositiveCount | None = None
    """images per iteration"""
    round: Count | None = None
    """timing round (one timing group per round)"""
    seed: int | None = None
    """the task's seed (training)"""
    started_utc: str | None = None
    """when the task began, UTC"""
    wall_s: Seconds | None = Field(default=None, description="wall time of the task (of the group, when timed "
                                                             "in one)")
    shard: ShardRef | None = Field(default=None, description="which shard's process measured it")
    # the mode a timed model ran in (its error or skipped record too: a suite may time a model in several modes)
    dtype: str | None = None
    """fp32 | fp16 | bf16"""
    channels_last: bool | None = None
    compile: Any = None
    """torch.compile mode, or null"""


class ErrorInfo(_Shape):
    type: str
    message: str


class FailedRecord(RecordBase):
    """A task that raised: its type and one-line message."""

    status: Literal["error"]
    error: ErrorInfo


class SkippedRecord(RecordBase):
    """A task that cannot run here (no data set, a device the suite does not train on)."""

    status: Literal["skipped"]
    reason: str


class _Ok(RecordBase):
    status: Literal["ok"]


# ------------------------------------------------------------------------------------------------ complexity


class MacsCounter(_Shape):
    name: str
    version: str | None = None
    convention: str | None = None
    uncounted_ops: dict[str, Any] | list[Any] | None = None
    activations_convention: str | None = None


class FlopCounter(_Shape):
    name: str
    version: str | None = None
    flops: Count


class ComplexityRecord(_Ok):
    """Exact counts of one model (fvcore), in total, per operator and per module."""

    kind: Literal["complexity"]
    model: str
    label: str
    params: Count
    """parameters"""
    params_trainable: Count | None = None
    """parameters with requires_grad"""
    macs: Count
    """multiply-adds of one image (1 multiply-add = 1), fvcore"""
    activations: Count | None = None
    """elements written by conv and linear layers (fvcore ActivationCountAnalysis)"""
    input_size: list[PositiveCount]
    """[C, H, W]"""
    macs_counter: MacsCounter | None = None
    macs_by_operator: dict[str, Any] | None = None
    """{fvcore op: MACs}"""
    activations_by_operator: dict[str, Any] | None = None
    """{fvcore op: activations}"""
    stages: list[str] | None = None
    """module names of the network's stages, in order"""
    modules: list[list[Any]] | None = Field(default=None, description="[name, macs, activations] in model order")
    paper_rows: list[Any] | None = Field(default=None, description="the paper's rows this model and input are")
    flop_counter: FlopCounter | None = None
    """torch's FlopCounterMode cross-check (FLOPs = 2 × MACs)"""


# ---------------------------------------------------------------------------------------------------- timing


class LoadReading(_Shape):
    """What the machine did while a timing group was measured (``harness.measure.load``)."""

    wall_s: Seconds
    other_cores: Seconds
    """cores other processes kept busy"""
    own_cores: Seconds
    """cores this process used"""
    loadavg_1m: Finite
    involuntary_switches: Count
    """this process's involuntary context switches"""
    cores: PositiveCount
    """usable cores"""


class Window(_Shape):
    """The sampling window a timing group was given."""

    min_time_s: Seconds
    max_time_s: Seconds
    min_samples: PositiveCount
    rounds: PositiveCount
    cycles: Count
    """how many cycles the group ran"""


class ProcessRun(_Shape):
    """One worker process's timing of the record's group (``harness.measure.processes``)."""

    index: Count
    """the process's number in the run's timing session (from 0)"""
    pairing: str | None = None
    """this process's token for the group: samples with the same pairing and cycle ran side by side"""
    cycles: Count = 0
    """cycles this process timed"""
    wall_s: Seconds = 0.0
    load: LoadReading | None = None
    """what the machine did while this process timed the group"""
    contended: bool = False
    """other processes left fewer free cores than the harness's threads while it timed (oversubscribed)"""
    error: ErrorInfo | None = None
    """why this process has no samples of the model (it crashed, was killed, or the model raised in it)"""


class TimedRecord(_Ok):
    """Per-iteration samples of one model in one round of a timing group (``latency``); samples of models with
    the same ``pairing`` and cycle were taken side by side."""

    kind: Literal["latency"]
    model: str
    label: str
    batch_size: PositiveCount
    samples_ms: Annotated[list[Seconds], Field(min_length=1)]
    """per-iteration time, ms, raw"""
    warmup_ms: list[Seconds] | None = None
    """warm-up iterations, ms (kept apart)"""
    threads: PositiveCount | None = None
    """torch intra-op threads"""
    timer: str | None = None
    """cuda_event | perf_counter_ns"""
    peak_mem_bytes: Count | None = None
    """CUDA: max_memory_allocated of the timed loop; CPU: the process RSS peak during one extra iteration"""
    iter_peak_mem_bytes: Count | None = None
    """the most one iteration allocated above what was held when it began"""
    mem_method: str | None = None
    """cuda_allocator | torch_profiler+rss"""
    cudnn_benchmark: bool | None = None
    tf32: bool | None = None
    input_size: list[PositiveCount] | None = None
    """[C, H, W]"""
    window: Window | None = None
    # the paired engine's fields (absent in older runs): sample i was taken in cycle cycles[i] of session pairing
    cycles: list[Count] | None = None
    """the cycle of the group's session each sample was taken in (older runs: absent, compared unpaired)"""
    pairing: str | None = None
    """the session's token: samples of two records with the same pairing and cycle ran side by side"""
    group_size: PositiveCount | None = None
    """models timed together"""
    load: LoadReading | None = None
    # the reference workload's samples of the same cycles (the gate's yardstick), when it was timed in the group
    reference_samples_ms: list[Seconds] | None = None
    """the reference workload's samples of the same session (the gate's yardstick)"""
    reference_cycles: list[Count] | None = None
    """the cycle of each reference sample"""
    reference_processes: list[Count] | None = None
    """the process of each reference sample"""
    # the process level (absent in runs timed in one process, before the timing driver)
    processes: list[Count] | None = None
    """the worker process each sample was timed in (an index into process_runs)"""
    process_runs: list[ProcessRun] | None = None
    """every process the group was timed in, with its load; a failed one keeps its error"""
    processes_planned: PositiveCount | None = None
    """how many processes the group was to be timed in"""
    # a compiled model (``compile`` set): what compiling cost, apart from the samples (harness.measure.timer)
    compile_s: list[Seconds] | None = None
    """seconds spent compiling in each process that timed it (warm-up iterations that compiled, less a warm
    iteration each), in process order"""
    compiled_graphs: Count | None = None
    """graphs dynamo compiled for it (1: the whole model in one graph)"""
    graph_breaks: Count | None = None
    """graph breaks dynamo met in it (the code between two graphs runs eagerly)"""
    graph_break_reasons: list[str] | None = None
    """the first graph-break reasons, one line each"""
    compile_cache_hits: list[Count] | None = None
    """Inductor FX-graph cache hits in each process (0 in the first: a cold compile)"""

    @model_validator(mode="after")
    def _cycles_match(self) -> TimedRecord:
        if self.cycles and len(self.cycles) != len(self.samples_ms):
            raise ValueError(f"cycles has {len(self.cycles)} entries for {len(self.samples_ms)} samples_ms")
        if self.processes is not None:
            if len(self.processes) != len(self.samples_ms):
                raise ValueError(f"processes has {len(self.processes)} entries for {len(self.samples_ms)} samples_ms")
            known = {run.index for run in self.process_runs or ()}
            if any(p not in known for p in self.processes):
                raise ValueError("processes names a process that process_runs does not list")
        return self


class ReferenceRecord(TimedRecord):
    """The fixed reference workload's samples (``harness.workloads.reference``)."""

    kind: Literal["reference"]  # type: ignore[assignment]
    model: str | None = None  # type: ignore[assignment]


class ThroughputRecord(TimedRecord):
    """Whole-loop timings: ``samples_ms`` holds each loop's mean iteration time, ``samples_per_s`` is ``images /
    sum(loop_samples_s)``."""

    kind: Literal["throughput", "train_throughput"]  # type: ignore[assignment]
    images: PositiveCount
    """images timed"""
    loop_samples_s: list[PositiveSeconds]
    """seconds per whole loop"""
    samples_per_s: Seconds | None = None
    """images / sum(loop_samples_s)"""


class PeakRecord(_Ok):
    """Achieved GMAC/s of a large matmul: the utilisation denominator."""

    kind: Literal["peak"]
    dtype: str
    """the matmul's dtype"""
    peak_gmacs_per_s: Seconds
    """achieved GMAC/s of a large matmul"""
    threads: PositiveCount | None = None
    tf32: bool | None = None


class OpTimeModel(_Shape):
    """One model's profiled iterations in an op-time group (``harness.measure.optime.ModelOpTime``)."""

    model: str
    label: str
    options: dict[str, Any] | None = None
    canonical_options: dict[str, Any] | None = None
    plain: str | None = None
    """the label of its plain counterpart in the group, if there is one"""
    input_size: list[PositiveCount] | None = None
    kinds_ms: dict[str, list[Seconds]]
    """operator kind → ms of each iteration (cycle order)"""
    total_ms: list[Seconds]
    """per iteration: CPU, the iteration's profiled time; CUDA, its kernels' time"""
    host_ms: list[Seconds] | None = None
    """per iteration: the profiled host time"""
    unprofiled_ms: list[Seconds] | None = None
    """per iteration, without profiler or hooks"""
    warmup_ms: list[Seconds] | None = None
    ops_ms: dict[str, dict[str, Seconds]] = Field(default_factory=dict)
    """kind → outermost op → mean ms per iteration"""
    op_calls: dict[str, Seconds] = Field(default_factory=dict)
    """kind → ops called per iteration (mean)"""


class OpTimeFailure(_Shape):
    """A model of an op-time group that failed; the others are still profiled."""

    model: str | None = None
    label: str | None = None
    options: dict[str, Any] | None = None
    canonical_options: dict[str, Any] | None = None
    plain: str | None = None
    input_size: list[PositiveCount] | None = None
    error: ErrorInfo


class OpTimeRecord(_Ok):
    """Time per operator kind of a group of models, from paired profiled iterations."""

    kind: Literal["op_time"]
    models: dict[str, OpTimeModel]
    """label → the model's profiled iterations: iteration i of every model ran in cycle i"""
    errors: dict[str, OpTimeFailure]
    """label → a model that failed; the others are still profiled"""
    order: list[str] | None = None
    """cycle c runs the models in this order rotated by c"""
    iterations: int
    """profiled iterations per model"""
    warmup: Count | None = None
    unprofiled_iterations: Count | None = None
    dtype: str | None = None
    channels_last: bool | None = None
    compile: Any = None
    kinds: list[str] | None = None
    """the operator kinds that took time"""
    timer: str | None = None
    """profiler_cpu_self_time | profiler_cuda_device_time"""
    threads: PositiveCount | None = None
    caveat: str | None = None
    """the profiler's overhead, in words"""


# -------------------------------------------------------------------------------------------------- training


class _Epoch(_Shape):
    """What one epoch of training measured: an epoch record's fields, and a training curve's point's."""

    epoch: PositiveCount
    """1-based"""
    test_acc: Finite
    """fraction of the test set right"""
    img_per_s: Seconds
    """training images per second"""
    train_loss: Finite | None = None
    """mean training loss"""
    lr: Finite | None = None
    """learning rate at the epoch's end"""
    train_wall_s: Seconds | None = None
    """training time only (wall_s adds the evaluation)"""
    dataset: str | None = None
    synthetic: bool | None = None


class EpochRecord(_Epoch, _Ok):
    """One epoch of a training task (written as it ends, so a resumed run keeps it)."""

    kind: Literal["train_epoch"]


class CurvePoint(_Epoch):
    """One epoch of a training run's curve (``harness.train.config.EpochResult``)."""

    wall_s: Seconds | None = None
    seed: int | None = None


class TrainSettings(_Shape):
    """The effective training config of a run (``harness.train.config.TrainConfig``)."""

    epochs: Count | None = None
    batch_size: PositiveCount | None = None
    lr: Finite | None = None
    momentum: Finite | None = None
    nesterov: bool | None = None
    weight_decay: Finite | None = None
    schedule: str | None = None
    warmup_epochs: Count | None = None
    label_smoothing: Finite | None = None
    amp_dtype: str | None = None
    channels_last: bool | None = None
    compile: str | None = None
    cudnn_benchmark: bool | None = None
    eval_batch_size: PositiveCount | None = None
    max_batches_per_epoch: PositiveCount | None = None
    seed: int | None = None


class DistributedInfo(_Shape):
    world_size: PositiveCount | None = None
    backend: str | None = None


class TrainRecord(_Ok):
    """A finished training run: final top-1 error and the per-epoch curve."""

    kind: Literal["train"]
    model: str
    label: str
    top1_err: Finite
    """top-1 error of the last epoch, %"""
    train_time_s: Seconds
    """training time only, summed over epochs"""
    dataset: str
    synthetic: bool | None = None
    epochs: Count | None = None
    curve: list[CurvePoint]
    """the epoch records"""
    params: Count | None = None
    """of the trained, width-scaled model"""
    macs: Count | None = None
    """of the trained model at its input size"""
    input_size: list[PositiveCount] | None = None
    config: TrainSettings | None = None
    """the effective training config"""
    num_classes: PositiveCount | None = None
    data_root: str | None = None
    distributed: DistributedInfo | None = None
    weights_path: str | None = None
    """the final weights, relative to the run dir; null with save_weights: false"""


# ---------------------------------------------------------------------------------------- images (eval, attention)


class WeightsInfo(_Shape):
    """What was loaded (``harness.models.weights``)."""

    source: str = Field(description="file | timm")
    ref: str = Field(description="the file, or the timm name")
    format: str | None = Field(default=None, description="harness-checkpoint | harness-state-dict | "
                                                          "timm-state-dict | timm-pretrained")
    converted_from_timm: bool | None = None
    tensors: Count | None = None
    sha256: str | None = None
    train_task: str | None = None
    """the training task whose weights these are (``from_train``)"""


class Preprocess(_Shape):
    """The preprocessing that ran, read back from the transform (``harness.data.sets``)."""

    name: str | None = None
    """paper | timm | cifar"""
    resize: int | list[int] | None = None
    crop: int | list[int] | None = None
    interpolation: str | None = None
    mean: list[Finite] | None = None
    std: list[Finite] | None = None
    source: str | None = None
    """where the normalisation came from"""


class _Images(_Ok):
    """Which images a task read, and how (``harness.data.sets``)."""

    dataset: str
    """imagenet | cifar10 | cifar100"""
    data_root: str | None = None
    layout: str | None = None
    """imagefolder | ilsvrc | cifar"""
    ground_truth: str | None = None
    """labels file of a flat layout"""
    images: PositiveCount | None = None
    """images evaluated"""
    dataset_images: Count | None = None
    """images on disk"""
    subset: bool | None = None
    """max_images cut the set"""
    subset_seed: int | None = None
    num_classes: PositiveCount | None = None
    synthetic: bool | None = None
    """data written by the harness's fake-data writer, not the real set"""
    preprocess: Preprocess | None = None
    """read back from the transform that ran"""
    weights: WeightsInfo | None = None
    """null for random init"""


class EvalRecord(_Images):
    """Top-1 / top-5 error of one model with its weights on a labelled image set, as integer counts."""

    kind: Literal["eval"]
    model: str
    label: str
    images: PositiveCount
    top1_correct: Count
    top1_err: Finite
    """%"""
    top5_err: Finite | None = None
    """%"""
    top5_correct: Count | None = None
    topk: PositiveCount | None = None
    """k used: min(5, classes)"""
    top1_hits: str | None = Field(default=None, description="hex bitmap: which images were right")


class AttentionRecord(_Images):
    """SK attention vs object scale: the task's own record (``unit`` null) and one per SK unit and scale."""

    kind: Literal["attention"]
    dataset: str
    unit: str | None = None
    """null on the task's own record; the SK unit (`SK_<stage>_<block>`) on a unit's"""
    # the task's record
    units: list[str] | None = None
    """SK unit names"""
    scales: list[Finite] | None = None
    labels: list[int] | None = None
    class_names: list[str] | None = None
    top1_err_by_scale: dict[str, Finite] | None = None
    """{"1": %, "1.5": % …}"""
    # one unit at one scale
    parent_task: str | None = None
    """the task a unit's record belongs to"""
    stage: int | None = None
    block: int | None = None
    scale: Finite | None = None
    branch_receptive: list[Any] | None = None
    """receptive field per branch"""
    large_branch: int | None = None
    small_branch: int | None = None
    channel_mean: list[Any] | None = None
    """M × C mean softmax attention over images"""
    image_diff: list[Any] | None = None
    """per image: mean attention of the large branch minus the small one"""
    class_mean_diff: list[Any] | None = None
    """per class index (null without images)"""
    class_counts: list[Any] | None = None


OK_RECORDS: tuple[type[_Ok], ...] = (ComplexityRecord, TimedRecord, ReferenceRecord, ThroughputRecord, PeakRecord,
                                     OpTimeRecord, EpochRecord, TrainRecord, EvalRecord, AttentionRecord)


def _kinds_of(shape: type[_Ok]) -> tuple[str, ...]:
    """The kinds a record type is the shape of (its ``kind`` literal's values)."""
    return get_args(shape.model_fields["kind"].annotation)


KIND_SHAPES: dict[str, type[_Ok]] = {kind: shape for shape in OK_RECORDS for kind in _kinds_of(shape)}
KINDS = tuple(KIND_SHAPES)


def _tag(value: Any) -> str:
    def get(name: str) -> Any:
        return value.get(name) if isinstance(value, dict) else getattr(value, name, None)

    status = get("status")
    if status in ("error", "skipped"):
        return str(status)
    kind = get("kind")
    return str(kind) if kind in KIND_SHAPES else "unknown"


if TYPE_CHECKING:  # to a type checker, a record of any shape is a RecordBase (every member of the union is one)
    Record = RecordBase
else:
    Record = Annotated[
        Union[  # noqa: UP007 - Tag-annotated members
            tuple(Annotated[shape, Tag(kind)] for kind, shape in KIND_SHAPES.items())
            + (Annotated[FailedRecord, Tag("error")], Annotated[SkippedRecord, Tag("skipped")],
               Annotated[RecordBase, Tag("unknown")])
        ],
        Discriminator(_tag),
    ]


@functools.cache
def _adapter() -> TypeAdapter[Record]:
    """The union's validator, built on first use: importing this module (every CLI call does) stays cheap."""
    return TypeAdapter(Record)


class UndeclaredField(HarnessError):
    """The harness tried to write a field no record type declares: a bug in the harness, not in a run."""


def _field(err: ErrorDetails) -> str:
    loc = [str(p) for p in err["loc"]]
    if loc and (loc[0] in KIND_SHAPES or loc[0] in ("error", "skipped", "unknown")):
        loc = loc[1:]  # the union's tag
    return ".".join(loc)


def parse_record(record: dict[str, Any], *, where: str) -> RecordBase:
    """``record`` as its typed shape; a bad field is a one-line ``ResultsError`` naming ``where`` and the field."""
    try:
        return _adapter().validate_python(record)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ResultsError(f"{where}: a {record.get('kind')!r} record with status {record.get('status')!r} has a "
                           f"bad field '{_field(err)}': {err['msg'].lower()}; the run dir was edited by hand or "
                           "written by another tool") from None


def undeclared(typed: BaseModel, prefix: str = "") -> list[str]:
    """Fields of ``typed`` (and of its typed parts) that its types do not declare."""
    out = [prefix + name for name in (typed.model_extra or {})]
    for name in type(typed).model_fields:
        value = getattr(typed, name)
        parts = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, part in [("", value), *((f".{k}", v) for k, v in parts)]:
            if isinstance(part, _Shape):
                out += undeclared(part, f"{prefix}{name}{key}.")
    return out


def check_new(record: dict[str, Any]) -> RecordBase:
    """What the writer asks of a record it is about to append: its kind's shape, and no undeclared field; the
    record as that shape."""
    typed = parse_record(record, where=f"record {record.get('task_id')!r}")
    if type(typed) is RecordBase:
        raise UndeclaredField(f"record {record.get('task_id')!r}: kind {record.get('kind')!r} has no record type "
                              "in harness.results.records")
    extra = undeclared(typed)
    if extra:
        raise UndeclaredField(f"record {record.get('task_id')!r} ({record.get('kind')}): field(s) "
                              f"{', '.join(sorted(extra))} are not declared on {type(typed).__name__} "
                              "(harness.results.records)")
    return typed


def declared_fields(kind: str) -> tuple[str, ...]:
    """The fields an ``ok`` record of ``kind`` may have, in declaration order."""
    return tuple(f.alias or name for name, f in KIND_SHAPES[kind].model_fields.items())


def scalar_fields(kind: str) -> tuple[str, ...]:
    """The fields of kind ``kind``'s type beyond the common ones that hold one value (a table's columns)."""
    props = KIND_SHAPES[kind].model_json_schema(by_alias=True)["properties"]

    def scalar(prop: dict[str, Any]) -> bool:
        options = prop.get("anyOf", [prop])
        return all(p.get("type") not in ("array", "object") and "$ref" not in p for p in options)

    return tuple(name for name, prop in props.items()
                 if name not in RecordBase.model_fields and name != "schema" and scalar(prop))


def json_schema() -> dict[str, Any]:
    """JSON Schema of ``Record`` (``python -m harness schema``), its ``oneOf`` branches exclusive as the reader's tag
    makes them: a validator that ignores OpenAPI's ``discriminator`` (jsonschema does) would otherwise find a record
    in two branches, its kind's and the catch-all's, and reject it. The catch-all (a later version's kind) admits
    only an ``ok`` record of a kind this version does not know; ``error`` and ``skipped`` records are of their own
    branches, every other ``ok`` record of its kind's."""
    schema = _adapter().json_schema(by_alias=True)
    known = {"anyOf": [{"required": ["status"], "properties": {"status": {"enum": ["error", "skipped"]}}},
                       {"required": ["kind"], "properties": {"kind": {"enum": list(KIND_SHAPES)}}}]}
    schema["oneOf"] = [{"allOf": [branch, {"not": known}]} if branch.get("$ref", "").endswith("/RecordBase")
                       else branch for branch in schema["oneOf"]]
    return schema


def _type_name(prop: dict[str, Any]) -> str:
    if "const" in prop:
        return repr(prop["const"]).replace("'", '"')
    if "enum" in prop:
        return " \\| ".join(repr(v).replace("'", '"') for v in prop["enum"])
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        names = [_type_name(p) for p in prop["anyOf"]]
        return " \\| ".join(n for n in names if n != "null") + (" \\| null" if "null" in names else "")
    kind = prop.get("type")
    if kind == "array":
        return f"list[{_type_name(prop.get('items', {}))}]"
    if kind == "object":
        return "object"
    bounds = "".join(f" {op} {prop[k]:g}" for k, op in (("exclusiveMinimum", ">"), ("minimum", "≥")) if k in prop)
    return {"integer": "int", "number": "float", "string": "str", "boolean": "bool", "null": "null"}.get(str(kind),
                                                                                                        "any") \
        + bounds


def _table(shape: type[BaseModel], skip: frozenset[str] = frozenset()) -> list[str]:
    schema = shape.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        if name in skip:
            continue
        text = " ".join((prop.get("description") or "").split()).replace("|", "\\|")
        rows.append(f"| `{name}` | {_type_name(prop)} | {'yes' if name in required else ''} | {text} |")
    return rows


def _doc(shape: type[BaseModel]) -> str:
    return " ".join((shape.__doc__ or "").split())


def markdown() -> str:
    """docs/records.md: every record type's fields, generated from the types (``python -m harness schema
    --markdown``)."""
    base = frozenset(RecordBase.model_fields) | {"schema"}
    out = ["# Records", "",
           "<!-- generated by `python -m harness schema --markdown` from harness/results/records.py; edit those "
           "types, not this file -->", "",
           "One JSON object per line of a run dir's `records.jsonl`. The shape is chosen by `status` and `kind`. "
           "Every record has the common fields; an `ok` record has its kind's fields too; an `error` record has "
           "`error`, a `skipped` one `reason`. Readers keep fields they do not know; the writer refuses them. "
           "`python -m harness schema` prints the JSON Schema.", "",
           "## Common fields", "", *_table(RecordBase), "",
           "## `status: error`", "", _doc(FailedRecord), "", *_table(FailedRecord, base), "",
           "## `status: skipped`", "", _doc(SkippedRecord), "", *_table(SkippedRecord, base), ""]
    for ok in OK_RECORDS:
        kinds = ", ".join(f"`{k}`" for k in _kinds_of(ok))
        out += [f"## {kinds} ({ok.__name__})", "", _doc(ok), "",
                *_table(ok, base - {"model", "label", "batch_size"}), ""]
    nested: tuple[type[_Shape], ...] = (
        PlainRef, ShardRef, ErrorInfo, MacsCounter, FlopCounter, LoadReading, ProcessRun, Window, OpTimeModel,
        OpTimeFailure, CurvePoint, TrainSettings, DistributedInfo, Preprocess, WeightsInfo)
    out += ["## Nested objects", ""]
    for shape in nested:
        out += [f"### {shape.__name__}", "", *([_doc(shape), ""] if shape.__doc__ else []), *_table(shape), ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------- manifest


class _Git(_Shape):
    commit: str | None = None
    dirty: bool | None = None


class _Cpu(_Shape):
    model: str | None = None
    torch_threads: PositiveCount | None = None


class _Gpu(_Shape):
    name: str | None = None


class _Environment(_Shape):
    hostname: str | None = None
    cpu: _Cpu | None = None
    gpus: list[_Gpu] | None = None
    packages: dict[str, str | None] | None = None
    torch: str | None = None
    cuda: str | None = None
    device: dict[str, Any] | None = None


class Machine(_Shape):
    """Where a shard was measured (``harness.results.merge.machine``)."""

    hostname: str | None = None
    cpu: str | None = None
    gpus: list[str | None] | None = None


class _MergedFrom(_Shape):
    """A shard run dir a merged run was made of, and the machine that measured it."""

    path: str | None = None
    shard: ShardRef | None = None
    machine: Machine | None = None


class _Incomplete(_Shape):
    """A shard of a launch that did not end (``launch.finish``): why, and the end of its log."""

    shard: str | None = None
    reason: str | None = None
    log: str | None = None
    log_tail: list[str] = Field(default_factory=list)


class _Threads(_Shape):
    """The run's intra-op thread count and why (``measure.load.ThreadChoice``)."""

    threads: PositiveCount | None = None
    chosen_by: str | None = None
    cores: PositiveCount | None = None
    other_cores: Finite | None = None


class Manifest(_Shape):
    """What readers (reports, compare, history, the gate, merge, resume) take from a manifest."""

    run_id: str | None = None
    suite_name: str | None = None
    created_utc: str | None = None
    device: str | None = None
    argv: list[str] | None = None
    threads: _Threads | None = None
    git: _Git | None = None
    environment: _Environment | None = None
    suite: dict[str, Any] | None = None
    shard: ShardRef | None = None
    run_options: dict[str, Any] | None = None
    merged_from: list[_MergedFrom] | None = None
    """the shard run dirs a merged run was made of"""
    incomplete: list[_Incomplete] | None = None
    """shards of a launch that did not end"""


def check_manifest(manifest: dict[str, Any], *, where: str) -> None:
    """Raise a one-line ``ResultsError`` if a field readers use has the wrong type (``environment.cpu`` a string)."""
    try:
        Manifest.model_validate(manifest)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ResultsError(f"{where}: bad field '{_field(err)}': {err['msg'].lower()}; the run dir was edited by "
                           "hand or written by another tool") from None
