"""Top-k counting against hand-made logits, and the class-count check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.errors import DatasetError
from harness.measure.accuracy import Accuracy, correct, evaluate, unpack_hits


def test_top1_and_top5_hits_of_known_logits():
    logits = torch.tensor([[9.0, 8, 7, 6, 5, 4], [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]])
    top1, top5 = correct(logits, torch.tensor([0, 0, 4]), k=5)
    assert top1.tolist() == [True, False, False] and top5.tolist() == [True, False, True]


class _Fixed(nn.Module):
    """Returns the logits it was given for each image index (the image is its index)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x.long()]


def test_evaluate_counts_over_batches_and_keeps_per_image_hits():
    table = torch.eye(7)[:, :7] * 5  # image i predicts class i
    labels = torch.tensor([0, 1, 2, 0, 0, 5, 6])  # images 3 and 4 are wrong
    batches = [(torch.arange(0, 4), labels[:4]), (torch.arange(4, 7), labels[4:])]
    seen = []
    acc = evaluate(_Fixed(table), batches, device="cpu", num_classes=7, on_batch=seen.append)
    assert (acc.images, acc.top1_correct, acc.k) == (7, 5, 5) and seen == [4, 3]
    assert acc.top1_err == pytest.approx(200 / 7)
    assert unpack_hits(acc.hits_hex(), 7).tolist() == [True, True, True, False, False, True, True]


def test_a_model_with_another_class_count_is_one_line():
    with pytest.raises(DatasetError) as err:
        evaluate(_Fixed(torch.eye(4)), [(torch.arange(2), torch.tensor([0, 1]))], device="cpu", num_classes=3)
    assert "outputs (4,) logits per image but the data set has 3 classes" in str(err.value)
    assert "\n" not in str(err.value)


def test_error_rates_in_percent():
    assert Accuracy(images=8, top1_correct=6, topk_correct=8, k=5).top1_err == 25.0
