"""Task executors: one module per task kind. Each ``execute(task, ctx)`` returns the record payload.

They may call ``ctx.emit(record)`` for intermediate records (training epochs) and raise
``TaskSkipped`` when a task cannot run here (no dataset); any other exception becomes an ``error`` record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from torch import nn

from harness.errors import HarnessError
from harness.registry import canonical_options, create_model, default_input_size
from harness.suite import ModelSpec, Task


class TaskSkipped(HarnessError):
    """The task cannot run in this environment (e.g. its dataset is absent); recorded as ``skipped``."""


@dataclass
class TaskContext:
    run_dir: Path
    emit: Callable[[dict[str, Any]], None]
    done_records: list[dict[str, Any]]  # earlier records of this task (resume)
    data_dir: str | None = None
    distributed: Any = None


def build(spec: ModelSpec, **extra: Any) -> nn.Module:
    """Instantiate a suite model; ``extra`` options apply where the suite did not set them."""
    return create_model(spec.name, **{**extra, **spec.options})


def input_size_of(spec: ModelSpec, section_size: Any) -> tuple[int, int, int]:
    if spec.input_size is not None:
        return tuple(spec.input_size)
    if section_size is not None:
        return tuple(section_size)
    return default_input_size(spec.name)


def model_fields(spec: ModelSpec) -> dict[str, Any]:
    """Fields every record of a model carries (the report matches paper rows on ``canonical_options``)."""
    try:
        canonical = canonical_options(spec.name, spec.options)
    except HarnessError:
        canonical = None
    return {"model": spec.name, "label": spec.display, "options": spec.options, "canonical_options": canonical}


@lru_cache(maxsize=1)
def _executors() -> dict[str, Callable[[Task, TaskContext], dict[str, Any]]]:
    # imported on first use: the executors import torch-heavy measurement and training code
    from harness.benchmarks import complexity, timing, training

    return {"complexity": complexity.execute, **timing.EXECUTORS, **training.EXECUTORS}


def executor_for(task: Task) -> Callable[[Task, TaskContext], dict[str, Any]]:
    table = _executors()
    if task.kind not in table:
        raise HarnessError(f"task kind {task.kind!r} has no executor in this harness version")
    return table[task.kind]
