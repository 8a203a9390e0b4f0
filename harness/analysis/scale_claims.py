"""Does the larger kernel gain attention as the object grows? The statistics behind [P] §4.4's claim.

[P] Fig. 4: in the low and middle SK units (SK_2_3, SK_3_4) the mean attention difference (larger minus
smaller kernel) is higher at 1.5× than at 1.0× for essentially all classes; in the last unit (SK_5_3) the
pattern disappears. Here, per unit: the share of classes whose class-mean difference rises from the low to
the high scale, the share of images, and a one-sided Wilcoxon signed-rank test paired over images (H1: the
difference rises). Numpy and scipy only: reports import it without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.measure.stats import TEST_ALPHA as ALPHA

ESSENTIALLY_ALL = 0.90  # "essentially all classes" ([P] §4.4), as a share
CHANNEL_GROUP = 16  # [P] Fig. 3 (left) averages 16 successive channels


@dataclass(frozen=True)
class ScaleRise:
    unit: str
    low: float  # scales compared
    high: float
    images: int
    mean_low: float
    mean_high: float
    share_images: float  # images whose difference rose
    classes: int  # classes with images at both scales
    share_classes: float
    p_value: float | None  # None: no test possible (every paired difference is zero)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


def scale_rise(unit: str, low: float, high: float, diff_low: Sequence[float], diff_high: Sequence[float],
               class_low: Sequence[float | None], class_high: Sequence[float | None]) -> ScaleRise:
    """Compare one unit's mean attention differences at two scales (paired over images and classes)."""
    a = np.asarray(diff_low, dtype=np.float64)
    b = np.asarray(diff_high, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"{unit}: need the same non-empty images at both scales, got {a.shape} and {b.shape}")
    pairs = [(x, y) for x, y in zip(class_low, class_high, strict=True) if x is not None and y is not None]
    d = b - a
    p = None if not np.any(d) else float(stats.wilcoxon(d, alternative="greater").pvalue)
    share_classes = sum(y > x for x, y in pairs) / len(pairs) if pairs else math.nan
    return ScaleRise(unit, low, high, int(a.size), float(a.mean()), float(b.mean()), float(np.mean(d > 0)),
                     len(pairs), share_classes, p)


def verdict(rise: ScaleRise, *, expect_rise: bool) -> str:
    """The paper's reading held or not, in words (thresholds: ``ESSENTIALLY_ALL`` of classes, ``ALPHA``)."""
    consistent = rise.significant and rise.share_classes >= ESSENTIALLY_ALL
    if expect_rise:
        if consistent:
            return "reproduced"
        if rise.significant and rise.share_classes > 0.5:
            return "partly: rises on average, but not for essentially all classes"
        return "not reproduced"
    if consistent:
        return "not reproduced: a consistent rise, which the paper says is absent here"
    return "reproduced: no consistent rise"


def stage_last_units(names: Sequence[str]) -> list[str]:
    """The last unit of every stage, in stage order ([P] Fig. 3 right: SK_2_3, SK_3_4, SK_4_6, SK_5_3)."""
    last: dict[int, tuple[int, str]] = {}
    for name in names:
        _, stage, block = name.split("_")
        if int(block) >= last.get(int(stage), (0, ""))[0]:
            last[int(stage)] = (int(block), name)
    return [last[s][1] for s in sorted(last)]


def claim_units(names: Sequence[str]) -> dict[str, str]:
    """Role → unit: ``low`` / ``mid`` = last unit of the first / second SK stage, ``last`` = last unit of the
    last stage. On SKNet-50 these are [P]'s SK_2_3, SK_3_4 and SK_5_3 (Fig. 4)."""
    lasts = stage_last_units(names)
    roles = {"low": lasts[0]} if lasts else {}
    if len(lasts) >= 3:
        roles["mid"] = lasts[1]
    if len(lasts) >= 2:
        roles["last"] = lasts[-1]
    return roles


def channel_groups(values: Sequence[float], size: int = CHANNEL_GROUP) -> list[float]:
    """Means of ``size`` successive channels (a last, shorter group is kept)."""
    x = np.asarray(values, dtype=np.float64)
    return [float(x[i:i + size].mean()) for i in range(0, len(x), size)]
