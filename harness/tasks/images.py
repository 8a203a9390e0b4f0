"""Tasks on a labelled image set: evaluation (top-1 / top-5 error) and SK attention vs object scale, and what
they share: the model with its weights, the image set, a DataLoader.

Weights come from the model's options (``weights:``, or ``pretrained:`` for timm models) or, for a
``from_train`` task, from the weights file the training task of this run saved. The image set is opened
first, so absent data skips the task without fetching any weights, with the preprocessing the weights call for
(``preprocess: timm`` reads the data config of those timm weights).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.analysis.attention import analyse, find_sk_units
from harness.data.sets import ImageSet, open_image_set
from harness.errors import DatasetUnavailable, TaskSkipped
from harness.measure.accuracy import evaluate
from harness.models.registry import TIMM_PREFIX, create_model
from harness.models.timm_keys import TIMM_EQUIVALENTS
from harness.models.weights import load_weights, split_options, timm_weights_name
from harness.plan import AttentionSpec, EvalSpec, ImageSetSpec, Task
from harness.tasks.context import TaskContext
from harness.tasks.training import num_classes_option, trained_weights_path

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import DataLoader

MAX_WORKERS = 8


def weights_source(task: Task, ctx: TaskContext, from_train: str | None) -> tuple[dict[str, Any], str | None]:
    """(build options, weights source) of the task's model; ``from_train``: the file its training saved."""
    options, source = split_options(task.model.name, task.model.options)
    if from_train is None:
        return options, source
    path = trained_weights_path(ctx.run_dir, from_train)
    if not path.is_file():
        raise TaskSkipped(f"no trained weights of {task.label} in this run ({path.relative_to(ctx.run_dir)}): "
                          "its training task was skipped, failed or ran with save_weights: false")
    return {**num_classes_option(task.model, _dataset_classes(task)), **options}, str(path)


def _dataset_classes(task: Task) -> int:
    return {"cifar10": 10, "cifar100": 100}.get(task.spec.images.dataset, 1000)


def build_with_weights(task: Task, ctx: TaskContext, options: dict[str, Any], source: str | None,
                       from_train: str | None) -> tuple[nn.Module, dict[str, Any] | None]:
    """The task's model and a record of the weights loaded into it (None: random initialisation)."""
    model = create_model(task.model.name, **options)
    if source is None:
        return model, None
    info = load_weights(model, task.model.name, source).to_record()
    if from_train is not None:
        info.update(source="train", train_task=from_train, ref=str(Path(source).relative_to(ctx.run_dir)))
    return model, info


def timm_data_config_of(name: str, source: str | None) -> str | None:
    """The timm weights whose data config ``preprocess: timm`` uses, or None when there are none."""
    if source is not None and source.startswith(TIMM_PREFIX):
        return timm_weights_name(source)
    arch = name[len(TIMM_PREFIX):] if name.startswith(TIMM_PREFIX) else TIMM_EQUIVALENTS.get(name)
    return timm_weights_name(TIMM_PREFIX + arch) if arch else None


def open_images(spec: ImageSetSpec, ctx: TaskContext, task: Task, source: str | None) -> ImageSet:
    """The task's image set, opened before the model is built (no weights are fetched for absent data); absent
    data skips the task (one line for all tasks that need it)."""
    timm_weights = timm_data_config_of(task.model.name, source) if spec.preprocess == "timm" else None
    try:
        return open_image_set(spec.dataset, data_dir=ctx.data_dir or spec.data_dir, layout=spec.layout,
                              ground_truth=spec.ground_truth, preprocess=spec.preprocess, timm_weights=timm_weights,
                              max_images=spec.max_images, seed=spec.subset_seed)
    except DatasetUnavailable as exc:
        raise TaskSkipped(str(exc)) from None


def loader(images: ImageSet, spec: ImageSetSpec, device: str) -> DataLoader:
    from torch.utils.data import DataLoader

    if spec.workers is not None:
        workers = spec.workers
    else:  # CIFAR is in memory: worker processes would only add start-up time
        workers = 0 if images.layout == "cifar" else min(MAX_WORKERS, os.cpu_count() or 1)
    return DataLoader(images.dataset, batch_size=spec.batch_size, shuffle=False, num_workers=workers,
                      pin_memory=device.startswith("cuda"))


def progress(images: ImageSet, *, desc: str):
    """A progress bar on stderr (off when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=images.images, desc=desc, unit="img", file=sys.stderr, leave=False, disable=None,
                dynamic_ncols=True)


# --- the tasks ----------------------------------------------------------------------------------------


def _fp32() -> Any:
    """Backend flags of an evaluation: full fp32 (no TF32), cudnn.benchmark off (one pass over the images)."""
    from harness.environment import backend_flags

    return backend_flags(cudnn_benchmark=False, tf32=False)


def execute_eval(task: Task, ctx: TaskContext) -> dict[str, Any]:
    """Evaluation task: top-1 / top-5 error of one model (with its weights) on a labelled image set.

    [P] Table 2 reports the top-1 error of a single 224×224 centre crop on ImageNet-val; CIFAR test sets evaluate
    the harness's own training checkpoints. The record keeps the integer counts and the images, weights and
    preprocessing exactly as used; the report adds the 95% interval."""
    spec: EvalSpec = task.spec
    options, source = weights_source(task, ctx, spec.from_train)
    images = open_images(spec.images, ctx, task, source)
    model, weights = build_with_weights(task, ctx, options, source, spec.from_train)
    # fp32 as [P] evaluates: TF32 (on for cuDNN convolutions by default on Ampere and newer) off
    with _fp32(), progress(images, desc=f"eval {task.label}") as bar:
        acc = evaluate(model, loader(images, spec.images, task.device), device=task.device,
                       num_classes=images.num_classes, on_batch=bar.update)
    return {**images.describe(), "weights": weights, "top1_err": acc.top1_err, "top5_err": acc.topk_err,
            "top1_correct": acc.top1_correct, "top5_correct": acc.topk_correct, "topk": acc.k,
            "top1_hits": acc.hits_hex()}


def execute_attention(task: Task, ctx: TaskContext) -> dict[str, Any]:
    """Attention-vs-scale task ([P] §4.4, Figs. 3–4): one model's SK attention at every scale.

    Besides its own record (the images, labels, weights, preprocessing and top-1 error per scale), the task writes
    one ``attention`` record per SK unit and scale, with ``unit`` and ``scale`` fields and a task id of its own
    (``<task id>:<unit>:x<scale>``), so a resumed run replaces them instead of doubling them."""
    spec: AttentionSpec = task.spec
    options, source = weights_source(task, ctx, spec.from_train)
    images = open_images(spec.images, ctx, task, source)
    model, weights = build_with_weights(task, ctx, options, source, spec.from_train)
    find_sk_units(model)  # a model without SK units fails before any image is read
    with _fp32(), progress(images, desc=f"attention {task.label}") as bar:
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


EXECUTORS = {"eval": execute_eval, "attention": execute_attention}
