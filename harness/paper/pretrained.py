"""Published ImageNet accuracy of timm's pretrained weights, the weights an evaluation run can load.

Source [T]: timm (huggingface/pytorch-image-models) ``results/results-imagenet.csv`` (last changed at commit
``4e5207c7``, 2025-10-30): ImageNet-1k validation, single centre crop at ``img`` px with the weight's own
``crop_pct`` and interpolation. Only the rows of the architectures this harness converts or compares with are
kept. ``legacy_seresnext50_32x4d.in1k`` is timm's port of the SENet authors' released Caffe weights.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedWeights:
    name: str  # <model>.<tag>
    img: int  # evaluation resolution (px)
    top1: float  # accuracy %, as published
    top5: float
    params_m: float
    crop_pct: float
    interpolation: str

    @property
    def top1_err(self) -> float:
        return round(100.0 - self.top1, 3)

    @property
    def top5_err(self) -> float:
        return round(100.0 - self.top5, 3)


_ROWS = [
    ("skresnet18.ra_in1k", 224, 73.020, 91.172, 11.96, 0.875, "bicubic"),
    ("skresnet34.ra_in1k", 224, 76.956, 93.320, 22.28, 0.875, "bicubic"),
    ("skresnext50_32x4d.ra_in1k", 224, 80.168, 94.644, 27.48, 0.875, "bicubic"),
    ("seresnext50_32x4d.gluon_in1k", 224, 79.916, 94.816, 27.56, 0.875, "bicubic"),
    ("seresnext50_32x4d.racm_in1k", 224, 81.268, 95.624, 27.56, 0.875, "bicubic"),
    ("seresnext50_32x4d.racm_in1k", 288, 82.186, 96.146, 27.56, 0.950, "bicubic"),
    ("legacy_seresnext50_32x4d.in1k", 224, 79.080, 94.428, 27.56, 0.875, "bilinear"),
    ("resnext50_32x4d.tv_in1k", 224, 77.632, 93.674, 25.03, 0.875, "bilinear"),
    ("resnext50_32x4d.gluon_in1k", 224, 79.354, 94.424, 25.03, 0.875, "bicubic"),
    ("resnext50_32x4d.ra_in1k", 224, 79.800, 94.608, 25.03, 0.875, "bicubic"),
    ("resnext50_32x4d.ra_in1k", 288, 80.720, 95.344, 25.03, 0.950, "bicubic"),
    ("resnext50_32x4d.a1_in1k", 224, 80.526, 94.458, 25.03, 0.950, "bicubic"),
    ("resnext50_32x4d.a1h_in1k", 224, 81.140, 95.320, 25.03, 0.950, "bicubic"),
    ("resnext50_32x4d.a2_in1k", 224, 80.444, 94.630, 25.03, 0.950, "bicubic"),
    ("resnext50_32x4d.a3_in1k", 224, 79.258, 94.308, 25.03, 0.950, "bicubic"),
    ("resnext50_32x4d.tv2_in1k", 224, 81.190, 95.344, 25.03, 0.965, "bilinear"),
    ("resnext50_32x4d.fb_ssl_yfcc100m_ft_in1k", 224, 80.316, 95.386, 25.03, 0.875, "bilinear"),
    ("resnext50_32x4d.fb_swsl_ig1b_ft_in1k", 224, 82.162, 96.224, 25.03, 0.875, "bilinear"),
    ("seresnet50.ra2_in1k", 224, 80.260, 95.068, 28.09, 0.875, "bicubic"),
    ("seresnet50.ra2_in1k", 288, 81.288, 95.652, 28.09, 0.950, "bicubic"),
    ("seresnet50.a1_in1k", 224, 80.012, 94.704, 28.09, 0.950, "bicubic"),
    ("seresnet50.a2_in1k", 224, 80.102, 94.720, 28.09, 0.950, "bicubic"),
    ("seresnet50.a3_in1k", 224, 77.036, 93.072, 28.09, 0.950, "bicubic"),
    ("legacy_seresnet50.in1k", 224, 77.650, 93.732, 28.09, 0.875, "bilinear"),
]
TIMM_WEIGHTS: tuple[PublishedWeights, ...] = tuple(PublishedWeights(*row) for row in _ROWS)


def published(name: str, *, img: int = 224) -> PublishedWeights | None:
    """[T]'s row for weights ``<model>.<tag>`` evaluated at ``img`` px, or None when it publishes none."""
    return next((w for w in TIMM_WEIGHTS if w.name == name and w.img == img), None)
