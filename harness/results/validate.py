"""The shape every record must have to be read: common fields, and the kind-specific fields that reports and
the gate use (docs/CONTRACTS.md). A record of the wrong shape (hand-edited, or written by another tool) is one
``ResultsError`` naming the file, the line and the field, instead of a crash somewhere in a report.

Records of kinds this table does not know are checked for the common fields only, so newer kinds pass through.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import ResultsError

# A time or a rate as the harness measures it: a finite number, never negative (NaN, Infinity and -1 are valid
# JSON to Python's reader, and would reach a ratio or a bootstrap as nonsense).
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
PositiveCount = Annotated[int, Field(gt=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    task_id: str
    kind: str
    status: Literal["ok", "error", "skipped"]
    # fields every record may carry (runner.run_task); when present they have these types
    model: str | None = None
    label: str | None = None
    options: dict[str, Any] | None = None
    device: str | None = None
    batch_size: PositiveCount | None = None
    round: Count | None = None
    seed: int | None = None
    wall_s: Seconds | None = None


class _Error(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    message: str


class _Failed(_Record):
    error: _Error


class _Skipped(_Record):
    reason: str


class _Complexity(_Record):
    model: str
    label: str
    params: Count
    macs: Count
    activations: Count | None = None
    input_size: list[PositiveCount]


class _Load(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    wall_s: Seconds
    other_cores: Seconds
    own_cores: Seconds
    loadavg_1m: Finite
    involuntary_switches: Count
    cores: PositiveCount


class _Timed(_Record):
    model: str
    label: str
    samples_ms: Annotated[list[Seconds], Field(min_length=1)]
    warmup_ms: list[Seconds] | None = None
    reference_samples_ms: list[Seconds] | None = None
    batch_size: PositiveCount
    dtype: str | None = None
    threads: PositiveCount | None = None
    # the paired engine's fields (absent in older runs): sample i was taken in cycle cycles[i] of session pairing
    cycles: list[Count] | None = None
    reference_cycles: list[Count] | None = None
    pairing: str | None = None
    group_size: PositiveCount | None = None
    load: _Load | None = None

    @model_validator(mode="after")
    def _cycles_match(self) -> _Timed:
        if self.cycles and len(self.cycles) != len(self.samples_ms):
            raise ValueError(f"cycles has {len(self.cycles)} entries for {len(self.samples_ms)} samples_ms")
        return self


class _Reference(_Timed):
    model: str | None = None


class _Throughput(_Timed):
    images: PositiveCount
    loop_samples_s: list[PositiveSeconds]


class _Peak(_Record):
    dtype: str
    peak_gmacs_per_s: Seconds


class _Epoch(_Record):
    epoch: PositiveCount
    test_acc: Finite
    img_per_s: Seconds


class _Train(_Record):
    model: str
    label: str
    top1_err: Finite
    train_time_s: Seconds
    dataset: str
    curve: list[dict[str, Any]]


class _OpTime(_Record):
    models: dict[str, dict[str, Any]]
    errors: dict[str, dict[str, Any]]
    iterations: int


class _Weights(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    source: str
    ref: str


class _Eval(_Record):
    model: str
    label: str
    dataset: str
    images: PositiveCount
    top1_correct: Count
    top1_err: Finite
    top5_err: Finite | None = None
    weights: _Weights | None = None
    preprocess: dict[str, Any] | None = None
    subset: bool | None = None


OK_SHAPES: dict[str, type[_Record]] = {
    "complexity": _Complexity,
    "latency": _Timed,
    "reference": _Reference,
    "throughput": _Throughput,
    "train_throughput": _Throughput,
    "peak": _Peak,
    "train_epoch": _Epoch,
    "train": _Train,
    "op_time": _OpTime,
    "eval": _Eval,
}


class _Git(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    commit: str | None = None
    dirty: bool | None = None


class _Cpu(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = None
    torch_threads: PositiveCount | None = None


class _Gpu(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    name: str | None = None


class _Environment(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    cpu: _Cpu | None = None
    gpus: list[_Gpu] | None = None
    packages: dict[str, str | None] | None = None
    torch: str | None = None
    cuda: str | None = None
    device: dict[str, Any] | None = None


class _Manifest(BaseModel):
    """What readers (reports, compare, history, the gate, merge, resume) take from a manifest."""

    model_config = ConfigDict(extra="allow", strict=True)

    run_id: str | None = None
    suite_name: str | None = None
    created_utc: str | None = None
    device: str | None = None
    git: _Git | None = None
    environment: _Environment | None = None
    suite: dict[str, Any] | None = None
    shard: dict[str, Any] | None = None
    run_options: dict[str, Any] | None = None


def _field(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"])


def check_manifest(manifest: dict[str, Any], *, where: str) -> None:
    """Raise a one-line ``ResultsError`` if a field readers use has the wrong type (``environment.cpu`` a string)."""
    try:
        _Manifest.model_validate(manifest)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ResultsError(f"{where}: bad field '{_field(err)}': {err['msg'].lower()}; the run dir was edited by "
                           "hand or written by another tool") from None


def check_record(record: dict[str, Any], *, where: str) -> None:
    """Raise a one-line ``ResultsError`` if ``record`` lacks a field its kind and status need."""
    status = record.get("status")
    shape = _Failed if status == "error" else _Skipped if status == "skipped" else OK_SHAPES.get(
        record.get("kind"), _Record)
    try:
        shape.model_validate(record)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ResultsError(f"{where}: a {record.get('kind')!r} record with status {status!r} has a bad field "
                           f"'{_field(err)}': {err['msg'].lower()}; the run dir was edited by hand or written by "
                           "another tool") from None
