"""One entry point for a labelled evaluation set: ``open_image_set(name, ...)`` → ``ImageSet``.

``imagenet`` reads ImageNet-val from disk (``harness.data.imagenet``) with the paper's or timm's preprocessing;
``cifar10`` / ``cifar100`` take the test split of torchvision's CIFAR files (read by ``train.data.load_cifar``,
synthetic files included) with the training normalisation, no resize. ``max_images`` keeps a seeded random
subset (in file order), never the first N: ImageNet folders are sorted by class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from harness.data.imagenet import open_imagenet_val
from harness.data.preprocess import Preprocess, describe, paper_transform, timm_transform
from harness.errors import ConfigError
from harness.train.data import default_data_dir, load_cifar

IMAGE_SETS = ("imagenet", "cifar10", "cifar100")


@dataclass(frozen=True)
class ImageSet:
    """A labelled evaluation set, preprocessed: ``dataset[i]`` is (C×H×W float tensor, label)."""

    name: str
    dataset: Dataset
    labels: tuple[int, ...]  # of the images in ``dataset`` (after any subset)
    class_names: tuple[str, ...]
    root: Path
    layout: str  # imagefolder | ilsvrc | cifar
    ground_truth: str | None
    preprocess: Preprocess
    synthetic: bool
    total_images: int  # in the set on disk, before ``max_images``
    subset_seed: int | None = None  # the seed of the ``max_images`` draw

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def images(self) -> int:
        return len(self.labels)

    def describe(self) -> dict[str, Any]:
        """Record fields saying which images these were."""
        return {"dataset": self.name, "data_root": str(self.root), "layout": self.layout,
                "ground_truth": self.ground_truth, "images": self.images, "dataset_images": self.total_images,
                "subset": self.images < self.total_images, "subset_seed": self.subset_seed,
                "num_classes": self.num_classes, "synthetic": self.synthetic, "preprocess": self.preprocess.to_record()}


class _CifarTest(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> None:
        self.images, self.labels = images, labels
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.images[index].float().div_(255.0)
        return (x - self.mean) / self.std, int(self.labels[index])


def open_image_set(name: str, *, data_dir: str | Path | None, layout: str = "auto", ground_truth: str | None = None,
                   preprocess: str = "paper", timm_weights: str | None = None, max_images: int | None = None,
                   seed: int = 0) -> ImageSet:
    """Open image set ``name`` under ``data_dir`` (default: ``$HARNESS_DATA_DIR``/``~/.cache/harness/data``)."""
    if name == "imagenet":
        full = _imagenet(data_dir, layout, ground_truth, preprocess, timm_weights)
    elif name in ("cifar10", "cifar100"):
        full = _cifar(name, data_dir)
    else:
        raise ConfigError(f"unknown image set {name!r}; use one of {', '.join(IMAGE_SETS)}")
    return _subset(full, max_images, seed)


def _imagenet(data_dir: str | Path | None, layout: str, ground_truth: str | None, preprocess: str,
              timm_weights: str | None) -> ImageSet:
    if preprocess == "timm":
        if timm_weights is None:
            raise ConfigError("preprocess: timm needs timm weights (weights: timm:<model>.<tag>, a timm: model, or one "
                              "of our models with a timm equivalent); use preprocess: paper")
        transform = timm_transform(timm_weights)
        pre = describe(transform, name="timm", source=timm_weights)
    else:
        transform = paper_transform()
        pre = describe(transform, name="paper")
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir() / "imagenet"
    val = open_imagenet_val(root, layout=layout, ground_truth=ground_truth, transform=transform)
    return ImageSet("imagenet", val.dataset, val.labels, val.class_names, val.root, val.layout, val.ground_truth,
                    pre, False, len(val.labels))


def _cifar(name: str, data_dir: str | Path | None) -> ImageSet:
    data = load_cifar(name, data_dir=Path(data_dir) if data_dir is not None else None, download=False)
    pre = Preprocess("cifar", None, list(data.test_x.shape[2:]), None, data.mean, data.std,
                     source="the training normalisation")
    names = data.class_names or tuple(str(i) for i in range(data.num_classes))
    labels = tuple(int(v) for v in data.test_y)
    return ImageSet(name, _CifarTest(data.test_x, data.test_y, data.mean, data.std), labels, names, data.root,
                    "cifar", None, pre, data.synthetic, len(labels))


def _subset(full: ImageSet, max_images: int | None, seed: int) -> ImageSet:
    if max_images is None or max_images >= full.images:
        return full
    generator = torch.Generator().manual_seed(seed)
    keep = sorted(torch.randperm(full.images, generator=generator)[:max_images].tolist())
    labels = tuple(full.labels[i] for i in keep)
    return ImageSet(full.name, Subset(full.dataset, keep), labels, full.class_names, full.root, full.layout,
                    full.ground_truth, full.preprocess, full.synthetic, full.total_images, subset_seed=seed)
