"""What every task executor is given and builds with: the task's context, the suite model's builder and input size,
and the model fields every record carries."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.schema import ModelSpec
from harness.errors import HarnessError
from harness.models.plain import plain_identity
from harness.models.registry import canonical_options, create_model, default_input_size

if TYPE_CHECKING:
    from torch import nn

    from harness.plan import Task

Executor = Callable[["Task", "TaskContext"], dict[str, Any]]


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


def input_size_of(spec: ModelSpec, section_size: tuple[int, int, int] | None) -> tuple[int, int, int]:
    if spec.input_size is not None:
        return tuple(spec.input_size)
    if section_size is not None:
        return tuple(section_size)
    return default_input_size(spec.name)


def model_fields(spec: ModelSpec | None, *, label: str) -> dict[str, Any]:
    """Fields every record carries: the model as the suite named it, its canonical options (builder defaults
    filled in), and its plain counterpart (the network it adds attention to, with the options they share) as
    the registry says at run time — so the report compares with what this run built and needs no registry."""
    if spec is None:
        return {"model": None, "label": label, "options": {}, "canonical_options": None}
    try:
        canonical = canonical_options(spec.name, spec.options)
    except HarnessError:
        canonical = None
    plain = plain_identity(spec.name, spec.options)
    return {"model": spec.name, "label": spec.display, "options": spec.options, "canonical_options": canonical,
            "plain": None if plain is None else {"model": plain[0], "canonical_options": json.loads(plain[1])}}
