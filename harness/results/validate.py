"""The shape every record must have to be read: common fields, and the kind-specific fields that reports and
the gate use (docs/CONTRACTS.md). A record of the wrong shape (hand-edited, or written by another tool) is one
``ResultsError`` naming the file, the line and the field, instead of a crash somewhere in a report.

Records of kinds this table does not know are checked for the common fields only, so newer kinds pass through.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import ResultsError


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    task_id: str
    kind: str
    status: Literal["ok", "error", "skipped"]


class _Error(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    message: str


class _Failed(_Record):
    error: _Error


class _Skipped(_Record):
    reason: str


class _Complexity(_Record):
    label: str
    params: int
    macs: int
    input_size: list[int]


class _Timed(_Record):
    label: str
    samples_ms: list[float]
    batch_size: int


class _Throughput(_Timed):
    images: int
    loop_samples_s: list[float]


class _Peak(_Record):
    dtype: str
    peak_gmacs_per_s: float


class _Epoch(_Record):
    epoch: int
    test_acc: float
    img_per_s: float


class _Train(_Record):
    label: str
    top1_err: float
    train_time_s: float
    dataset: str
    curve: list[dict[str, Any]]


class _OpTime(_Record):
    models: dict[str, dict[str, Any]]
    errors: dict[str, dict[str, Any]]
    iterations: int


OK_SHAPES: dict[str, type[_Record]] = {
    "complexity": _Complexity,
    "latency": _Timed,
    "reference": _Timed,
    "throughput": _Throughput,
    "train_throughput": _Throughput,
    "peak": _Peak,
    "train_epoch": _Epoch,
    "train": _Train,
    "op_time": _OpTime,
}


def check_record(record: dict[str, Any], *, where: str) -> None:
    """Raise a one-line ``ResultsError`` if ``record`` lacks a field its kind and status need."""
    status = record.get("status")
    shape = _Failed if status == "error" else _Skipped if status == "skipped" else OK_SHAPES.get(
        record.get("kind"), _Record)
    try:
        shape.model_validate(record)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ResultsError(f"{where}: a {record.get('kind')!r} record with status {status!r} has a bad field "
                           f"'{field}': {err['msg'].lower()}; the run dir was edited by hand or written by "
                           "another tool") from None
