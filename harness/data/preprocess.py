"""Evaluation preprocessing, and a record of exactly what it did.

- ``paper``: [P] Table 2's single centre crop — resize the shorter side to 256, centre-crop 224×224
  ("center 224x224 crop from resized image with shorter side = 256", the authors' release), ImageNet mean
  and std. The paper does not name the interpolation; bilinear (torchvision's default) is used.
- ``timm``: the data config timm publishes with a weight (``timm.data.resolve_data_config``), turned into a
  transform by ``timm.data.create_transform`` — e.g. bicubic, crop 0.875 for ``skresnext50_32x4d.ra_in1k``.

``describe`` reads resize, crop, interpolation, mean and std back from the transform object itself, so the
record says what ran, not what was asked for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER_RESIZE = 256
PAPER_CROP = 224


@dataclass(frozen=True)
class Preprocess:
    """What an evaluation did to each image (the record's ``preprocess``)."""

    name: str  # paper | timm | cifar
    resize: int | list[int] | None
    crop: int | list[int] | None
    interpolation: str | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""  # e.g. the timm weight whose data config was used

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}


def paper_transform() -> Any:
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(PAPER_RESIZE, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(PAPER_CROP),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def timm_transform(weights_name: str) -> Any:
    """The eval transform timm uses for ``<model>.<tag>`` (its pretrained data config)."""
    import timm
    from timm.data import create_transform, resolve_data_config

    cfg = timm.models.get_pretrained_cfg(weights_name)
    data_cfg = resolve_data_config(pretrained_cfg=cfg.to_dict())
    return create_transform(**data_cfg, is_training=False)


def describe(transform: Any, *, name: str, source: str = "") -> Preprocess:
    """Resize, crop, interpolation, mean and std of a torchvision ``Compose`` as it is."""
    from torchvision import transforms

    resize = crop = interpolation = None
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    for step in getattr(transform, "transforms", [transform]):
        if isinstance(step, transforms.Resize):
            resize, interpolation = _size(step.size), step.interpolation.value
        elif isinstance(step, transforms.CenterCrop):
            crop = _size(step.size)
        elif isinstance(step, transforms.Normalize):
            mean, std = tuple(float(v) for v in step.mean), tuple(float(v) for v in step.std)
    return Preprocess(name, resize, crop, interpolation, mean, std, source)


def _size(size: Any) -> int | list[int]:
    if isinstance(size, (list, tuple)):
        return int(size[0]) if len(size) == 1 else [int(s) for s in size]
    return int(size)
