"""Evaluation task: top-1 / top-5 error of one model (with its weights) on a labelled image set.

[P] Table 2 reports the top-1 error of a single 224×224 centre crop on ImageNet-val; CIFAR test sets evaluate
the harness's own training checkpoints. The record keeps the integer counts and the images, weights and
preprocessing exactly as used; the report adds the 95% interval.
"""

from __future__ import annotations

from typing import Any

from harness.measure.accuracy import evaluate
from harness.plan import EvalSpec, Task
from harness.tasks import TaskContext
from harness.tasks.images import build_with_weights, loader, open_images, progress, weights_source


def execute(task: Task, ctx: TaskContext) -> dict[str, Any]:
    spec: EvalSpec = task.spec
    options, source = weights_source(task, ctx, spec.from_train)
    images = open_images(spec.images, ctx, task, source)
    model, weights = build_with_weights(task, ctx, options, source, spec.from_train)
    with progress(images, desc=f"eval {task.label}") as bar:
        acc = evaluate(model, loader(images, spec.images, task.device), device=task.device,
                       num_classes=images.num_classes, on_batch=bar.update)
    return {**images.describe(), "weights": weights, "top1_err": acc.top1_err, "top5_err": acc.topk_err,
            "top1_correct": acc.top1_correct, "top5_correct": acc.topk_correct, "topk": acc.k,
            "top1_hits": acc.hits_hex()}


EXECUTORS = {"eval": execute}
