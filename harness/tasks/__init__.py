"""Task executors, one module per task kind: typed spec → measurement → record payload.

Each ``execute(task, ctx)`` returns the record payload. It may call ``ctx.emit(record)`` for intermediate
records (training epochs) and raise ``TaskSkipped`` when a task cannot run here (no dataset); any other
exception becomes an ``error`` record (the runner's business, not the executor's).
"""

from __future__ import annotations

from harness.tasks.context import Executor, TaskContext, build, input_size_of, model_fields

__all__ = ["Executor", "TaskContext", "build", "executors", "input_size_of", "model_fields"]


def executors() -> dict[str, Executor]:
    """Task kind → executor. Imported on call: the executors import torch-heavy measurement and training code."""
    from harness.tasks import complexity, images, optime, timing, training

    return {"complexity": complexity.execute, **timing.EXECUTORS, **training.EXECUTORS, **images.EXECUTORS,
            **optime.EXECUTORS}
