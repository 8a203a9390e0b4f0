"""Op-time task: a group of models profiled paired in one process (``harness.measure.optime``) → ONE record
holding every model's time per operator kind (``models: {label: {...}}``).

One record per group, not one per model: the runner writes one record per task (``ctx.emit`` is for parts of a
task, and a resume skips a task by its id), and the models' numbers are one paired measurement that the report
compares within the group. A model that fails to build or to run its warmup is recorded under ``errors`` and
the rest of the group is still profiled; each model's plain counterpart in the group (``registry.plain``) is
written as its label, so the report needs no registry and no torch.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from harness.environment import backend_flags
from harness.errors import MeasurementError
from harness.measure.mode import Mode
from harness.measure.optime import ModelOpTime, OpTimeResult, profile_op_time
from harness.measure.timer import PreparedModel, prepare_benchmark
from harness.models.plain import plain_match
from harness.plan import OpTimeSpec, Task
from harness.tasks.context import TaskContext, build, input_size_of, model_fields

log = logging.getLogger(__name__)


def _error(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


def _prepared(task: Task, spec: OpTimeSpec) -> tuple[dict[str, PreparedModel], dict[str, Any], dict[str, Any]]:
    """label → warmed-up benchmark; label → record fields of the model; label → error of those that failed."""
    benches: dict[str, PreparedModel] = {}
    fields: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for m in spec.models:
        fields[m.display] = {**model_fields(m, label=m.display), "input_size": None}
        try:
            size = input_size_of(m, spec.input_size)
            bench = prepare_benchmark(build(m), input_shape=size, batch_size=task.batch_size, device=task.device,
                                      mode=spec.mode)
            bench.warmup(1)  # a model that cannot run fails here, alone, not in the middle of the paired profile
        except Exception as exc:  # noqa: BLE001 - one model's failure is its error; the group goes on
            log.error("op time: %s failed: %s: %s", m.display, type(exc).__name__, exc)
            errors[m.display] = _error(exc)
            continue
        fields[m.display]["input_size"] = list(size)
        benches[m.display] = bench
    return benches, fields, errors


def _plains(fields: dict[str, Any]) -> dict[str, str | None]:
    """label → the label of its plain counterpart in the group (the report's ``plain`` matching)."""
    items = list(fields.values())
    out = {}
    for label, f in fields.items():
        at = plain_match(f, items)
        out[label] = items[at]["label"] if at is not None else None
    return out


def _model_record(m: ModelOpTime) -> dict[str, Any]:
    data = asdict(m)
    return {key: {k: list(v) for k, v in val.items()} if key == "kinds_ms" else
            list(val) if isinstance(val, tuple) else val for key, val in data.items()}


def _record(spec: OpTimeSpec, result: OpTimeResult | None, fields: dict[str, Any],
            errors: dict[str, Any]) -> dict[str, Any]:
    plains = _plains(fields)
    models = {label: {**fields[label], "plain": plains[label], **_model_record(m)}
              for label, m in (result.models.items() if result else ())}
    record: dict[str, Any] = {
        "models": models,
        "order": list(models),  # cycle c runs the models in this order rotated by c
        "errors": {label: {**fields[label], "plain": plains[label], "error": err} for label, err in errors.items()},
        "iterations": spec.iterations, "warmup": spec.warmup, "unprofiled_iterations": spec.unprofiled_iterations,
        "dtype": spec.mode.dtype, "channels_last": spec.mode.channels_last, "compile": spec.mode.compile,
    }
    if result is not None:
        record.update({"kinds": list(result.kinds), "timer": result.timer, "threads": result.threads,
                       "caveat": result.caveat})
    return record


def _kernel_names(mode: Mode) -> contextlib.AbstractContextManager[Any]:
    """For a compiled mode, Inductor's C++ kernels each in a profiler range of their own name (compiled in, so set
    before the first call): without it their time is the graph call's, not a kernel's."""
    if mode.compile is None:
        return contextlib.nullcontext()
    from torch._inductor import config

    stack = contextlib.ExitStack()
    stack.enter_context(config.patch({"cpp.enable_kernel_profile": True}))
    # torch's C++ build step warns on a machine without CUDA that it uses the default CUDA_HOME: not the user's concern
    stack.enter_context(_quiet("torch.utils.cpp_extension"))
    return stack


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """``logger``'s warnings off while inside."""
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(level)


def execute(task: Task, ctx: TaskContext) -> dict[str, Any]:
    spec: OpTimeSpec = task.spec
    with backend_flags(cudnn_benchmark=True, tf32=False), _kernel_names(spec.mode):
        benches, fields, errors = _prepared(task, spec)
        if not benches:
            first = next(iter(errors.values()), {"message": "no models"})
            raise MeasurementError(f"op time: no model of the group could run ({first['message']})")
        result = profile_op_time(benches, iterations=spec.iterations, warmup=spec.warmup,
                                 unprofiled_iterations=spec.unprofiled_iterations)
    return _record(spec, result, fields, errors)


EXECUTORS = {"op_time": execute}
