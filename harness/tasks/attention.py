"""Attention-vs-scale task ([P] §4.4, Figs. 3–4): one model's SK attention at every scale.

Besides its own record (the images, labels, weights, preprocessing and top-1 error per scale), the task writes
one ``attention`` record per SK unit and scale, with ``unit`` and ``scale`` fields and a task id of its own
(``<task id>:<unit>:x<scale>``), so a resumed run replaces them instead of doubling them.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.attention import analyse, find_sk_units
from harness.plan import AttentionSpec, Task
from harness.tasks import TaskContext
from harness.tasks.images import build_with_weights, loader, open_images, progress, weights_source


def execute(task: Task, ctx: TaskContext) -> dict[str, Any]:
    spec: AttentionSpec = task.spec
    options, source = weights_source(task, ctx, spec.from_train)
    images = open_images(spec.images, ctx, task, source)
    model, weights = build_with_weights(task, ctx, options, source, spec.from_train)
    find_sk_units(model)  # a model without SK units fails before any image is read
    with progress(images, desc=f"attention {task.label}") as bar:
        result = analyse(model, loader(images, spec.images, task.device), scales=spec.scales, device=task.device,
                         num_classes=images.num_classes, on_batch=bar.update)
    common = {"dataset": images.name, "synthetic": images.synthetic, "weights": weights}
    for (unit, scale), stats in result.stats.items():
        ctx.emit({"task_id": f"{task.task_id}:{unit}:x{scale:g}", "kind": "attention", "status": "ok",
                  "parent_task": task.task_id, **common, **stats.to_record(result.labels, images.num_classes)})
    top1_err = {f"{s:g}": 100.0 * (1.0 - result.top1_correct[s] / images.images) for s in result.scales}
    return {**images.describe(), **common, "unit": None, "units": [u.name for u in result.units],
            "scales": list(result.scales), "labels": result.labels, "class_names": list(images.class_names),
            "top1_err_by_scale": top1_err}


EXECUTORS = {"attention": execute}
