"""Top-k accuracy of a classifier over a labelled set ([P] Table 2: top-1 error of a single centre crop).

``evaluate`` runs ``model.eval()`` under ``torch.inference_mode()`` in fp32 and counts, per image, whether the
label is the arg-max (top-1) or among the ``k`` largest logits (top-k). Counts stay integers; the error rates
and their intervals are computed from them when a report is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from harness.errors import DatasetError

TOPK = 5


@dataclass(frozen=True)
class Accuracy:
    images: int
    top1_correct: int
    topk_correct: int
    k: int
    top1_hits: tuple[bool, ...] = ()  # per image, in order: lets two models be compared on the same images

    def hits_hex(self) -> str:
        """``top1_hits`` packed 8 per byte, as hex (12.5 kB for ImageNet-val's 50,000 images)."""
        return np.packbits(np.asarray(self.top1_hits, dtype=bool)).tobytes().hex()

    @property
    def top1_err(self) -> float:
        """Top-1 error in percent."""
        return 100.0 * (1.0 - self.top1_correct / self.images)

    @property
    def topk_err(self) -> float:
        return 100.0 * (1.0 - self.topk_correct / self.images)


def correct(logits: torch.Tensor, labels: torch.Tensor, *, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image of one batch: (label is the arg-max, label is among the ``k`` largest logits)."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return hits[:, 0], hits.any(dim=1)


def unpack_hits(packed: str, images: int) -> np.ndarray:
    """Inverse of ``Accuracy.hits_hex``."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(packed), dtype=np.uint8))[:images].astype(bool)


def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, device: torch.device | str,
             num_classes: int, k: int = TOPK, on_batch: Callable[[int], None] | None = None) -> Accuracy:
    """Top-1 / top-k counts of ``model`` over ``batches``; its output count must equal ``num_classes``."""
    device = torch.device(device)
    model.eval().to(device)
    hits1: list[bool] = []
    topk = 0
    with torch.inference_mode():
        for x, y in batches:
            logits = model(x.to(device, non_blocking=True))
            check_outputs(logits, num_classes)
            h1, hk = correct(logits.float(), y.to(device), k=k)
            hits1 += h1.cpu().tolist()
            topk += int(hk.sum())
            if on_batch is not None:
                on_batch(len(y))
    if not hits1:
        raise DatasetError("the evaluation set is empty")
    return Accuracy(len(hits1), sum(hits1), topk, min(k, num_classes), tuple(hits1))


def check_outputs(logits: torch.Tensor, num_classes: int) -> None:
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise DatasetError(
            f"the model outputs {tuple(logits.shape[1:])} logits per image but the data set has {num_classes} "
            f"classes; evaluate it on a set with {logits.shape[-1]} classes or build it with num_classes: "
            f"{num_classes} (and weights trained for them)"
        )
